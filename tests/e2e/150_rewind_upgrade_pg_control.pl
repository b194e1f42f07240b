# pg_upgrade and pg_rewind decide "encrypted or not" from pg_control: they
# refuse, before changing anything, when the clusters' pg_control fields
# differ, when an encrypted cluster's key file is missing, and when a
# cluster that pg_control calls unencrypted holds a key file.  pg_upgrade
# finds each cluster's configured command the way the server does, also in
# a cluster without postgresql.auto.conf, and upgrades it.
use strict;
use warnings;

use FeDatakey::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FeDatakey::Files qw(write_file);
use FeDatakey::Run ();

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;

my ($wrap, $unwrap) = key_commands('control');

my $old = $C->new('old');
$old->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
$old->start;
$old->safe_psql('postgres', "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 500) g");
$old->stop;

sub new_encrypted
{
	my ($name) = @_;
	return $C->new($name)->init(
		encrypted => 1,
		wrap => $wrap,
		unwrap => $unwrap,
		copy_key_from => $old->data_dir . '/pg_encryption/key.bin');
}

sub refused
{
	my ($cmd, $name, $re) = @_;
	my ($rc, $out, $err) = FeDatakey::Run::run_command($cmd);
	isnt($rc, 0, "$name: refused");
	like($out . $err, $re, "$name: says why");
}

# --- pg_upgrade on an old cluster without postgresql.auto.conf -----------------------------------------
{
	my $new = new_encrypted('new');
	unlink $old->data_dir . '/postgresql.auto.conf' or die "unlink: $!";
	command_checks_all(pg_upgrade_command($old, $new, '--check'),
		0, [qr/Checking data encryption keys\s+ok/], [],
		'pg_upgrade --check of a cluster without postgresql.auto.conf, configured command');
	command_ok(pg_upgrade_command($old, $new), 'pg_upgrade of that cluster');

	$new->start;
	is($new->safe_psql('postgres', 'SELECT count(*) FROM t'), '500', 'the upgraded cluster has the data');
	is($new->safe_psql('postgres', "SELECT current_setting('data_encryption_version'), current_setting('data_encryption_key_length')"),
		'1|128', 'and is encrypted');
	$new->stop;
	# The old cluster is usable again (copy mode): give its auto.conf back.
	$old->append_conf('postgresql.auto.conf', '');
}

# --- pg_upgrade refusals ------------------------------------------------------------------------
{
	my $plain_new = $C->new('plain_new')->init;
	refused(pg_upgrade_command($old, $plain_new, '--check'), 'old encrypted, new not',
		qr/old and new clusters differ in data encryption\nThe old cluster is encrypted, the new cluster is not encrypted, as their control files record\./);

	my $new = new_encrypted('new2');
	my $key = $old->data_dir . '/pg_encryption/key.bin';
	rename $key, "$key.away" or die;
	my $before = $old->snapshot;
	refused(pg_upgrade_command($old, $new, '--check'), 'old key file missing',
		qr/old cluster: data encryption key file ".*key\.bin" is missing/);
	is_deeply($old->snapshot, $before, 'old key file missing: the old cluster is unchanged');
	rename "$key.away", $key or die;

	my $plain_old = $C->new('plain_old')->init;
	my $plain_new2 = $C->new('plain_new2')->init;
	mkdir $plain_new2->data_dir . '/pg_encryption' or die;
	write_file($plain_new2->data_dir . '/pg_encryption/key.bin', slurp_file($key));
	refused(pg_upgrade_command($plain_old, $plain_new2, '--check'), 'key file in an unencrypted new cluster',
		qr/new cluster: data directory holds a data encryption key, but pg_control says the cluster is not encrypted/);
}

# --- pg_rewind refusals (dry run, source data directory) -------------------------------------------
{
	my $target = new_encrypted('target');
	my $plain = $C->new('plain_source')->init;
	my @rewind = ('pg_rewind', '-n', "--key-unwrap-command=$unwrap");
	refused([ @rewind, '-D', $target->data_dir, '--source-pgdata=' . $plain->data_dir ],
		'target encrypted, source not',
		qr/source and target clusters differ in data encryption\n.*The target cluster is encrypted, the source cluster is not encrypted, as their control files record\./);

	my $source = new_encrypted('source');
	my $key = $target->data_dir . '/pg_encryption/key.bin';
	rename $key, "$key.away" or die;
	refused([ @rewind, '-D', $target->data_dir, '--source-pgdata=' . $source->data_dir ],
		'target key file missing', qr/target cluster: data encryption key file ".*key\.bin" is missing/);
	rename "$key.away", $key or die;

	$key = $source->data_dir . '/pg_encryption/key.bin';
	rename $key, "$key.away" or die;
	refused([ @rewind, '-D', $target->data_dir, '--source-pgdata=' . $source->data_dir ],
		'source key file missing', qr/source cluster: data encryption key file ".*key\.bin" is missing/);
	rename "$key.away", $key or die;
}

done_testing();
