# Versions: 15
# (Debian 12's Patroni 3.0 and pgBackRest 2.45 predate PostgreSQL 17 and 18)
#
# pgBackRest 2.45 and an encrypted cluster: a stanza on a local repository,
# WAL archiving through archive_command, full, differential and incremental
# backups, a restore into a new data directory with point-in-time recovery to
# a named restore point, the restored cluster starting with its key, and what
# the repository holds (the wrapped key, never the plaintext).  Then a rewrap
# while a backup runs, and a backup of an interrupted rewrap: each restores,
# by the procedure of docs/ha-and-backup.md.
use strict;
use warnings;

use FeDatakey::Cluster;
use FeDatakey::Run ();    # run_command by its full name: upstream's Utils exports one too
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap unwrap_key_bytes);
use FeDatakey::Files qw(write_file files_containing);
use FeDatakey::Datakey qw(run_datakey datakey_json);
use IPC::Run ();
use JSON::PP ();

my $t0 = time;
my $C = 'FeDatakey::Cluster';
my $base = $C->base_dir;
my $pass1 = passphrase_file($base, 'datakey.pass.1', 'backup secret 1');
my $pass2 = passphrase_file($base, 'datakey.pass.2', 'backup secret 2');
my ($wrap1, $unwrap1) = (openssl_wrap($pass1), openssl_unwrap($pass1));
my ($wrap2, $unwrap2) = (openssl_wrap($pass2), openssl_unwrap($pass2));

my $primary = $C->new('primary');
$primary->init(encrypted => 1, wrap => $wrap1, unwrap => $unwrap1);
my $pg = $primary->data_dir;

# The configuration of docs/ha-and-backup.md, with test paths.  No
# compression, so that the search for the plaintext key below is meaningful.
my $conf = "$base/pgbackrest.conf";
my $sock = $primary->host;
my $port = $primary->port;
write_file($conf, <<"EOF", 0600);
[global]
repo1-path=$base/repo
repo1-retention-full=4
compress-type=none
start-fast=y
log-path=$base/pgbackrest-log
lock-path=$base/pgbackrest-lock
spool-path=$base/pgbackrest-spool
log-level-console=warn
log-level-file=info

[main]
pg1-path=$pg
pg1-port=$port
pg1-socket-path=$sock
pg-version-force=15
EOF
mkdir "$base/$_" for qw(pgbackrest-log pgbackrest-lock pgbackrest-spool);
$primary->append_conf('postgresql.conf',
	"archive_mode = on\narchive_command = 'pgbackrest --config=$conf --stanza=main archive-push %p'");
$primary->start;

sub backrest
{
	my (@args) = @_;
	return FeDatakey::Run::run_command([ 'pgbackrest', "--config=$conf", '--stanza=main', @args ], timeout => 120);
}

sub backrest_ok
{
	my ($what, @args) = @_;
	my ($rc, $out, $err) = backrest(@args);
	is($rc, 0, $what) or diag("$out$err");
	return $out;
}

backrest_ok('stanza-create on the encrypted primary succeeds', 'stanza-create');
backrest_ok('check: archive_command delivers WAL to the repository', 'check');

# A restored directory has the primary's postgresql.conf: the node gets its
# own port, and does not archive into the primary's stanza.
sub own_settings
{
	my ($node) = @_;
	$node->append_conf('postgresql.conf', 'port = ' . $node->port . "\narchive_mode = off");
}

$primary->safe_psql('postgres', "CREATE TABLE t (id int PRIMARY KEY, phase text);
	INSERT INTO t SELECT g, 'full' FROM generate_series(1, 100) g");
backrest_ok('full backup', 'backup', '--type=full');
$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'diff' FROM generate_series(101, 200) g");
backrest_ok('differential backup', 'backup', '--type=diff');
$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'incr' FROM generate_series(201, 300) g");
backrest_ok('incremental backup', 'backup', '--type=incr');

my $info = JSON::PP::decode_json(backrest_ok('info', 'info', '--output=json'));
is_deeply([ map { $_->{type} } @{ $info->[0]{backup} } ], [qw(full diff incr)],
	'the repository holds a full, a differential and an incremental backup');

# Rows before and after a named restore point; the WAL reaches the archive.
$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'before rp' FROM generate_series(301, 350) g");
$primary->safe_psql('postgres', "SELECT pg_create_restore_point('before_the_mistake')");
$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'after rp' FROM generate_series(351, 400) g");
backrest_ok('the WAL with the restore point is archived', 'check');

# --- what the repository holds ----------------------------------------------------

my $plain = unwrap_key_bytes($pg, $unwrap1);
is(length $plain, 64, 'the key unwraps (64 bytes, AES-128 layout)');
my $wrapped = slurp_file("$pg/pg_encryption/key.bin");
ok(scalar(files_containing("$base/repo", $wrapped)) >= 1, 'the repository holds the wrapped key.bin');
is_deeply([ files_containing("$base/repo", $plain) ], [],
	'no file of the repository holds the plaintext key');
is_deeply([ files_containing("$base/pgbackrest-log", 'backup secret') ], [], "pgBackRest's logs hold no passphrase");
is_deeply([ files_containing("$base/repo", 'backup secret') ], [], 'nor does the repository');

# --- restore with point-in-time recovery -------------------------------------------

my $restored = $C->new('restored');
my $rdir = $restored->data_dir;
mkdir $rdir, 0700;
backrest_ok('restore into a new directory to the named restore point',
	'restore', "--pg1-path=$rdir", '--type=name', '--target=before_the_mistake', '--target-action=promote');
is(slurp_file("$rdir/pg_encryption/key.bin"), $wrapped, 'the restored directory has the wrapped key.bin');
is(slurp_file("$rdir/pg_encryption/key.check"), slurp_file("$pg/pg_encryption/key.check"),
	'and its key check');
like(slurp_file("$rdir/postgresql.conf"), qr/^data_encryption_key_unwrap_command = /m,
	'the restored configuration names the unwrap command');
command_ok([ 'pg_datakey', 'verify', '-D', $rdir ], 'pg_datakey verify on the restored directory succeeds');
own_settings($restored);
$restored->start;
like(slurp_file($restored->logfile), qr/data encryption key loaded and verified/,
	'the restored cluster starts with its key');
ok($restored->poll_query_until('postgres', 'SELECT pg_is_in_recovery()', 'f'), 'recovery ended at the restore point');
is($restored->safe_psql('postgres', "SELECT phase, count(*) FROM t GROUP BY 1 ORDER BY min(id)"),
	"full|100\ndiff|100\nincr|100\nbefore rp|50", 'the rows up to the restore point, none after');
$restored->stop;

# --- a rewrap while a backup runs ----------------------------------------------------

$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'rewrap' FROM generate_series(401, 20400) g");
my ($bout, $berr) = ('', '');
my $bh = IPC::Run::start([ 'pgbackrest', "--config=$conf", '--stanza=main', 'backup', '--type=full' ],
	'>', \$bout, '2>', \$berr, IPC::Run::timeout(120));
command_ok([ 'pg_datakey', 'rewrap', '-D', $pg, "--new-key-wrap-command=$wrap2", "--new-key-unwrap-command=$unwrap2" ],
	'rewrap to passphrase 2 while a full backup runs');
ok($bh->finish, 'the backup finishes') or diag("$bout$berr");

my $during = $C->new('during');
my $ddir = $during->data_dir;
mkdir $ddir, 0700;
backrest_ok('restore of the backup taken during the rewrap', 'restore', "--pg1-path=$ddir", '--type=immediate',
	'--target-action=promote');
my $st = datakey_json($ddir);
is($st->{key_check_value}, datakey_json($pg)->{key_check_value},
	'pg_datakey status: the same key check value as the primary');
# The backup copied key.bin and postgresql.conf at different moments: the
# key is wrapped for passphrase 1 or 2, and the configuration may name
# either.  The procedure: verify with the configured command; if that fails,
# find the passphrase of the backup's period that opens it and make it the
# configured command with a rewrap.
my ($rc, $out, $err) = run_datakey([ 'verify', '-D', $ddir ]);
if ($rc != 0)
{
	my @open = grep { (run_datakey([ 'verify', '-D', $ddir, "--key-unwrap-command=$_->[1]" ]))[0] == 0 }
	  ([ 1, $unwrap1 ], [ 2, $unwrap2 ]);
	is(scalar @open, 1, "the restored key.bin opens with one passphrase of the backup's period")
	  or diag($err);
	($rc, undef, $err) = run_datakey(
		[ 'rewrap', '-D', $ddir, "--key-unwrap-command=$open[0][1]",
			"--new-key-wrap-command=$wrap2", "--new-key-unwrap-command=$unwrap2" ]);
	is($rc, 0, 'a rewrap from that passphrase to the current one fixes the restored directory') or diag($err);
	diag("the backup during the rewrap held the key for passphrase $open[0][0] and another command");
}
else { pass('the restored key.bin opens with the command its configuration names') }
command_ok([ 'pg_datakey', 'verify', '-D', $ddir ], 'pg_datakey verify on the restored directory succeeds');
own_settings($during);
$during->start;
is($during->safe_psql('postgres', "SELECT count(*) FROM t"), '20400', 'the cluster restored from that backup starts, rows intact');
$during->stop;

# --- a backup of an interrupted rewrap (a crash after the key file was renamed) ------

($rc, undef, $err) = run_datakey(
	[ 'rewrap', '-D', $pg, "--new-key-wrap-command=$wrap1", "--new-key-unwrap-command=$unwrap1" ],
	env => { FE_DATAKEY_CRASH_AT => 'after-rename' });
isnt($rc, 0, 'a rewrap back to passphrase 1 is killed after it renamed the new key file');
backrest_ok('a full backup of the primary in that state', 'backup', '--type=full');
my $crash = $C->new('crash');
my $cdir = $crash->data_dir;
mkdir $cdir, 0700;
backrest_ok('restore of that backup', 'restore', "--pg1-path=$cdir", '--type=immediate', '--target-action=promote');
$st = datakey_json($cdir);
is($st->{rewrap}{state}, 'committed', 'pg_datakey status on the restored directory reports the interrupted rewrap')
  or diag(explain $st);
($rc, $out, $err) = run_datakey([ 'status', '-D', $cdir ]);
like("$out$err", qr/run "pg_datakey repair" before starting the server/, 'and says what to do');
command_fails([ 'pg_datakey', 'verify', '-D', $cdir ], 'pg_datakey verify refuses the restored directory before the repair');
own_settings($crash);
ok(!$crash->start(fail_ok => 1), 'the restored server refuses to start before the repair');
like(slurp_file($crash->logfile), qr/FATAL:  key unwrap command failed/, 'with the key error in its log');
command_ok([ 'pg_datakey', 'repair', '-D', $cdir ], 'pg_datakey repair on the restored directory completes the rewrap');
command_ok([ 'pg_datakey', 'verify', '-D', $cdir ], 'then pg_datakey verify succeeds');
$crash->start;
is($crash->safe_psql('postgres', "SELECT count(*) FROM t"), '20400', 'and the restored cluster starts');
$crash->stop;

# The primary itself is repaired the same way.
command_ok([ 'pg_datakey', 'repair', '-D', $pg ], 'the primary is repaired too');
$primary->stop;
diag(sprintf('wall time: %.1fs', time - $t0));
done_testing();
