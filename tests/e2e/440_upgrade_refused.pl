# pg_upgrade refuses, in its checks and before anything is changed: a new
# cluster with a fresh key, encrypted to unencrypted, unencrypted to
# encrypted, a wrong unwrap command.  Both clusters stay as they were and
# still start.
use strict;
use warnings;

use FeDatakey::Cluster;
use FeDatakey::Run ();    # run_command by its full name: upstream's Utils exports one too
use PostgreSQL::Test::Utils;
use Test::More;

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;

my ($wrap, $unwrap) = key_commands('up_refused');
my ($bad_wrap, $bad_unwrap) = key_commands('up_wrong', 'not it');

sub make
{
	my ($name, %opt) = @_;
	my $fill = delete $opt{fill};
	my $node = $C->new($name);
	$node->init(%opt);
	$node->start;
	$node->safe_psql('postgres', "CREATE TABLE t AS SELECT g AS id, '$name' AS src FROM generate_series(1, 40) g")
	  if $fill;
	$node->stop;
	return $node;
}

my $enc_old = make('enc_old', encrypted => 1, wrap => $wrap, unwrap => $unwrap, fill => 1);
my $plain_old = make('plain_old', encrypted => 0, fill => 1);
my $fresh_new = make('fresh_new', encrypted => 1, wrap => $wrap, unwrap => $unwrap);
my $plain_new = make('plain_new', encrypted => 0);
my $same_new = make('same_new', encrypted => 1, wrap => $wrap, unwrap => $unwrap,
	copy_key_from => $enc_old->data_dir . '/pg_encryption/key.bin');

sub refused
{
	my ($label, $old, $new, $extra, $env, $pattern) = @_;
	my %before = (old => $old->snapshot, new => $new->snapshot);
	for my $check ([], ['--check'])
	{
		my ($rc, $o, $e) =
		  FeDatakey::Run::run_command(pg_upgrade_command($old, $new, @$check, @$extra), env => $env);
		my $what = "$label" . (@$check ? ' (--check)' : '');
		isnt($rc, 0, "$what: refused");
		like("$o$e", $pattern, "$what: message");
		like($o, qr/Checking data encryption keys\s+fatal/, "$what: reported among the checks");
		unlike("$o$e", qr/not it|file:/, "$what: command text not shown");
	}
	is_deeply($old->snapshot, $before{old}, "$label: old cluster unchanged");
	is_deeply($new->snapshot, $before{new}, "$label: new cluster unchanged");
}

refused('fresh key', $enc_old, $fresh_new, [ "--key-unwrap-command=$unwrap" ], {},
	qr/old and new clusters use different data encryption keys.*\n.*\n.*initdb -y --copy-key-from=/);
refused('encrypted to unencrypted', $enc_old, $plain_new, [], { PGDATAKEYUNWRAPCMD => $unwrap },
	qr/old and new clusters differ in data encryption\nThe old cluster is encrypted, the new cluster is not encrypted/);
refused('unencrypted to encrypted', $plain_old, $same_new, [], {},
	qr/The old cluster is not encrypted, the new cluster is encrypted/);
refused('wrong unwrap command by option', $enc_old, $same_new,
	[ "--key-unwrap-command=$bad_unwrap" ], {},
	qr/could not load the data encryption key of the old cluster/);
refused('wrong unwrap command by variable', $enc_old, $same_new,
	[], { PGDATAKEYUNWRAPCMD => $bad_unwrap },
	qr/could not load the data encryption key of the old cluster/);
refused('empty unwrap command', $enc_old, $same_new, [ '--key-unwrap-command=' ], {},
	qr/empty/);

# A value of pg_upgrade's own -o that looks like our option stays pg_upgrade's:
# it reaches the server, which rejects the unknown switch; our check passed.
my ($rc, $o, $e) = FeDatakey::Run::run_command(
	pg_upgrade_command($enc_old, $same_new, '--check', '-o', "--key-unwrap-command=$bad_unwrap"),
	env => {});
like($o, qr/Checking data encryption keys\s+ok/,
	'-o value is not taken as --key-unwrap-command');

# Everything still starts with its rows.
for my $node ($enc_old, $plain_old)
{
	$node->start;
	is($node->safe_psql('postgres', "SELECT count(*) FROM t"), '40', $node->name . ' starts with its rows');
	$node->stop;
}
for my $node ($fresh_new, $plain_new, $same_new)
{
	$node->start;
	is($node->safe_psql('postgres', "SELECT 1"), '1', $node->name . ' starts');
	$node->stop;
}

done_testing();
