# Versions: 15
# (Debian 12's pgBackRest 2.45 predates PostgreSQL 17 and 18, and no newer one
# can be had on Debian 12: docs/ha-and-backup.md)
#
# pgBackRest 2.45 and an encrypted cluster: a stanza on a local repository,
# WAL archiving through archive_command, full, differential and incremental
# backups, a restore into a new data directory with point-in-time recovery to
# a named restore point, the restored cluster starting with its key, and what
# the repository holds (the wrapped key, never the plaintext).  Then rewraps
# during a backup, made to fall before its copy and after it, and a rewrap
# interrupted during one; what each backup holds, and that it restores by the
# procedure of docs/ha-and-backup.md.
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
log-level-file=detail

[main]
pg1-path=$pg
pg1-port=$port
pg1-socket-path=$sock
pg-version-force=15
EOF
mkdir "$base/$_" for qw(pgbackrest-log pgbackrest-lock pgbackrest-spool);
$primary->append_conf('postgresql.conf',
	"archive_mode = on\narchive_command = 'pgbackrest --config=$conf --stanza=main archive-push %p'");
# For the backups held at their start checkpoint (see start_held_backup):
# buffers that stay dirty until a checkpoint writes them.
$primary->append_conf('postgresql.conf', "shared_buffers = 16MB\nbgwriter_lru_maxpages = 0\ncheckpoint_timeout = '1d'");
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
#
# A backup copies key.bin and postgresql.conf at moments of its own; where the
# rewrap falls among them decides what the backup holds.  Each case below is
# made certain, and the backup is read to show which one it was:
#   - the rewrap commits while the backup waits for its start checkpoint, before
#     it copies any file: the backup holds the new key.bin and the new command;
#   - the rewrap commits after the backup copied pg_encryption/ and the
#     configuration: it holds the old key.bin and the old command;
#   - between the two copies (postgresql.conf, a large file, is copied long
#     before key.bin, a small one: pgBackRest copies the largest first, and
#     waits for nothing in between), the backup would hold the old command and
#     the new key.bin.  No honest hold puts a rewrap there, so that directory is
#     made by hand from the second restore and the primary's key.bin;
#   - a journal in the backup: after its commit, a rewrap left alone renames
#     files and ends in milliseconds, waiting for nothing, and pgBackRest
#     copies only the files of its manifest, built after the start checkpoint;
#     so a journal reaches a backup for certain only from a rewrap interrupted
#     before the manifest: the last case, a rewrap killed while a backup waits.

# Waits until a log file, read from a byte offset, holds every given string;
# exits 1 after the given seconds.  The wrap command of the second case runs
# it first, so that the rewrap goes on only once the backup copied the files.
my $waiter = write_file("$base/wait-for-log", <<'EOF', 0700);
#!/usr/bin/perl
use strict;
use warnings;
use Time::HiRes qw(sleep time);
my ($file, $offset, $seconds, @want) = @ARGV;
my $end = time + $seconds;
while (time < $end)
{
	if (open my $fh, '<', $file)
	{
		seek $fh, $offset, 0;
		local $/;
		my $text = <$fh> // '';
		exit 0 unless grep { index($text, $_) < 0 } @want;
	}
	sleep 0.02;
}
print STDERR "wait-for-log: \"@want\" not in $file after ${seconds}s\n";
exit 1;
EOF
my $blog = "$base/pgbackrest-log/main-backup.log";

sub key_file { return slurp_file("$_[0]/pg_encryption/key.bin") }

# The unwrap command a data directory's postgresql.conf names, by passphrase.
sub configured_pass
{
	my ($dir) = @_;
	my ($line) = slurp_file("$dir/postgresql.conf") =~ /^data_encryption_key_unwrap_command = (.*)$/m;
	return 'none' unless defined $line;
	return index($line, $pass1) >= 0 ? 1 : index($line, $pass2) >= 0 ? 2 : "another: $line";
}

# A full backup started in the background; its log from here on starts at the
# returned offset.
sub start_backup
{
	my (@args) = @_;
	my %b = (mark => -s $blog, out => '', err => '');
	$b{run} = IPC::Run::start([ 'pgbackrest', "--config=$conf", '--stanza=main', 'backup', '--type=full', @args ],
		'>', \$b{out}, '2>', \$b{err}, IPC::Run::timeout(120));
	return \%b;
}

# A backup started without start-fast waits in pg_backup_start for a spread
# checkpoint.  With checkpoint_timeout at a day and a few dozen buffers dirty,
# that checkpoint writes its first buffer and then sleeps, on schedule, for
# the better part of an hour; the backup builds its manifest and copies files
# only after it, once the test asks for an immediate CHECKPOINT.
sub start_held_backup
{
	$primary->safe_psql('postgres', 'CHECKPOINT; UPDATE pad SET g = g');
	my $b = start_backup('--no-start-fast');
	ok(backup_waits_for_checkpoint(), 'a full backup without start-fast waits in pg_backup_start for the checkpoint');
	return $b;
}

my $in_backup_start =
  "SELECT count(*) FROM pg_stat_activity WHERE query ~ 'pg_backup_start' AND wait_event = 'CheckpointDone'";
sub backup_waits_for_checkpoint { return $primary->poll_query_until('postgres', $in_backup_start, '1') }

sub finish_backup
{
	my ($b, $what) = @_;
	ok($b->{run}->finish, $what) or diag("$b->{out}$b->{err}");
	return substr(slurp_file($blog), $b->{mark});
}

sub restore_node
{
	my ($name) = @_;
	my $node = $C->new($name);
	mkdir $node->data_dir, 0700;
	backrest_ok("restore of the $name backup", 'restore', '--pg1-path=' . $node->data_dir, '--type=immediate',
		'--target-action=promote');
	return $node;
}

sub start_and_count
{
	my ($node, $what) = @_;
	own_settings($node);
	$node->start;
	is($node->safe_psql('postgres', "SELECT count(*) FROM t"), '20400', $what);
	$node->stop;
}

$primary->safe_psql('postgres', 'CREATE TABLE pad AS SELECT generate_series(1, 5000) g');
$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'rewrap' FROM generate_series(401, 20400) g");
my $old_key = key_file($pg);

# 1. The rewrap commits before the backup copies anything.
my $b = start_held_backup();
command_ok([ 'pg_datakey', 'rewrap', '-D', $pg, "--new-key-wrap-command=$wrap2", "--new-key-unwrap-command=$unwrap2" ],
	'rewrap to passphrase 2 while the backup waits for its start checkpoint');
my $new_key = key_file($pg);
isnt($new_key, $old_key, 'the primary has a new key.bin');
is($primary->safe_psql('postgres', $in_backup_start), '1', 'the backup still waits for its checkpoint');
unlike(substr(slurp_file($blog), $b->{mark}), qr/backup file /, 'and has copied no file');
$primary->safe_psql('postgres', 'CHECKPOINT');
my $log = finish_backup($b, 'the backup finishes after an immediate checkpoint');
like($log, qr/backup file \S+\/pg_encryption\/key\.bin /, 'and copied key.bin after that');
my $first = restore_node('before');
my $fdir = $first->data_dir;
is(key_file($fdir), $new_key, 'the backup holds the new key.bin');
is(configured_pass($fdir), 2, 'and the configuration naming the new command');
is(datakey_json($fdir)->{key_check_value}, datakey_json($pg)->{key_check_value},
	'pg_datakey status: the same key check value as the primary');
command_ok([ 'pg_datakey', 'verify', '-D', $fdir ], 'pg_datakey verify with the configured command succeeds');
start_and_count($first, 'the restored cluster starts, rows intact');

# 2. The rewrap commits after the backup copied pg_encryption/ and the
# configuration: its wrap command waits for their lines in the backup's log.
$b = start_backup();
my $after_copy = join ' ', map { "'$_'" } "/pg_encryption/key.bin (", '/postgresql.conf (', '/postgresql.auto.conf (';
command_ok(
	[ 'pg_datakey', 'rewrap', '-D', $pg, "--new-key-wrap-command=$waiter $blog $b->{mark} 60 $after_copy && $wrap1",
		"--new-key-unwrap-command=$unwrap1" ],
	'rewrap back to passphrase 1 once the running backup has copied key.bin and the configuration');
$log = finish_backup($b, 'the backup finishes');
my @copied = $log =~ /backup file \Q$pg\E\/(\S+) \(/g;
my ($conf_at, $key_at) = map { my $f = $_; (grep { $copied[$_] eq $f } 0 .. $#copied)[0] // -1 }
  'postgresql.conf', 'pg_encryption/key.bin';
ok($conf_at >= 0 && $key_at > $conf_at, 'it copied postgresql.conf before key.bin (the largest files first)')
  or diag("postgresql.conf at $conf_at, key.bin at $key_at of " . scalar @copied);
note(sprintf('%d of %d files copied between them', $key_at - $conf_at - 1, scalar @copied));
my $last_key = key_file($pg);
isnt($last_key, $new_key, 'the primary has a new key.bin again');
my $second = restore_node('after');
my $sdir = $second->data_dir;
is(key_file($sdir), $new_key, 'the backup holds the key.bin of before that rewrap');
is(configured_pass($sdir), 2, 'and the configuration of before it');
command_ok([ 'pg_datakey', 'verify', '-D', $sdir ], 'pg_datakey verify with the configured command succeeds');
start_and_count($second, 'the restored cluster starts with passphrase 2, rows intact');

# 3. The configuration of before the rewrap, key.bin of after it (made by
# hand, see above).  The procedure of docs/ha-and-backup.md: verify with the
# configured command; when it fails, find the passphrase of the backup's
# period that opens key.bin, and make it the configured one with a rewrap.
write_file("$sdir/pg_encryption/key.bin", $last_key, 0600);
is(datakey_json($sdir)->{key_check_value}, datakey_json($pg)->{key_check_value},
	'pg_datakey status: the same key check value as the primary');
my ($rc, $out, $err) = run_datakey([ 'verify', '-D', $sdir ]);
isnt($rc, 0, 'with the new key.bin and the old configuration, pg_datakey verify fails');
my @open = grep { (run_datakey([ 'verify', '-D', $sdir, "--key-unwrap-command=$_->[1]" ]))[0] == 0 }
  ([ 1, $unwrap1 ], [ 2, $unwrap2 ]);
is_deeply([ map { $_->[0] } @open ], [1], "of the two passphrases of the backup's period, the new one opens it");
command_ok(
	[ 'pg_datakey', 'rewrap', '-D', $sdir, "--key-unwrap-command=$unwrap1", "--new-key-wrap-command=$wrap1",
		"--new-key-unwrap-command=$unwrap1" ],
	'a rewrap from that passphrase makes it the configured one');
is(configured_pass($sdir), 1, 'the configuration names passphrase 1');
command_ok([ 'pg_datakey', 'verify', '-D', $sdir ], 'then pg_datakey verify succeeds');
start_and_count($second, 'and the cluster starts, rows intact');

# --- a rewrap interrupted while a backup runs (killed after the rename) --------------

$b = start_held_backup();
($rc, undef, $err) = run_datakey(
	[ 'rewrap', '-D', $pg, "--new-key-wrap-command=$wrap2", "--new-key-unwrap-command=$unwrap2" ],
	env => { FE_DATAKEY_CRASH_AT => 'after-rename' });
isnt($rc, 0, 'a rewrap to passphrase 2 is killed after it renamed the new key file, the backup waiting');
ok(-e "$pg/pg_encryption/rewrap.state", 'it leaves its journal');
is($primary->safe_psql('postgres', $in_backup_start), '1', 'the backup still waits for its checkpoint');
$primary->safe_psql('postgres', 'CHECKPOINT');
$log = finish_backup($b, 'the backup finishes');
like($log, qr/backup file \S+\/pg_encryption\/rewrap\.state /, 'it copied the journal');
my $crash = restore_node('crash');
my $cdir = $crash->data_dir;
my $st = datakey_json($cdir);
is($st->{rewrap}{state}, 'committed', 'pg_datakey status on the restored directory reports the interrupted rewrap')
  or diag(explain $st);
($rc, $out, $err) = run_datakey([ 'status', '-D', $cdir ]);
like("$out$err", qr/run "pg_datakey repair" before starting the server/, 'and says what to do');
command_fails([ 'pg_datakey', 'verify', '-D', $cdir ], 'pg_datakey verify refuses the restored directory before the repair');
own_settings($crash);
ok(!$crash->start(fail_ok => 1), 'the restored server refuses to start before the repair');
like(slurp_file($crash->logfile), qr/FATAL:  key unwrap command failed/, 'with the key error in its log');
command_ok([ 'pg_datakey', 'repair', '-D', $cdir ], 'pg_datakey repair on the restored directory completes the rewrap');
is(configured_pass($cdir), 2, 'the configuration names passphrase 2');
command_ok([ 'pg_datakey', 'verify', '-D', $cdir ], 'then pg_datakey verify succeeds');
$crash->start;
is($crash->safe_psql('postgres', "SELECT count(*) FROM t"), '20400', 'and the restored cluster starts');
$crash->stop;

# The primary itself is repaired the same way.
command_ok([ 'pg_datakey', 'repair', '-D', $pg ], 'the primary is repaired too');
$primary->stop;
diag(sprintf('wall time: %.1fs', time - $t0));
done_testing();
