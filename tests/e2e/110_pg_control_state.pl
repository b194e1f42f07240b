# The encryption state lives in pg_control: initdb -y records it
# (pg_controldata, the settings data_encryption_version and
# data_encryption_key_length), pg_resetwal with and without -f and
# pg_checksums --enable/--disable keep it, pg_resetwal guesses it from the
# key check when pg_control is lost (and gives up rather than guess "not
# encrypted"), and the postmaster and a single-user backend refuse to run
# when pg_control and the key files disagree: an encrypted cluster whose key
# file is missing, unreadable or another cluster's, and an unencrypted one
# holding a key file.
use strict;
use warnings;
use Test::More;
use File::Copy qw(copy);
use FeDatakey::Cluster;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::Run;
use PostgreSQL::Test::Utils qw(command_fails_like command_ok slurp_file);

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'control passphrase');
my $wrap = openssl_wrap($pass);
my $unwrap = openssl_unwrap($pass);

# pg_controldata's two lines, as (version, bits); undef when missing.
sub control_state
{
	my ($pgdata, @cmd) = @_;
	@cmd = ('pg_controldata', $pgdata) unless @cmd;
	my ($rc, $out, $err) = run_command(\@cmd);
	is($rc, 0, "@cmd[0 .. $#cmd - 1] runs") or diag $err;
	my ($v) = $out =~ /^Data encryption version:\s+(\d+)$/m;
	my ($b) = $out =~ /^Data encryption key length:\s+(\d+)$/m;
	return ($v, $b);
}

sub state_is
{
	my ($pgdata, $expected, $name) = @_;
	is(join('/', map { $_ // 'missing' } control_state($pgdata)), $expected, $name);
}

# --- initdb records the state ------------------------------------------------------------------
my $plain_node = FeDatakey::Cluster->new('plain');
my $plain = $plain_node->data_dir;
my ($rc, $out, $err) = $plain_node->initdb;
is($rc, 0, 'initdb without -y') or diag $err;
state_is($plain, '0/0', 'pg_controldata: an unencrypted cluster has version 0, key length 0');

my $enc128_node = FeDatakey::Cluster->new('enc128');
my $enc128 = $enc128_node->data_dir;
($rc, $out, $err) = $enc128_node->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
is($rc, 0, 'initdb -y') or diag $err;
state_is($enc128, '1/128', 'initdb -y: version 1, key length 128');

my $node = FeDatakey::Cluster->new('enc256');
my $pgdata = $node->data_dir;
($rc, $out, $err) = $node->initdb('--data-encryption=256', "--key-wrap-command=$wrap",
	"--key-unwrap-command=$unwrap");
is($rc, 0, 'initdb --data-encryption=256') or diag $err;
state_is($pgdata, '1/256', 'initdb --data-encryption=256: version 1, key length 256');

ok($node->start(fail_ok => 1), 'the encrypted cluster starts');
is($node->safe_psql('postgres', "select current_setting('data_encryption_version'), current_setting('data_encryption_key_length')"),
	'1|256', 'the settings data_encryption_version and data_encryption_key_length show pg_control');
$node->safe_psql('postgres', 'create table kept (v text); insert into kept values ($$written before$$)');
like(slurp_file($node->logfile), qr/LOG:  running data encryption key unwrap command from configuration parameter "data_encryption_key_unwrap_command"/,
	'the log says where the command came from');
ok($node->stop('fast', fail_ok => 1), 'stop');

# postgres -C of these read-only settings (computed at run time, like
# data_checksums) reads pg_control, and never the key: with an unwrap command
# that would fail, and one that would leave a mark, it prints the state and
# exits 0, and the command has not run.
my $mark = "$dir/unwrap-ran";
for my $setting ([ 'data_encryption_version', '1' ], [ 'data_encryption_key_length', '256' ])
{
	($rc, $out, $err) = run_command(
		[ 'postgres', '-D', $pgdata, '-C', $setting->[0] ],
		env => { PGDATAKEYUNWRAPCMD => undef });
	is("$rc $out", "0 $setting->[1]\n", "postgres -C $setting->[0] reads pg_control") or diag $err;
}
command_ok(
	[ 'postgres', '-D', $pgdata, '-C', 'shared_memory_size',
		'-c', "data_encryption_key_unwrap_command=touch $mark; false" ],
	'postgres -C of another computed setting succeeds with a failing unwrap command');
ok(!-e $mark, 'and the unwrap command did not run');

ok($plain_node->start(fail_ok => 1), 'the unencrypted cluster starts');
is($plain_node->safe_psql('postgres', "select current_setting('data_encryption_version'), current_setting('data_encryption_key_length')"),
	'0|0', 'the settings of an unencrypted cluster');
unlike(slurp_file($plain_node->logfile), qr/data encryption/, 'an unencrypted cluster logs nothing about encryption');
ok($plain_node->stop('fast', fail_ok => 1), 'stop');

# --- programs that rewrite pg_control keep the fields ------------------------------------------------
state_is($pgdata, '1/256', 'before the rewrites');
is(join('/', map { $_ // 'missing' } control_state($pgdata, 'pg_resetwal', '-n', $pgdata)), '1/256',
	'pg_resetwal -n prints the fields');
command_ok([ 'pg_resetwal', $pgdata ], 'pg_resetwal');
state_is($pgdata, '1/256', 'pg_resetwal keeps them');
command_ok([ 'pg_resetwal', '-f', $pgdata ], 'pg_resetwal -f');
state_is($pgdata, '1/256', 'pg_resetwal -f keeps them');
# Both directions, starting from what initdb chose (18 turns checksums on).
my (undef, $checksums) = run_command([ 'pg_controldata', $pgdata ]);
my @order = $checksums =~ /^Data page checksum version:\s+0$/m ? ('--enable', '--disable') : ('--disable', '--enable');
for my $action (@order)
{
	command_ok([ 'pg_checksums', $action, '-D', $pgdata ], "pg_checksums $action");
	state_is($pgdata, '1/256', "pg_checksums $action keeps them");
}
ok($node->start(fail_ok => 1), 'the cluster starts after the rewrites');
is($node->safe_psql('postgres', 'select v from kept'), 'written before', 'with its data');
ok($node->stop('fast', fail_ok => 1), 'stop');

# --- pg_resetwal guessing a lost pg_control --------------------------------------------------------
# An empty pg_control is one pg_resetwal cannot read (a missing one makes it
# suspect a wrong path and stop): it guesses the contents.
{
	my $copy = "$dir/guess";
	command_ok([ 'cp', '-a', $pgdata, $copy ], 'a copy of the cluster');
	write_file("$copy/global/pg_control", '');
	command_ok([ 'pg_resetwal', '-f', $copy ], 'pg_resetwal -f of the copy without a readable pg_control');
	state_is($copy, '1/256', 'pg_resetwal -f without a readable pg_control guesses "encrypted" and the key length from key.check');

	write_file("$copy/global/pg_control", '');
	unlink "$copy/pg_encryption/key.check" or die;
	command_fails_like([ 'pg_resetwal', '-f', $copy ], qr/cannot guess the data encryption key length/,
		'without a readable pg_control and key.check, pg_resetwal -f refuses to guess');

	is(-s "$copy/global/pg_control", 0, 'and writes no pg_control');

	my $plain_copy = "$dir/guess-plain";
	command_ok([ 'cp', '-a', $plain, $plain_copy ], 'a copy of the unencrypted cluster');
	write_file("$plain_copy/global/pg_control", '');
	command_ok([ 'pg_resetwal', '-f', $plain_copy ], 'pg_resetwal -f of that copy without a readable pg_control');
	state_is($plain_copy, '0/0', 'a cluster without key files is guessed unencrypted');
}

# --- the server refuses when pg_control and the files disagree -----------------------------------------
sub refused
{
	my ($n, $name, $fatal) = @_;
	my $offset = -s $n->logfile;
	ok(!$n->start(fail_ok => 1), "$name: pg_ctl start fails");
	like(slurp_file($n->logfile, $offset), $fatal, "$name: the log says why");
	ok(!-e $n->data_dir . '/postmaster.pid', "$name: no server left running");
}

my $keyfile = "$pgdata/pg_encryption/key.bin";
rename $keyfile, "$keyfile.away" or die;
refused($node, 'key.bin missing',
	qr/FATAL:  data encryption key file ".*key\.bin" is missing\n.*DETAIL:  pg_control says the cluster is encrypted with a 256-bit key/);
($rc, $out, $err) = run_command([ 'postgres', '--single', '-D', $pgdata, 'postgres' ], stdin => "select 1;\n");
isnt($rc, 0, 'key.bin missing: a single-user backend refuses too');
like($err, qr/FATAL:  data encryption key file ".*key\.bin" is missing/, 'key.bin missing: single-user says why');
rename "$keyfile.away", $keyfile or die;

chmod 0000, $keyfile or die;
refused($node, 'key.bin unreadable',
	qr/FATAL:  could not open data encryption key file "pg_encryption\/key\.bin": Permission denied\n.*DETAIL:  pg_control says the cluster is encrypted with a 256-bit key\./);
chmod 0600, $keyfile or die;

my $other_node = FeDatakey::Cluster->new('other256');
my $other = $other_node->data_dir;
($rc, $out, $err) = $other_node->initdb('--data-encryption=256', "--key-wrap-command=$wrap",
	"--key-unwrap-command=$unwrap");
is($rc, 0, 'initdb of another 256-bit cluster') or diag $err;
copy($keyfile, "$keyfile.good") or die;
copy("$other/pg_encryption/key.bin", $keyfile) or die;
refused($node, "another cluster's key.bin",
	qr/FATAL:  data encryption key from key unwrap command does not match the key check/);
copy("$keyfile.good", $keyfile) or die;
unlink "$keyfile.good";

ok($node->start(fail_ok => 1), 'with its own key file the cluster starts again');
is($node->safe_psql('postgres', 'select v from kept'), 'written before', 'its data intact');
ok($node->stop('fast', fail_ok => 1), 'stop');


# The single-user backend of an intact cluster loads the key.
($rc, $out, $err) = run_command([ 'postgres', '--single', '-D', $pgdata, 'postgres' ], stdin => "select v from kept;\n");
is($rc, 0, 'a single-user backend of the intact cluster runs') or diag $err;
like($out, qr/written before/, 'and reads the data');

# A key file in a cluster whose pg_control says "not encrypted".
mkdir "$plain/pg_encryption" or die;
copy($keyfile, "$plain/pg_encryption/key.bin") or die;
refused($plain_node, 'key file in an unencrypted cluster',
	qr/FATAL:  data directory holds a data encryption key, but pg_control says the cluster is not encrypted/);
($rc, $out, $err) = run_command([ 'postgres', '--single', '-D', $plain, 'postgres' ], stdin => "select 1;\n");
isnt($rc, 0, 'key file in an unencrypted cluster: a single-user backend refuses too');
like($err, qr/pg_control says the cluster is not encrypted/, 'and says why');

done_testing();
