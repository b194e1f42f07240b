# pg_upgrade of an encrypted cluster (15 to 15: the same major version works)
# with tables, indexes and a large object, into a new cluster made with
# initdb --copy-key-from; --check, then copy and link modes (and clone where
# the file system supports it).  The unwrap command holds spaces, quotes and
# a literal %, passed by option or by variable through pg_ctl -o.
use strict;
use warnings;

use Test::More;
use FeDatakey::TestLib;
use FeDatakey::Cluster;

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;

my ($wrap, $unwrap) = key_commands('upgrade');
like($unwrap, qr/ .*'.*".*%/, 'the unwrap command holds spaces, quotes and %');

my $old = $C->new('old');
$old->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
$old->start;
$old->safe_psql(
	"CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric);
	 CREATE INDEX accounts_owner ON accounts (owner);
	 INSERT INTO accounts SELECT g, 'owner ' || g, g * 1.5 FROM generate_series(1, 5000) g;
	 CREATE TABLE notes (id serial, body text);
	 INSERT INTO notes (body) SELECT repeat('note', g % 50) FROM generate_series(1, 300) g;
	 SELECT lo_from_bytea(424242, 'large object payload'::bytea);");
my $expected = $old->safe_psql(
	"SELECT count(*), sum(balance) FROM accounts WHERE owner LIKE 'owner 1%'");
$old->stop;
my $old_key = slurp_file($old->data_dir . '/pg_encryption/key.bin');

sub new_cluster
{
	my ($name) = @_;
	my $new = $C->new($name);
	$new->init(
		encrypted => 1,
		wrap => $wrap,
		unwrap => $unwrap,
		copy_key_from => $old->data_dir . '/pg_encryption/key.bin');
	return $new;
}

sub upgrade
{
	my ($new, $mode, %opt) = @_;
	my @extra;
	push @extra, $mode if $mode;
	push @extra, "--key-unwrap-command=$unwrap" if $opt{by} eq 'option';
	my %env = $opt{by} eq 'variable' ? (PGDATAKEYUNWRAPCMD => $unwrap) : ();
	return run_command(pg_upgrade_command($old, $new, @extra), env => \%env);
}

sub verify
{
	my ($new, $label) = @_;
	$new->start;
	is($new->safe_psql(
			"SELECT count(*), sum(balance) FROM accounts WHERE owner LIKE 'owner 1%'"),
		$expected, "$label: rows present");
	is($new->safe_psql("SELECT count(*) FROM accounts"), '5000', "$label: all accounts");
	is($new->safe_psql("SELECT count(*) FROM notes"), '300', "$label: all notes");
	is($new->safe_psql(
			"SET enable_seqscan = off; SELECT owner FROM accounts WHERE owner = 'owner 4711'"),
		'owner 4711', "$label: index scan works");
	is($new->safe_psql("SELECT convert_from(lo_get(424242), 'UTF8')"),
		'large object payload', "$label: large object present");
	$new->stop;
	$new->start;
	is($new->safe_psql("SELECT count(*) FROM accounts"), '5000', "$label: restarts");
	$new->stop;
}

# copy mode, command by option; --check first
my $new = new_cluster('new_copy');
my $new_key = slurp_file($new->data_dir . '/pg_encryption/key.bin');
my $new_check = slurp_file($new->data_dir . '/pg_encryption/key.check');
is($new_check, slurp_file($old->data_dir . '/pg_encryption/key.check'),
	'--copy-key-from gives the new cluster the same key check');

my ($rc, $o, $e) = upgrade($new, '--check', by => 'option');
is($rc, 0, 'pg_upgrade --check succeeds') or diag("$o\n$e");
like($o, qr/Checking data encryption keys\s+ok/, '--check reports the key check');

($rc, $o, $e) = upgrade($new, undef, by => 'option');
is($rc, 0, 'pg_upgrade (copy, command by option) succeeds') or diag("$o\n$e");
unlike("$o$e", qr/passphrase|file:/, 'command text not shown');
is(slurp_file($new->data_dir . '/pg_encryption/key.bin'), $new_key,
	'copy: new cluster keeps its key file');
is(slurp_file($new->data_dir . '/pg_encryption/key.check'), $new_check,
	'copy: new cluster keeps its key check');
verify($new, 'copy');

# the old cluster is untouched by copy mode and still starts
is(slurp_file($old->data_dir . '/pg_encryption/key.bin'), $old_key,
	'old cluster key file untouched');

# clone mode, command by variable, where supported
$new = new_cluster('new_clone');
($rc, $o, $e) = upgrade($new, '--clone', by => 'variable');
SKIP:
{
	skip 'file cloning not supported here', 7
	  if $rc != 0 && "$o$e" =~ /could not clone file.*not supported/;
	is($rc, 0, 'pg_upgrade (clone, command by variable) succeeds') or diag("$o\n$e");
	verify($new, 'clone');
}

# configured commands only (none given), copy mode
$new = new_cluster('new_conf');
($rc, $o, $e) = upgrade($new, undef, by => 'none');
is($rc, 0, 'pg_upgrade with the configured commands succeeds') or diag("$o\n$e");
verify($new, 'configured command');

# link mode last: it hands the old cluster's files to the new one
$new = new_cluster('new_link');
$new_key = slurp_file($new->data_dir . '/pg_encryption/key.bin');
($rc, $o, $e) = upgrade($new, '--link', by => 'variable');
is($rc, 0, 'pg_upgrade (link, command by variable) succeeds') or diag("$o\n$e");
verify($new, 'link');
is(slurp_file($new->data_dir . '/pg_encryption/key.bin'), $new_key,
	'link: new cluster keeps its key file');

($rc, $o) = run_command([ 'pg_upgrade', '--help' ]);
like($o, qr/--key-unwrap-command=COMMAND/, '--help lists --key-unwrap-command');

done_testing();
