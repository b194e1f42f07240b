# The fault matrix, signals while the key is loaded, for the server
# (pg_ctl start, and postgres --single): SIGTERM (pg_ctl stop -m smart),
# SIGINT (-m fast) and SIGQUIT (-m immediate; to postgres --single the
# signal itself) while an unwrap command without a timeout hangs.  The start ends at once with "shutdown requested
# while the data encryption key was being loaded", the command's whole
# process group is gone, and the cluster starts again with its own command.
# (A FIFO as a key file cannot block the start any more, 170: the command
# is the only wait there is.)
use strict;
use warnings;
use Time::HiRes qw(time);
use FeDatakey::Cluster;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::BoundedRun;
use FeDatakey::CommandProcs;
use FeDatakey::Faults;
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;

# Seconds within which "at once" holds on a busy machine.
my $bound = 5;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'signals');
my $unwrap = openssl_unwrap($pass);
my $pids = "$dir/pids";

my $node = FeDatakey::Cluster->new('signals');
$node->init(encrypted => 1, wrap => openssl_wrap($pass), unwrap => $unwrap);
my $pgdata = $node->data_dir;

sub set_conf
{
	my ($command, $timeout) = @_;
	my $conf = slurp_file("$pgdata/postgresql.conf");
	$conf =~ s/^data_encryption_key_unwrap_(command|timeout)\b.*\n//mg;
	$conf .= "data_encryption_key_unwrap_command = '" . ($command =~ s/'/''/gr) . "'\n";
	$conf .= "data_encryption_key_unwrap_timeout = $timeout\n" if defined $timeout;
	write_file("$pgdata/postgresql.conf", $conf);
}

my $hang = ': "%p"; ' . recorded($pids, 'sleep 2721');
my $fatal =
  qr/FATAL:  shutdown requested while the data encryption key was being loaded\n.*DETAIL:  The key unwrap command was terminated, and the server did not start\./;

# The signal each mode of pg_ctl stop sends.
my %mode = (TERM => 'smart', INT => 'fast', QUIT => 'immediate');

for my $sig ('TERM', 'INT', 'QUIT')
{
	my $fault = "SIG$sig while waiting";

	# --- pg_ctl start ---
	{
		set_conf($hang, 0);
		my $offset = -s $node->logfile;
		run_bounded([ 'pg_ctl', '-W', '-D', $pgdata, '-l', $node->logfile, 'start' ], timeout => 30);
		wait_for(sub { recorded_pids($pids) > 0 }, 30);
		my ($cmd) = recorded_pids($pids);
		my $pm = wait_for(sub { -s "$pgdata/postmaster.pid" && (slurp_file("$pgdata/postmaster.pid") =~ /^(\d+)/)[0] },
			30);
		my $pgid = $cmd && pgid_of($cmd);
		ok($cmd && $pm && $pgid, "server, $fault: the server waits on the hanging command");
		# pg_ctl stop sends the signal of its mode to the postmaster.
		my $t0 = time;
		my $stop = run_bounded([ 'pg_ctl', '-w', '-t', '30', '-D', $pgdata, '-m', $mode{$sig}, 'stop' ], timeout => 40);
		my $ended = wait_for(sub { !alive($pm) }, 30);
		my $secs = time - $t0;
		note sprintf('server, %s: pg_ctl stop -m %s returned %d, the postmaster ended %.2f s after it began',
			$fault, $mode{$sig}, $stop->{rc}, $secs);
		cell_is('server', $fault, $stop->{rc}, 0, "pg_ctl stop -m $mode{$sig} succeeds") or diag $stop->{err};
		cell_ok('server', $fault, $ended && $secs < $bound, sprintf('the postmaster exits at once: %.1f s', $secs));
		cell_like('server', $fault, slurp_file($node->logfile, $offset), $fatal, 'the log says why');
		cell_is('server', $fault, group_left($pgid), '', 'no process of the command\'s group is left');
		cell_ok('server', $fault, !-e "$pgdata/postmaster.pid", 'no server left');
		kill 'KILL', $pm if $pm && alive($pm);
		kill_recorded($pids);
		set_conf($unwrap);
		cell_ok('server', $fault, $node->start(fail_ok => 1), 'with its own command the server starts');
		$node->stop('fast', fail_ok => 1);
	}

	# --- postgres --single ---
	{
		set_conf($hang, 0);
		my $p = spawn([ FeDatakey::Run::_in_path('postgres'), '--single', '-D', $pgdata, 'postgres' ]);
		wait_for(sub { recorded_pids($pids) > 0 }, 30);
		my ($cmd) = recorded_pids($pids);
		my $pgid = $cmd && pgid_of($cmd);
		ok($cmd && $pgid, "server --single, $fault: it waits on the hanging command");
		my $t0 = time;
		kill $sig, $p->{pid};
		my $r = reap_within($p, 30);
		my $secs = time - $t0;
		note sprintf('server --single, %s: exit %d %.2f s after the signal', $fault, $r->{rc}, $secs);
		cell_ok('server --single', $fault, !$r->{timed_out} && $secs < $bound,
			sprintf('postgres --single exits at once: %.1f s', $secs));
		cell_ok('server --single', $fault, $r->{rc} != 0, "with an error (status $r->{rc})");
		cell_like('server --single', $fault, $r->{err}, $fatal, 'it says why');
		cell_is('server --single', $fault, group_left($pgid), '', 'no process of the command\'s group is left');
		kill_recorded($pids);
		set_conf($unwrap);
		my $ok = run_bounded([ 'postgres', '--single', '-D', $pgdata, 'postgres' ], stdin => "select 1;\n",
			timeout => 60);
		cell_is('server --single', $fault, $ok->{rc}, 0, 'with its own command postgres --single runs a query')
		  or diag $ok->{err};
	}
}

done_testing();
