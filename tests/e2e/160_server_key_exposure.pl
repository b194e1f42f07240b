# What a running encrypted server gives away, to whom (docs/security.md):
# - the unwrap command: its text to superusers only; a pg_monitor role
#   (pg_read_all_settings) is shown "<insufficient privilege>", a plain role
#   is refused, and pg_settings (whose reset_val would carry the text) lists
#   the parameter for nobody;
# - PGDATAKEYUNWRAPCMD: gone from the environment of the postmaster, of a
#   backend and of a COPY ... PROGRAM child once the key is loaded, in
#   /proc/PID/environ too; a crash restart still works (the key stays in the
#   postmaster), and pg_ctl restart takes the command from its own caller
#   again, as documented;
# - the key: in the postmaster's memory (the control that shows the scan can
#   find it), in no backend's (the buffer is zeroed in forked children);
# - a key command with a shell syntax error: the server does not start, and
#   the passphrase in the command's text is in neither the log nor pg_ctl's
#   output.
use strict;
use warnings;

use FeDatakey::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FeDatakey::KeyCommands qw(unwrap_key_bytes);
use IPC::Run ();
use Time::HiRes qw(time);

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;

my ($wrap, $unwrap) = key_commands('exposure');
my $node = $C->new('exposure');
$node->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
# Small shared memory: the memory scans below read every mapping.
$node->append_conf('postgresql.conf',
	"shared_buffers = 1MB\nmax_connections = 10\nrestart_after_crash = on");
$node->start;
my $key = unwrap_key_bytes($node->data_dir, $unwrap);
is(length $key, 64, 'the key unwraps by hand');

# --- who can read the command --------------------------------------------------------------
$node->safe_psql('postgres',
	'CREATE ROLE mon LOGIN; GRANT pg_monitor TO mon; CREATE ROLE alice LOGIN');
is($node->safe_psql('postgres', 'SHOW data_encryption_key_unwrap_command'),
	$unwrap, 'a superuser sees the command with SHOW');
is($node->safe_psql('postgres', "SELECT current_setting('data_encryption_key_unwrap_command')"),
	$unwrap, 'and with current_setting()');
is( $node->safe_psql(
		'postgres', 'SHOW data_encryption_key_unwrap_command', connstr => $node->connstr('postgres') . ' user=mon'),
	'<insufficient privilege>',
	'a pg_monitor role (pg_read_all_settings) is shown <insufficient privilege> by SHOW');
is( $node->safe_psql(
		'postgres', "SELECT current_setting('data_encryption_key_unwrap_command')",
		connstr => $node->connstr('postgres') . ' user=mon'),
	'<insufficient privilege>',
	'and by current_setting()');
for my $who (qw(mon postgres))
{
	my $user = $who eq 'postgres' ? '' : " user=$who";
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM pg_settings WHERE name = 'data_encryption_key_unwrap_command'
			   OR setting LIKE '%openssl%' OR reset_val LIKE '%openssl%' OR boot_val LIKE '%openssl%'",
			connstr => $node->connstr('postgres') . $user),
		'0',
		"pg_settings has no row with the command for " . ($user ? 'the pg_monitor role' : 'a superuser'));
	unlike(
		$node->safe_psql('postgres', 'SHOW ALL', connstr => $node->connstr('postgres') . $user),
		qr/openssl|data_encryption_key_unwrap_command/,
		'SHOW ALL neither lists the parameter nor shows the command to ' . ($user ? 'the pg_monitor role' : 'a superuser'));
}
my ($rc, $out, $err) = $node->psql('postgres', "SELECT length(pg_read_binary_file('pg_encryption/key.bin'))",
	connstr => $node->connstr('postgres') . ' user=mon');
isnt($rc, 0, 'the pg_monitor role cannot read the key file with pg_read_binary_file');
like($err, qr/permission denied/, 'it is refused');
($rc, $out, $err) = $node->psql('postgres', 'SHOW data_encryption_key_unwrap_command',
	connstr => $node->connstr('postgres') . ' user=alice');
isnt($rc, 0, 'a role without pg_read_all_settings cannot SHOW it');
unlike($out . $err, qr/openssl/, 'and sees nothing of it');
is($node->safe_psql('postgres', 'SHOW data_encryption_key_unwrap_timeout',
		connstr => $node->connstr('postgres') . ' user=alice'),
	'5min', 'the timeout is an ordinary setting');

# --- the key in memory ---------------------------------------------------------------------

# Whether the process's memory holds $needle: every readable mapping of
# /proc/PID/mem (this user's processes can be read), in 1 MiB pieces that
# overlap by the needle's length.
sub memory_holds
{
	my ($pid, $needle) = @_;
	open(my $maps, '<', "/proc/$pid/maps") or die "open /proc/$pid/maps: $!";
	open(my $mem, '<:raw', "/proc/$pid/mem") or die "open /proc/$pid/mem: $!";
	my $scanned = 0;
	while (my $line = <$maps>)
	{
		my ($lo, $hi, $perms, $path) = $line =~ /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/ or next;
		next if substr($perms, 0, 1) ne 'r' || $path =~ /^\[(vvar|vsyscall)/;
		my ($at, $end) = (hex $lo, hex $hi);
		my $tail = '';
		while ($at < $end)
		{
			my $len = $end - $at < 1 << 20 ? $end - $at : 1 << 20;
			sysseek($mem, $at, 0) or last;
			my $got = sysread($mem, my $buf, $len);
			last if !$got;
			$scanned += $got;
			return (1, $scanned) if index($tail . $buf, $needle) >= 0;
			$tail = substr($buf, -length $needle);
			$at += $got;
		}
	}
	return (0, $scanned);
}

# A psql session that stays connected (any version's harness): its backend's
# pid, and the harness to send more to it.
sub session
{
	my ($in, $out) = ("SELECT 'pid=' || pg_backend_pid();\n", '');
	my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \my $err);
	my $deadline = time + 60;
	$h->pump_nb, select(undef, undef, undef, 0.05) until $out =~ /pid=(\d+)/ || time > $deadline;
	die "no backend pid from psql: $err" unless $out =~ /pid=(\d+)/;
	return { pid => $1, h => $h, in => \$in, out => \$out };
}

sub session_query
{
	my ($s, $sql, $expect) = @_;
	${ $s->{in} } .= "$sql\n";
	my $deadline = time + 60;
	$s->{h}->pump_nb, select(undef, undef, undef, 0.05) until ${ $s->{out} } =~ $expect || time > $deadline;
	return ${ $s->{out} } =~ $expect;
}

sub session_end
{
	my ($s) = @_;
	${ $s->{in} } .= "\\q\n";
	eval { $s->{h}->finish; 1 } or $s->{h}->kill_kill;
}

my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
my ($held, $scanned) = memory_holds($postmaster, $key);
ok($held, "the postmaster holds the key (the scan finds it; $scanned bytes read)");

# A backend that stays connected while its memory is read.
my $session = session();
my $backend = $session->{pid};
($held, $scanned) = memory_holds($backend, $key);
ok(!$held, "a backend holds no copy of the key ($scanned bytes read)");
ok($scanned > 1 << 20, 'the backend scan read its memory');

# --- the environment -----------------------------------------------------------------------
session_end($session);
$node->stop;
my $marker = 'FeEnvMarker' . join('', map { int(rand(10)) } 1 .. 10);
my $from_env = ": $marker; $unwrap";
$node->append_conf('postgresql.conf', "data_encryption_key_unwrap_command = ''");
{
	local $ENV{PGDATAKEYUNWRAPCMD} = $from_env;
	$node->start;
}
like(slurp_file($node->logfile),
	qr/running data encryption key unwrap command from environment variable "PGDATAKEYUNWRAPCMD"/,
	'the server took the command from PGDATAKEYUNWRAPCMD');

sub environ_of
{
	my ($pid) = @_;
	open(my $fh, '<:raw', "/proc/$pid/environ") or die "open /proc/$pid/environ: $!";
	local $/;
	return <$fh> // '';
}
($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
$session = session();
$backend = $session->{pid};
my $env_file = $C->base_dir . '/copy_program_env';
ok(session_query($session, "COPY (SELECT 1) TO PROGRAM 'env > $env_file'; SELECT 'copied';", qr/copied/),
	'COPY ... TO PROGRAM ran');
for ([ 'the postmaster', environ_of($postmaster) ], [ 'a backend', environ_of($backend) ],
	[ 'a COPY ... PROGRAM child', slurp_file($env_file) ])
{
	my ($who, $environ) = @$_;
	unlike($environ, qr/PGDATAKEYUNWRAPCMD/, "$who has no PGDATAKEYUNWRAPCMD");
	unlike($environ, qr/\Q$marker\E/, "$who has nothing of the command's text");
}
like(slurp_file($env_file), qr/^PGDATA=|^PATH=/m, 'the COPY ... PROGRAM child did get an environment');

# A crash restart keeps working: the key stays in the postmaster.
$node->safe_psql('postgres', 'CREATE TABLE t AS SELECT 1 AS x');
kill 'KILL', $backend;
$session->{h}->kill_kill;
ok($node->poll_query_until('postgres', 'SELECT x FROM t', '1'),
	'after a backend is killed the server reinitializes and serves again');
like(slurp_file($node->logfile), qr/all server processes terminated; reinitializing/,
	'it went through a crash restart');

# pg_ctl restart runs the server again with pg_ctl's own environment.
$node->stop;
($rc, $out, $err) = $node->pg_ctl_start_quietly;
isnt($rc, 0, 'a start without the variable fails: the server did not keep it anywhere');
like(slurp_file($node->logfile), qr/data encryption key unwrap command not configured/,
	'with the server\'s FATAL');
{
	local $ENV{PGDATAKEYUNWRAPCMD} = $from_env;
	$node->start;
	$node->restart;
}
is($node->safe_psql('postgres', 'SELECT x FROM t'), '1', 'pg_ctl restart with the variable in its environment works');
$node->stop;

# --- a syntax error does not put the command's text in the log ----------------------------------
my $secret = 'PassInText' . join('', map { int(rand(10)) } 1 .. 10);
$node->append_conf('postgresql.conf',
	"data_encryption_key_unwrap_command = 'openssl enc -d -aes-256-cbc -pbkdf2 -pass pass:$secret -in %p ) ('");
my $before = -s $node->logfile;
($rc, $out, $err) = $node->pg_ctl_start_quietly;
isnt($rc, 0, 'a command with a shell syntax error does not start the server');
my $log = substr(slurp_file($node->logfile), $before);
like($log, qr/FATAL:  key unwrap command has a syntax error/, 'the log says what is wrong');
unlike($log . $out . $err, qr/\Q$secret\E/, 'and shows nothing of its text, the passphrase included');
ok(!-e $node->data_dir . '/postmaster.pid', 'no server is left running');

done_testing();

package FeDatakey::Cluster;

# pg_ctl start that may fail: (status, stdout, stderr), no BAIL_OUT.
sub pg_ctl_start_quietly
{
	my ($self) = @_;
	my ($stdout, $stderr);
	my $rc = IPC::Run::run(
		[ $self->bin_dir . '/pg_ctl', '-w', '-D', $self->data_dir, '-l', $self->logfile, '-o', '--cluster-name=' . $self->name, 'start' ],
		'>', \$stdout, '2>', \$stderr);
	return ($rc ? 0 : $? >> 8, $stdout, $stderr);
}
