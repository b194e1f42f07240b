# Versions: across
#
# pg_upgrade of encrypted clusters from one major version to a newer one
# (every pair of the versions under test: 15->17, 15->18, 17->18), in
# --copy and --link mode, and --swap into 18.  The old cluster's key is wrapped under
# passphrase A; the new cluster is made by the new version's initdb with
# --copy-key-from and wrapped under passphrase B.  Both clusters name the
# same unwrap command, which reads the passphrase file beside the data
# directory it runs in, so each server and pg_upgrade's key check use the
# cluster's own passphrase.  After each upgrade the data is compared row by
# row, with its large object and sequence, and the key check of the new
# cluster is the old one's.  Then the refusals, each before anything
# changes: encrypted to unencrypted, unencrypted to encrypted, different
# keys, no unwrap command anywhere.
use strict;
use warnings;

use FeDatakey::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use FeDatakey::Run qw(pg_bins pg_major);
use FeDatakey::KeyCommands qw(passphrase_file);
use FeDatakey::Files qw(write_file);

my $C = 'FeDatakey::Cluster';
my $base = $C->base_dir;
chdir $base;

my %bins = pg_bins();
my @versions = sort { $a <=> $b } keys %bins;
die "FE_DATAKEY_PG_BINS names fewer than two versions ('"
  . ($ENV{FE_DATAKEY_PG_BINS} // '')
  . "'): scripts/test runs this file with every version it tests\n"
  if @versions < 2;
is(pg_major($bins{$_}), $_, "the programs given for $_ are PostgreSQL $_") for @versions;

# Each node's data directory has its passphrase beside it, in ../datakey.pass.
my $unwrap = 'openssl enc -d -aes-256-cbc -pbkdf2 -pass "file:../datakey.pass" -in "%p"';

# A node of version $v with passphrase $secret.  Its server settings are
# those of a node without streaming: upstream's settings for streaming
# include some that only the newest version knows.
sub node
{
	my ($name, $v, $secret) = @_;
	my $node = $C->new($name, install_path => dirname($bins{$v}));
	passphrase_file($node->basedir, 'datakey.pass', $secret);
	return $node;
}

sub wrap_for
{
	my ($node) = @_;
	return "openssl enc -aes-256-cbc -pbkdf2 -salt -pass \"file:" . $node->basedir . "/datakey.pass\" -out %p";
}

my $serial = 0;

# An encrypted cluster of version $v under passphrase $pass, with data.
sub old_cluster
{
	my ($v) = @_;
	my $name = 'old' . $v . '_' . ++$serial;
	my $old = node($name, $v, "passphrase A $name");
	$old->init(encrypted => 1, wrap => wrap_for($old), unwrap => $unwrap, allows_streaming => 0);
	$old->start;
	$old->safe_psql('postgres',
		"CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric, opened date);
		 CREATE INDEX accounts_owner ON accounts (owner);
		 INSERT INTO accounts SELECT g, 'owner ' || g, g * 1.5, date '2020-01-01' + g
		   FROM generate_series(1, 3000) g;
		 CREATE SEQUENCE invoice_no START 1000;
		 SELECT nextval('invoice_no') FROM generate_series(1, 42);
		 SELECT lo_from_bytea(515151, convert_to(repeat('large object payload ', 500), 'UTF8'));");
	$old->stop;
	return $old;
}

# The new cluster of version $v for $old: its key copied from $old, wrapped
# under passphrase B.  initdb of 18 turns data checksums on by default;
# pg_upgrade needs the old cluster's setting, which is off.
sub new_cluster
{
	my ($v, $old, %opt) = @_;
	my $name = 'new' . $v . '_' . ++$serial;
	my $new = node($name, $v, "passphrase B $name");
	$new->init(
		encrypted => $opt{encrypted} // 1,
		wrap => wrap_for($new),
		unwrap => $unwrap,
		copy_key_from => $opt{own_key} ? undef : $old->data_dir . '/pg_encryption/key.bin',
		allows_streaming => 0,
		extra => [ $v >= 18 ? ('--no-data-checksums') : () ]);
	return $new;
}

my %queries = (
	rows => 'SELECT id, owner, balance, opened FROM accounts ORDER BY id',
	index => "SET enable_seqscan = off; SELECT id FROM accounts WHERE owner = 'owner 2718'",
	sequence => 'SELECT last_value, is_called FROM invoice_no',
	large_object => "SELECT md5(lo_get(515151))",
);

sub contents
{
	my ($node) = @_;
	$node->start;
	my %c = map { $_ => $node->safe_psql('postgres', $queries{$_}) } keys %queries;
	$node->stop;
	return \%c;
}

sub key_check { return slurp_file($_[0]->data_dir . '/pg_encryption/key.check') }

my @pairs;
for my $i (0 .. $#versions)
{
	push @pairs, [ $versions[$i], $versions[$_] ] for $i + 1 .. $#versions;
}

for my $pair (@pairs)
{
	my ($from, $to) = @$pair;
	# --swap (new in 18) moves the old cluster's directories into the new one.
	for my $mode ('--copy', '--link', $to >= 18 ? ('--swap') : ())
	{
		my $label = "$from -> $to $mode";
		my $old = old_cluster($from);
		my $before = contents($old);
		is($before->{sequence}, '1041|t', "$label: the old cluster's sequence has advanced");
		my $new = new_cluster($to, $old);
		is(key_check($new), key_check($old), "$label: --copy-key-from gives the new cluster the old key check");
		isnt(slurp_file($new->data_dir . '/pg_encryption/key.bin'),
			slurp_file($old->data_dir . '/pg_encryption/key.bin'),
			"$label: the new cluster's key file is wrapped anew (passphrase B)");

		my ($rc, $out, $err) = FeDatakey::Run::run_command(pg_upgrade_command($old, $new, $mode), cwd => $base);
		is($rc, 0, "$label: pg_upgrade succeeds") or diag("$out\n$err");
		like($out, qr/Checking data encryption keys\s+ok/, "$label: pg_upgrade checked the keys");
		unlike("$out$err", qr/passphrase|file:/, "$label: no command text in pg_upgrade's output");

		is(key_check($new), key_check($old), "$label: the new cluster's key check is still the old one's");
		is(pg_major($new->bin_dir), $to, "$label: the new cluster runs PostgreSQL $to");
		my $after = contents($new);
		is($after->{$_}, $before->{$_}, "$label: $_ equal after the upgrade") for sort keys %queries;
		$new->start;
		is($new->safe_psql('postgres', "SELECT current_setting('server_version_num')::int / 10000"),
			$to, "$label: the server is version $to");
		is($new->safe_psql('postgres', "SELECT nextval('invoice_no')"), '1042', "$label: the sequence goes on");
		$new->stop;
	}
}

# --- refusals, each before anything changes: oldest to newest ---------------

my ($from, $to) = ($versions[0], $versions[-1]);

sub refused
{
	my ($label, $old, $new, $pattern, %opt) = @_;
	my %before = (old => $old->snapshot, new => $new->snapshot);
	my ($rc, $out, $err) =
	  FeDatakey::Run::run_command(pg_upgrade_command($old, $new), cwd => $base, env => $opt{env});
	isnt($rc, 0, "$label: pg_upgrade refuses");
	like("$out$err", $pattern, "$label: the message says why");
	unlike($out, qr/Performing Upgrade/, "$label: refused before the upgrade");
	is_deeply($old->snapshot, $before{old}, "$label: the old cluster is unchanged");
	is_deeply($new->snapshot, $before{new}, "$label: the new cluster is unchanged");
	$old->start;
	is($old->safe_psql('postgres', 'SELECT count(*) FROM accounts'), '3000', "$label: the old cluster still starts");
	$old->stop;
	return;
}

{
	my $old = old_cluster($from);
	my $plain = new_cluster($to, $old, encrypted => 0);
	refused("$from encrypted -> $to unencrypted", $old, $plain,
		qr/old and new clusters differ in data encryption\nThe old cluster is encrypted, the new cluster is not encrypted/);

	my $other = new_cluster($to, $old, own_key => 1);
	isnt(key_check($other), key_check($old), 'a new cluster with a key of its own');
	refused("$from -> $to with different keys", $old, $other,
		qr/old and new clusters use different data encryption keys/);

	# No command in either configuration, none given: the old cluster's
	# postgresql.conf loses its line (the new one keeps its own).
	my $new = new_cluster($to, $old);
	my $conf = $old->data_dir . '/postgresql.conf';
	my $text = slurp_file($conf);
	(my $without = $text) =~ s/^data_encryption_key_unwrap_command\s*=.*$//mg;
	isnt($without, $text, 'the old cluster named its unwrap command in postgresql.conf');
	write_file($conf, $without);
	my %before = (old => $old->snapshot, new => $new->snapshot);
	my ($rc, $out, $err) = FeDatakey::Run::run_command(pg_upgrade_command($old, $new), cwd => $base);
	isnt($rc, 0, "$from -> $to, no unwrap command for the old cluster: pg_upgrade refuses");
	unlike($out, qr/Performing Upgrade/, 'no unwrap command: refused before the upgrade');
	like($out, qr/Checking data encryption keys\s+fatal\s+key unwrap command not specified/,
		'no unwrap command: the key check says so');
	is_deeply($old->snapshot, $before{old}, 'no unwrap command: the old cluster is unchanged');
	is_deeply($new->snapshot, $before{new}, 'no unwrap command: the new cluster is unchanged');
	write_file($conf, $text);
}

{
	my $plain_old = $C->new('plain_old', install_path => dirname($bins{$from}));
	$plain_old->init(encrypted => 0, allows_streaming => 0);
	$plain_old->start;
	$plain_old->safe_psql('postgres', 'CREATE TABLE accounts AS SELECT g AS id FROM generate_series(1, 3000) g');
	$plain_old->stop;
	# Any encrypted new cluster: its own key (there is none to copy).
	my $enc_new = new_cluster($to, $plain_old, own_key => 1);
	refused("$from unencrypted -> $to encrypted", $plain_old, $enc_new,
		qr/The old cluster is not encrypted, the new cluster is encrypted/);
}

done_testing();
