# pg_createsubscriber (17 and later) on an encrypted standby, with PostgreSQL's
# own PostgreSQL::Test::Cluster. pg_createsubscriber starts the standby
# itself (pg_ctl without -l: the server logs to pg_createsubscriber's
# standard output), so the standby must reach its key through the configured unwrap
# command. When it cannot (the passphrase file is gone), pg_createsubscriber
# fails before it touches anything: no publication or slot on the primary,
# the standby still a standby of the same system. When it can, the standby
# becomes a logical subscriber with a new system identifier, still encrypted
# in pg_control (pg_createsubscriber runs pg_resetwal), with the same key.
# Versions: 17 18
use strict;
use warnings;

use FeDatakey::Upstream;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);

my $secrets = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($secrets, 'datakey.pass', 'createsubscriber secret');

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(
	allows_streaming => 'logical',
	extra => [
		'-y', '--key-wrap-command=' . openssl_wrap($pass),
		'--key-unwrap-command=' . openssl_unwrap($pass)
	]);
$primary->start;
$primary->safe_psql('postgres',
	"CREATE TABLE t (id int PRIMARY KEY, v text);
	 INSERT INTO t SELECT g, 'before ' || g FROM generate_series(1, 500) g");
$primary->backup('bk');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->wait_for_replay_catchup($standby);
$standby->stop;
my $d = $standby->data_dir;
my $key_bin = slurp_file("$d/pg_encryption/key.bin");

sub control
{
	my ($dir) = @_;
	my ($stdout, $stderr) = run_command([ 'pg_controldata', $dir ]);
	my %c = map { /^([^:]+):\s+(.*)$/ ? ($1 => $2) : () } split /\n/, $stdout;
	return \%c;
}
my $primary_sysid = control($primary->data_dir)->{'Database system identifier'};

my @createsubscriber = (
	'pg_createsubscriber', '--verbose',
	'--recovery-timeout', $PostgreSQL::Test::Utils::timeout_default,
	'--pgdata', $d,
	'--publisher-server', $primary->connstr('postgres'),
	'--socketdir', $standby->host,
	'--subscriber-port', $standby->port,
	'--publication', 'pub1',
	'--subscription', 'sub1',
	'--database', 'postgres');

# --- the standby cannot reach its key ---------------------------------------------------
rename($pass, "$pass.away") or die "rename: $!";
my ($stdout, $stderr);
my $ok = IPC::Run::run(\@createsubscriber, '>', \$stdout, '2>', \$stderr);
ok(!$ok, 'pg_createsubscriber fails when the standby cannot unwrap its key');
like($stderr, qr/could not start|pg_ctl failed/, 'it says that the standby did not start');
like($stdout, qr/FATAL:  key unwrap command failed/, 'the server says why: the unwrap command failed');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM pg_publication'), '0',
	'no publication was created on the primary');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM pg_replication_slots'), '0',
	'nor a replication slot');
ok(-e "$d/standby.signal", 'the standby is still a standby');
is(control($d)->{'Database system identifier'}, $primary_sysid, 'of the same system');
ok(!-e "$d/postmaster.pid", 'and no server was left running');
rename("$pass.away", $pass) or die "rename: $!";

# The failed attempt left it able to run as before.
$standby->start;
$primary->safe_psql('postgres', "INSERT INTO t VALUES (501, 'streamed')");
$primary->wait_for_replay_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT v FROM t WHERE id = 501'), 'streamed',
	'after the failure, the standby starts and streams again');
$standby->stop;

# --- the standby reaches its key --------------------------------------------------------
my $offset = -s $standby->logfile;
($stdout, $stderr) = ('', '');
$ok = IPC::Run::run(\@createsubscriber, '>', \$stdout, '2>', \$stderr);
ok($ok, 'pg_createsubscriber converts the encrypted standby') or diag($stderr);
like($stdout, qr/LOG:  data encryption key loaded and verified/,
	'the server that pg_createsubscriber started loaded the key');
unlike($stdout . $stderr, qr/createsubscriber secret/, 'the passphrase is in no output');

my $c = control($d);
isnt($c->{'Database system identifier'}, $primary_sysid, 'it has a new system identifier');
ok($c->{'Data encryption version'} > 0, 'pg_control still says encrypted after pg_resetwal')
  or diag(explain $c);
is($c->{'Data encryption key length'}, 128, 'with a 128-bit key');
is(slurp_file("$d/pg_encryption/key.bin"), $key_bin, 'key.bin is unchanged');
command_ok([ 'pg_datakey', 'verify', '-D', $d ], 'pg_datakey verify of the subscriber');

$standby->start;
like(slurp_file($standby->logfile, $offset), qr/LOG:  data encryption key loaded and verified/,
	'the subscriber starts with the key');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'it is no longer a standby');
$primary->safe_psql('postgres', "INSERT INTO t VALUES (502, 'replicated')");
$primary->wait_for_catchup('sub1');
is($standby->safe_psql('postgres', 'SELECT count(*), max(id) FROM t'), '502|502',
	'logical replication carries the rows from the primary');

$standby->stop;
$primary->stop;
done_testing();
