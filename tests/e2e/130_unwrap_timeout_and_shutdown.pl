# A server start never hangs on its unwrap command: a command that runs
# past data_encryption_key_unwrap_timeout is killed and the start fails with
# a clear message; a shutdown request (pg_ctl stop, a SIGTERM to the
# postmaster) while a command without a timeout hangs ends the command and
# the start.  No process of the command is left behind, and the cluster
# starts again with its own command.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use FeDatakey::Cluster;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::Run;
use PostgreSQL::Test::Utils qw(command_ok slurp_file);

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'timeout passphrase');
my $wrap = openssl_wrap($pass);
my $unwrap = openssl_unwrap($pass);

my $node = FeDatakey::Cluster->new('data');
my $pgdata = $node->data_dir;
my ($rc, $out, $err) = $node->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
is($rc, 0, 'initdb -y') or diag $err;

is(scalar(($node->postgres_C('data_encryption_key_unwrap_timeout'))[1]), '300',
	'the default timeout is 300 seconds');

# A command that records its shell's PID, then hangs with a sleep no other
# test uses.
my $pidfile = "$dir/command.pid";
my $hang = "echo \$\$ > $pidfile; sleep 3141; cat \"%p\"";

sub set_conf
{
	my ($command, $timeout) = @_;
	my $conf = slurp_file("$pgdata/postgresql.conf");
	$conf =~ s/^data_encryption_key_unwrap_(command|timeout)\b.*\n//mg;
	$conf .= "data_encryption_key_unwrap_command = '" . ($command =~ s/'/''/gr) . "'\n";
	$conf .= "data_encryption_key_unwrap_timeout = $timeout\n" if defined $timeout;
	write_file("$pgdata/postgresql.conf", $conf);
}

# PIDs of this user's processes running "sleep 3141".
sub leftover_sleeps
{
	return map { $_->[0] } grep { @$_ == 3 && $_->[1] eq 'sleep' && $_->[2] eq '3141' } user_processes();
}

# Waits (bounded) until $cond returns true.
sub wait_for
{
	my ($cond, $seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		return 1 if $cond->();
		select(undef, undef, undef, 0.1);
	}
	return $cond->();
}

sub no_leftovers
{
	my ($name) = @_;
	ok(wait_for(sub { !leftover_sleeps() }, 10), "$name: no process of the command is left")
	  or diag 'left: ' . join(' ', leftover_sleeps());
	my $shell = -e $pidfile ? slurp_file($pidfile) =~ s/\s+//gr : '';
	ok($shell ne '' && !kill(0, $shell), "$name: the command's shell is gone");
	ok(!-e "$pgdata/postmaster.pid", "$name: no server left running");
	unlink $pidfile;
}

# --- the timeout ----------------------------------------------------------------------------------
set_conf($hang, 2);
my $offset = -s $node->logfile;
ok(!$node->start(fail_ok => 1), 'a hanging command with a 2 s timeout: the start fails');
like(slurp_file($node->logfile, $offset),
	qr/FATAL:  key unwrap command timed out\n.*DETAIL:  The command did not finish within 2 seconds and was killed\./,
	'the log says the command timed out');
no_leftovers('timeout');

# --- shutdown requests while a command without a timeout hangs -------------------------------------
for my $how ('pg_ctl stop', 'SIGTERM', 'SIGINT')
{
	set_conf($hang, 0);
	$offset = -s $node->logfile;
	command_ok([ 'pg_ctl', '-W', '-D', $pgdata, '-l', $node->logfile, 'start' ], "$how: pg_ctl start -W returns");
	ok(wait_for(sub { -s $pidfile && -e "$pgdata/postmaster.pid" }, 30),
		"$how: the server waits on the hanging command");
	my ($pm) = slurp_file("$pgdata/postmaster.pid") =~ /^(\d+)/;
	my $t0 = time;
	if ($how eq 'pg_ctl stop')
	{
		command_ok([ 'pg_ctl', '-w', '-t', '30', '-D', $pgdata, 'stop' ], "$how: pg_ctl stop succeeds");
	}
	else
	{
		ok(kill($how =~ s/^SIG//r, $pm), "$how sent to the postmaster");
		ok(wait_for(sub { !kill(0, $pm) }, 30), "$how: the postmaster exits");
	}
	note sprintf('%s: ended after %.1f s', $how, time - $t0);
	my $log = slurp_file($node->logfile, $offset);
	like($log,
		qr/FATAL:  shutdown requested while the data encryption key was being loaded\n.*DETAIL:  The key unwrap command was terminated, and the server did not start\./,
		"$how: the log says the start was ended by the request");
	unlike($log, qr/ready to accept connections/, "$how: the server never accepted connections");
	no_leftovers($how);
}

# --- and the cluster starts again --------------------------------------------------------------------
set_conf($unwrap, undef);
ok($node->start(fail_ok => 1), 'with its own command and the default timeout the cluster starts');
is($node->safe_psql('postgres', 'show data_encryption_key_unwrap_timeout'), '5min', 'SHOW gives the default as 5min');
ok($node->stop('fast', fail_ok => 1), 'stop');


done_testing();
