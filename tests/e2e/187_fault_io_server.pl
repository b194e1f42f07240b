# Injected I/O faults at the server's key load, on every version: the
# server row of tests/faults/cells/io.tsv.  libfiu cannot be loaded into
# postgres (FeDatakey::Fiu), so strace -e inject fails the first open or
# read of key.check or key.bin by the postmaster, started under strace.
# - EIO: the server does not start, and its log names the operation and
#   the file; key.bin and key.check are unchanged and the configured command
#   opens the key; without the fault the server starts, the data intact;
# - EINTR: the read is retried and the server starts;
# - a short read (gdb lowers the count of the first read of key.check): the
#   server reads on and starts.
# The same for the server in single-user mode.
use strict;
use warnings;
use Cwd ();
use POSIX qw(WNOHANG);
use FeDatakey::Cluster;
use FeDatakey::Faults;
use FeDatakey::Gdb;
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use FeDatakey::Run qw(run_command);
use FeDatakey::Strace;
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'a passphrase');
my $node = FeDatakey::Cluster->new('server');
$node->init(encrypted => 1, wrap => openssl_wrap($pass), unwrap => openssl_unwrap($pass));
my $pgdata = $node->data_dir;
$node->start;
$node->safe_psql('postgres', "CREATE TABLE t AS SELECT 'kept'::text AS v");
$node->stop;

# A file of pg_encryption as postgres names it and as strace finds its fds.
sub paths
{
	my ($name) = @_;
	return [ "$pgdata/pg_encryption/$name", Cwd::abs_path($pgdata) . "/pg_encryption/$name" ];
}

sub key_files
{
	return join '', map { slurp_file("$pgdata/pg_encryption/$_") } qw(key.bin key.check);
}

# postgres under strace, in the background (not pg_ctl -p: pg_ctl waits for
# the process it started to be the postmaster, and strace is not), its
# output in $log: (whether it became ready within 60 seconds, its pid).
sub start_under
{
	my ($postgres, $log) = @_;
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>', $log) or die "$log: $!";
		open(STDERR, '>&', \*STDOUT);
		exec($postgres, '-D', $pgdata) or die "exec: $!";
	}
	for (1 .. 600)
	{
		return (0, $pid) if waitpid($pid, WNOHANG) == $pid;
		my ($rc) = run_command([ 'pg_isready', '-q', '-h', $node->host, '-p', $node->port ]);
		return (1, $pid) if $rc == 0;
		select(undef, undef, undef, 0.1);
	}
	return (0, $pid);
}

# The data of a server start_under made ready, which it then stops
# (postmaster.pid names the real postmaster).
sub query_and_stop
{
	my $v = $node->safe_psql('postgres', 'SELECT v FROM t');
	run_command([ 'pg_ctl', '-D', $pgdata, '-m', 'fast', '-w', '-t', '60', 'stop' ]);
	return $v;
}

# Waits up to 60 seconds for strace and postgres to end (then kills them);
# what they logged.
sub finish
{
	my ($pid, $log) = @_;
	for (1 .. 600)
	{
		last if waitpid($pid, WNOHANG) != 0;
		select(undef, undef, undef, 0.1);
	}
	if (kill(0, $pid))
	{
		kill('KILL', $pid);
		waitpid($pid, 0);
	}
	return -e $log ? slurp_file($log) : '';
}

my $E = 'Input/output error';
my @cases = (
	[ 'open EIO', 'key.check', 'openat', 'EIO', qr/FATAL:  could not open key check file "[^"]*key\.check": \Q$E\E/ ],
	[ 'open EIO', 'key.bin', 'openat', 'EIO', qr/FATAL:  could not open data encryption key file "[^"]*key\.bin": \Q$E\E/ ],
	[ 'read EIO', 'key.check', 'read', 'EIO', qr/FATAL:  could not read file "[^"]*key\.check": \Q$E\E/ ],
	[ 'read EINTR', 'key.check', 'read', 'EINTR', undef ],);
my $n = 0;
for my $case (@cases)
{
	my ($fault, $file, $call, $errno, $error) = @$case;
	my $before = key_files();
	my $postgres = strace_postgres($dir, paths($file), $call, $errno);
	my $logfile = "$dir/server-" . ++$n . '.log';
	my ($started, $pid) = start_under($postgres, $logfile);
	if (!defined $error)
	{
		my $v = $started ? query_and_stop() : '';
		my $log = finish($pid, $logfile);
		cell_ok('server', $fault, $started, "$file: the read is retried and the server starts") or diag $log;
		cell_is('server', $fault, $v, 'kept', "$file: the data intact");
		next;
	}
	query_and_stop() if $started;
	my $log = finish($pid, $logfile);
	cell_ok('server', $fault, !$started, "$file: the server does not start");
	cell_like('server', $fault, $log, $error, "$file: its log names the operation and the file");
	cell_ok('server', $fault, key_files() eq $before, "$file: key.bin and key.check are unchanged");
	my ($rc) = run_command([ 'pg_datakey', 'verify', '-D', $pgdata ]);
	cell_is('server', $fault, $rc, 0, "$file: the configured command opens the key");
	my $ok = $node->start(fail_ok => 1);
	cell_ok('server', $fault, $ok && $node->safe_psql('postgres', 'SELECT v FROM t') eq 'kept',
		"$file: without the fault the server starts, the data intact");
	$node->stop if $ok;
}

# A short read of key.check (gdb lowers the count the postmaster asks for):
# the server reads on and starts.
{
	my ($postgres, $done) = short_read_postgres($dir, "$pgdata/pg_encryption/key.check");
	my $logfile = "$dir/server-short.log";
	my ($started, $pid) = start_under($postgres, $logfile);
	my $v = $started ? query_and_stop() : '';
	my $log = finish($pid, $logfile);
	cell_ok('server', 'read short', -s $done, 'its read of key.check was shortened') or diag $log;
	cell_ok('server', 'read short', $started, 'the server reads on and starts');
	cell_is('server', 'read short', $v, 'kept', 'the data intact');
}

# Single-user mode loads the key the same way, in the one process.
for my $case (@cases)
{
	my ($fault, $file, $call, $errno, $error) = @$case;
	my $before = key_files();
	my ($rc, $out, $err) = run_command(
		[ strace_prefix(paths($file), $call, $errno), 'postgres', '--single', '-D', $pgdata, 'postgres' ],
		stdin => "SELECT v FROM t;\n", timeout => 60);
	if (!defined $error)
	{
		cell_is('server --single', $fault, $rc, 0, "$file: the read is retried and the server runs") or diag $err;
		cell_like('server --single', $fault, $out, qr/kept/, "$file: the data intact");
		next;
	}
	cell_ok('server --single', $fault, $rc != 0 && $out !~ /kept/, "$file: the server does not run (status $rc)");
	cell_like('server --single', $fault, $err, $error, "$file: it names the operation and the file");
	cell_ok('server --single', $fault, key_files() eq $before, "$file: key.bin and key.check are unchanged");
	($rc, $out) = run_command([ 'postgres', '--single', '-D', $pgdata, 'postgres' ], stdin => "SELECT v FROM t;\n", timeout => 60);
	cell_ok('server --single', $fault, $rc == 0 && $out =~ /kept/, "$file: without the fault it runs, the data intact");
}

{
	my ($prefix, $env, $done) = short_read($dir, "$pgdata/pg_encryption/key.check");
	my ($rc, $out, $err) = run_command([ @$prefix, 'postgres', '--single', '-D', $pgdata, 'postgres' ],
		env => $env, stdin => "SELECT v FROM t;\n", timeout => 60);
	cell_ok('server --single', 'read short', -s $done, 'its read of key.check was shortened') or diag $err;
	cell_ok('server --single', 'read short', $rc == 0 && $out =~ /kept/,
		"it reads on and runs, the data intact (status $rc)");
}

done_testing();
