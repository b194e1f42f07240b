# A lone pg_encryption/key.check in a cluster whose pg_control says "not
# encrypted" says that a key was there: every program refuses it (fail
# closed), before it changes anything, with the library's one wording.  The
# server does not start, pg_rewind and pg_upgrade refuse either cluster, and
# pg_datakey status and verify exit 13.
use strict;
use warnings;

use FeDatakey::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FeDatakey::Files qw(write_file);
use FeDatakey::Run ();    # run_command by its full name: upstream's Utils exports one too

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;

my $refusal =
  qr/data directory holds a data encryption key check, but pg_control says the cluster is not encrypted/;
my ($wrap, $unwrap) = key_commands('lone');

# The key check of a real key, as a cluster that lost key.bin would hold it.
my $encrypted = $C->new('encrypted')->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
my $check = slurp_file($encrypted->data_dir . '/pg_encryption/key.check');

sub lone_key_check
{
	my ($node) = @_;
	mkdir $node->data_dir . '/pg_encryption', 0700 or die "mkdir: $!";
	write_file($node->data_dir . '/pg_encryption/key.check', $check);
}

sub refused
{
	my ($cmd, $name, $re) = @_;
	my ($rc, $out, $err) = FeDatakey::Run::run_command($cmd);
	isnt($rc, 0, "$name: refused");
	like($out . $err, $re, "$name: says why");
	return $rc;
}

# --- the server ----------------------------------------------------------------------------------
{
	my $node = $C->new('server')->init;
	$node->start;
	$node->safe_psql('postgres', 'CREATE TABLE kept AS SELECT 1 AS v');
	$node->stop;
	lone_key_check($node);
	ok(!$node->start(fail_ok => 1), 'server: a lone key.check in an unencrypted cluster, start refused');
	like(slurp_file($node->logfile), qr/FATAL:  $refusal/, 'server: the log says why');
	my ($rc, $out, $err) = FeDatakey::Run::run_command(
		[ 'postgres', '--single', '-D', $node->data_dir, 'postgres' ], stdin => "select 1;\n");
	isnt($rc, 0, 'server: a single-user backend refuses too');
	like($err, $refusal, 'server: and says why');
	unlink $node->data_dir . '/pg_encryption/key.check' or die;
	rmdir $node->data_dir . '/pg_encryption' or die;
	ok($node->start(fail_ok => 1), 'server: without it the cluster starts again');
	is($node->safe_psql('postgres', 'SELECT v FROM kept'), '1', 'server: its data intact');
	$node->stop;
}

# --- pg_rewind (dry run, source data directory) ---------------------------------------------------
{
	my $target = $C->new('target')->init;
	my $source = $C->new('source')->init;
	my @rewind = ('pg_rewind', '-n', '-D', $target->data_dir, '--source-pgdata=' . $source->data_dir);
	lone_key_check($target);
	my $before = $target->snapshot;
	refused(\@rewind, 'pg_rewind: lone key.check in the target', qr/target cluster: $refusal/);
	is_deeply($target->snapshot, $before, 'pg_rewind: the target is unchanged');
	unlink $target->data_dir . '/pg_encryption/key.check' or die;
	lone_key_check($source);
	refused(\@rewind, 'pg_rewind: lone key.check in the source', qr/source cluster: $refusal/);
}

# --- pg_upgrade --check ---------------------------------------------------------------------------
{
	my $old = $C->new('old')->init;
	my $new = $C->new('new')->init;
	lone_key_check($new);
	my $before = $new->snapshot;
	refused(pg_upgrade_command($old, $new, '--check'), 'pg_upgrade: lone key.check in the new cluster',
		qr/new cluster: $refusal/);
	is_deeply($new->snapshot, $before, 'pg_upgrade: the new cluster is unchanged');
	unlink $new->data_dir . '/pg_encryption/key.check' or die;
	lone_key_check($old);
	refused(pg_upgrade_command($old, $new, '--check'), 'pg_upgrade: lone key.check in the old cluster',
		qr/old cluster: $refusal/);
}

# --- pg_datakey -----------------------------------------------------------------------------------
{
	my $node = $C->new('datakey')->init;
	lone_key_check($node);
	my ($rc, $out, $err) = FeDatakey::Run::run_command([ 'pg_datakey', 'status', '-D', $node->data_dir ]);
	is($rc, 13, 'pg_datakey status: exit 13');
	like($out, qr/^Encrypted:\s+no$/m, 'pg_datakey status: not encrypted, as pg_control says');
	like($err, qr/^pg_datakey: error: $refusal$/m, 'pg_datakey status: says why');
	($rc, $out, $err) = FeDatakey::Run::run_command([ 'pg_datakey', 'verify', '-D', $node->data_dir ]);
	is($rc, 13, 'pg_datakey verify: exit 13');
	like($err, qr/^pg_datakey: error: $refusal$/m, 'pg_datakey verify: says why');
	($rc, $out, $err) = FeDatakey::Run::run_command(
		[ 'pg_datakey', 'rewrap', '-D', $node->data_dir, '--new-key-wrap-command=-', '--new-key-unwrap-command=-' ]);
	is($rc, 13, 'pg_datakey rewrap: exit 13');
	ok(!-e $node->data_dir . '/pg_encryption/key.bin', 'pg_datakey rewrap: wrote no key file');
}

done_testing();
