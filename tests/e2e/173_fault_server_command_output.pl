# The fault matrix, the unwrap command's output, for the server's key load
# (pg_ctl start, and postgres --single).  Endless output is refused as too
# long as soon as more than the key has come (within seconds; the timeout is
# its 300 s default); a command that writes the key and then neither ends
# nor writes more runs into data_encryption_key_unwrap_timeout (3 s here);
# a command that writes the key and exits leaving a background process on
# its stdout: the key is taken at once whether that process stays in the
# command's group (it is killed) or leaves it with setsid and stays silent
# (the server stops reading and holds nothing it shares), and refused as too
# long when it leaves the group and writes.  No process of the command is
# left, except a silent one that left the group, which only the test kills.
use strict;
use warnings;
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
my $pass = passphrase_file($dir, 'pass', 'command output');
my $unwrap = openssl_unwrap($pass);
my $pids = "$dir/pids";

my $node = FeDatakey::Cluster->new('output');
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

# Stops a server left running; returns whether there was one.
sub stop_left_server
{
	return 0 unless -e "$pgdata/postmaster.pid";
	my ($pid) = slurp_file("$pgdata/postmaster.pid") =~ /^(\d+)/;
	return 0 unless $pid && kill(0, $pid);
	run_bounded([ 'pg_ctl', '-D', $pgdata, '-m', 'fast', '-t', '30', 'stop' ], timeout => 40);
	kill 'KILL', $pid if kill(0, $pid);
	return 1;
}

# start($row) -> (the result, the server's messages): a start by pg_ctl
# (the server left stopped) or a query by postgres --single.
sub start
{
	my ($row) = @_;
	if ($row eq 'server')
	{
		my $offset = -s $node->logfile;
		my $r = run_bounded([ 'pg_ctl', '-w', '-t', '60', '-D', $pgdata, '-l', $node->logfile, 'start' ],
			timeout => 70);
		$r->{started} = stop_left_server();
		return ($r, slurp_file($node->logfile, $offset));
	}
	my $r = run_bounded([ 'postgres', '--single', '-D', $pgdata, 'postgres' ], stdin => "select 1;\n",
		timeout => 60);
	$r->{started} = $r->{rc} == 0;
	return ($r, $r->{err});
}

my $too_long =
  qr/FATAL:  data encryption key from key unwrap command is too long\n.*DETAIL:  Expected 64 bytes, got (?:more than )?\d+\./;

for my $row ('server', 'server --single')
{
	# --- endless output ---
	{
		my $fault = 'endless output';
		set_conf(': "%p"; ' . recorded($pids, 'yes fault-endless-output'));
		my ($r, $log) = start($row);
		note sprintf('%s, %s: %.2f s', $row, $fault, $r->{secs});
		cell_ok($row, $fault, !$r->{started} && !$r->{timed_out}, 'the start is refused');
		cell_like($row, $fault, $log, $too_long, 'as too long');
		cell_ok($row, $fault, $r->{secs} < $bound,
			sprintf('at once: %.1f s, the timeout being 300 s', $r->{secs}));
		cell_is($row, $fault, join(' ', left_alive($pids, 3)), '', 'no process of the command is left');
		kill_recorded($pids);
	}

	# --- the key, then silence without end ---
	{
		my $fault = 'key then silence';
		set_conf("$unwrap; " . recorded($pids, 'sleep 2718'), 3);
		my ($r, $log) = start($row);
		note sprintf('%s, %s: %.2f s', $row, $fault, $r->{secs});
		cell_ok($row, $fault, !$r->{started} && !$r->{timed_out}, 'the start is refused');
		cell_like($row, $fault, $log,
			qr/FATAL:  key unwrap command timed out\n.*DETAIL:  The command did not finish within 3 seconds and was killed\./,
			'as timed out');
		cell_ok($row, $fault, $r->{secs} >= 3 && $r->{secs} < 3 + $bound,
			sprintf('at the timeout: %.1f s for 3 s', $r->{secs}));
		cell_is($row, $fault, join(' ', left_alive($pids, 3)), '', 'no process of the command is left');
		kill_recorded($pids);
	}

	# --- a grandchild holds stdout ---
	my $fault = 'grandchild holds stdout';
	{
		set_conf("$unwrap; " . recorded($pids, 'sleep 2719') . ' &');
		my ($r) = start($row);
		note sprintf('%s, %s, in the group, silent: %.2f s', $row, $fault, $r->{secs});
		cell_ok($row, $fault, $r->{started}, 'in the command\'s group, silent: the key is taken')
		  or diag $r->{err};
		cell_ok($row, $fault, $r->{secs} < $bound, sprintf('in the group: at once: %.1f s', $r->{secs}));
		cell_is($row, $fault, join(' ', left_alive($pids, 3)), '', 'in the group: the grandchild is killed');
		kill_recorded($pids);
	}
	{
		set_conf("$unwrap; " . detached($pids, 'sleep 2719'));
		my ($r) = start($row);
		note sprintf('%s, %s, left the group, silent: %.2f s', $row, $fault, $r->{secs});
		cell_ok($row, $fault, $r->{started}, 'left the group, silent: the key is taken') or diag $r->{err};
		cell_ok($row, $fault, $r->{secs} < $bound, sprintf('left the group: at once: %.1f s', $r->{secs}));
		my @left = grep { alive($_) } recorded_pids($pids);
		ok(scalar @left >= 1, 'left the group, silent: the grandchild is still there (the test kills it)');
		cell_is($row, $fault, join(' ', map { pipe_sharers($_, 1) } @left), '',
			'left the group: the grandchild, if still there, shares its stdout with no one');
		kill_recorded($pids);
	}
	{
		set_conf("$unwrap; " . detached($pids, 'yes fault-grandchild'));
		my ($r, $log) = start($row);
		note sprintf('%s, %s, left the group, writing: %.2f s', $row, $fault, $r->{secs});
		cell_ok($row, $fault, !$r->{started} && !$r->{timed_out}, 'left the group, writing: refused');
		cell_like($row, $fault, $log, $too_long, 'left the group, writing: as too long');
		cell_ok($row, $fault, $r->{secs} < $bound, sprintf('left the group, writing: at once: %.1f s', $r->{secs}));
		cell_is($row, $fault, join(' ', left_alive($pids, 5)), '',
			'left the group, writing: the grandchild is gone (its pipe has no reader)');
		kill_recorded($pids);
	}
}

set_conf($unwrap);
ok($node->start(fail_ok => 1), 'with its own command the cluster starts');
$node->stop('fast');

done_testing();
