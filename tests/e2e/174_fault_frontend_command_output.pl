# Versions: newest
# (the frontends and pg_datakey run commands with the same library on every version; the server's part runs on every version in 173)
#
# The fault matrix, the unwrap command's output, for the programs other
# than the server that run one: initdb --copy-key-from, the pre-flight
# checks of pg_rewind and pg_upgrade, pg_datakey verify and rewrap (its
# current unwrap command).  Endless output is refused as too long at once;
# the key followed by silence without end runs into --timeout (3 s) for
# pg_datakey, and for the frontends, which have no time limit (a command may
# prompt), it is waited for until a SIGTERM ends the wait; a grandchild on
# stdout: the key is taken at once when it is in the command's group (it is
# killed) or has left it and is silent (nothing of ours is shared with it),
# and refused as too long when it has left and writes.  Nothing is created
# or changed by a refusal, and no process of the command is left.
use strict;
use warnings;
use FeDatakey::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::BoundedRun;
use FeDatakey::CommandProcs;
use FeDatakey::Faults;
use FeDatakey::OddFiles qw(dir_state);
use Test::More;

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;    # pg_upgrade writes its files into the working directory

# Seconds within which "at once" holds on a busy machine.
my $bound = 5;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'frontend command output');
my $wrap = openssl_wrap($pass);
my $unwrap = openssl_unwrap($pass);
my $pids = "$dir/pids";

# The pg_encryption/ states of some nodes, to prove that a run changed none;
# without the lock file pg_datakey rewrap creates on its first run, empty
# and only ever locked.
sub states
{
	return join('',
		map { $_->name . ":\n" . (dir_state($_->data_dir . '/pg_encryption') =~ s/^rewrap\.lock .*\n//mr) } @_);
}

# --- the rows: how each runs an unwrap command ---------------------------------------------------------
my @rows;

{
	my $source = $C->new('copy_source');
	ok($source->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap"),
		'a cluster to copy the key from');
	my $n = 0;
	my $new;
	push @rows, {
		name => 'initdb --copy-key-from',
		nodes => [$source],
		spawn => sub {
			my ($cmd) = @_;
			$new = $C->new('copy' . $n++);
			return spawn($new->initdb_command('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$cmd",
				'--copy-key-from=' . $source->data_dir . '/pg_encryption/key.bin'));
		},
		created => sub { -e $new->data_dir },
	};
}
{
	my $target = $C->new('target');
	$target->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	$target->start;
	$target->stop;
	my $copy = $C->new('target_copy');
	PostgreSQL::Test::RecursiveCopy::copypath($target->data_dir, $copy->data_dir);
	chmod 0700, $copy->data_dir;
	push @rows, {
		name => 'pg_rewind',
		nodes => [ $target, $copy ],
		spawn => sub {
			my ($cmd) = @_;
			return spawn([ 'pg_rewind', '-D', $target->data_dir, '--source-pgdata=' . $copy->data_dir, '-n',
				"--key-unwrap-command=$cmd" ]);
		},
	};
}
{
	my $old = $C->new('old');
	$old->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	my $new = $C->new('new');
	$new->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap,
		copy_key_from => $old->data_dir . '/pg_encryption/key.bin');
	push @rows, {
		name => 'pg_upgrade',
		nodes => [ $old, $new ],
		spawn => sub {
			my ($cmd) = @_;
			return spawn(pg_upgrade_command($old, $new, '--check', "--key-unwrap-command=$cmd"));
		},
	};
}
{
	my $node = $C->new('datakey');
	$node->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	for my $verb ('verify', 'rewrap')
	{
		my @more = $verb eq 'rewrap' ? ("--new-key-wrap-command=$wrap", "--new-key-unwrap-command=$unwrap") : ();
		push @rows, {
			name => "pg_datakey $verb",
			nodes => [$node],
			timeout_option => 1,
			spawn => sub {
				my ($cmd, $timeout) = @_;
				return spawn([ 'pg_datakey', $verb, '-D', $node->data_dir, "--key-unwrap-command=$cmd",
					'--timeout=' . ($timeout // 0), @more ]);
			},
		};
	}
}

my $too_long =
  qr/data encryption key from key unwrap command is too long\n(?:.*\n)*?.*Expected 64 bytes, got (?:more than )?\d+\./;

# run($row, $cmd, $timeout) -> the result, and whether it changed anything.
sub run
{
	my ($row, $cmd, $timeout) = @_;
	my $before = states(@{ $row->{nodes} });
	my $r = reap_within($row->{spawn}->($cmd, $timeout), 120);
	$r->{said} = $r->{out} . $r->{err};
	$r->{unchanged} = states(@{ $row->{nodes} }) eq $before && !($row->{created} && $row->{created}->());
	return $r;
}

for my $row (@rows)
{
	my $name = $row->{name};

	# --- endless output ---
	{
		my $fault = 'endless output';
		my $r = run($row, ': "%p"; ' . recorded($pids, 'yes fault-endless-output'));
		note sprintf('%s, %s: exit %d after %.2f s', $name, $fault, $r->{rc}, $r->{secs});
		cell_ok($name, $fault, $r->{rc} != 0 && !$r->{timed_out}, 'refused') or diag $r->{said};
		cell_like($name, $fault, $r->{said}, $too_long, 'as too long');
		cell_ok($name, $fault, $r->{secs} < $bound, sprintf('at once: %.1f s', $r->{secs}));
		cell_ok($name, $fault, $r->{unchanged}, 'nothing created or changed');
		cell_is($name, $fault, join(' ', left_alive($pids, 3)), '', 'no process of the command is left');
		kill_recorded($pids);
	}

	# --- the key, then silence without end ---
	{
		my $fault = 'key then silence';
		my $cmd = "$unwrap; " . recorded($pids, 'sleep 2718');
		if ($row->{timeout_option})
		{
			my $r = run($row, $cmd, 3);
			note sprintf('%s, %s: exit %d after %.2f s', $name, $fault, $r->{rc}, $r->{secs});
			cell_ok($name, $fault, $r->{rc} != 0 && !$r->{timed_out}, 'refused') or diag $r->{said};
			cell_like($name, $fault, $r->{said},
				qr/key unwrap command timed out\n.*detail: The command did not finish within 3 seconds and was killed\./,
				'as timed out');
			cell_ok($name, $fault, $r->{secs} >= 3 && $r->{secs} < 3 + $bound,
				sprintf('at the timeout: %.1f s for 3 s', $r->{secs}));
			cell_ok($name, $fault, $r->{unchanged}, 'nothing changed');
		}
		else
		{
			# No time limit: the program waits for the command to end, and a
			# SIGTERM ends the wait.
			my $before = states(@{ $row->{nodes} });
			my $p = $row->{spawn}->($cmd);
			my $started = wait_for(sub { recorded_pids($pids) > 0 }, 30);
			select(undef, undef, undef, 3);
			my $waiting = waitpid($p->{pid}, POSIX::WNOHANG()) == 0;
			cell_ok($name, $fault, $started && $waiting, 'without a time limit it still waits after 3 s');
			my $t0 = Time::HiRes::time();
			kill 'TERM', $p->{pid};
			my $r = reap_within($p, 30);
			my $secs = Time::HiRes::time() - $t0;
			note sprintf('%s, %s: exit %d %.2f s after SIGTERM', $name, $fault, $r->{rc}, $secs);
			cell_ok($name, $fault, $r->{rc} != 0 && !$r->{timed_out} && $secs < $bound,
				sprintf('SIGTERM ends it at once: %.1f s', $secs));
			cell_ok($name, $fault,
				states(@{ $row->{nodes} }) eq $before && !($row->{created} && $row->{created}->()),
				'nothing created or changed');
		}
		cell_is($name, $fault, join(' ', left_alive($pids, 3)), '', 'no process of the command is left');
		kill_recorded($pids);
	}

	# --- a grandchild holds stdout ---
	my $fault = 'grandchild holds stdout';
	{
		my $r = run($row, "$unwrap; " . recorded($pids, 'sleep 2719') . ' &');
		note sprintf('%s, %s, in the group, silent: exit %d after %.2f s', $name, $fault, $r->{rc}, $r->{secs});
		cell_is($name, $fault, $r->{rc}, 0, 'in the command\'s group, silent: the key is taken') or diag $r->{said};
		cell_ok($name, $fault, $r->{secs} < $bound + ($name eq 'pg_upgrade' ? 30 : 0),
			sprintf('in the group: %.1f s', $r->{secs}));
		cell_is($name, $fault, join(' ', left_alive($pids, 3)), '', 'in the group: the grandchild is killed');
		kill_recorded($pids);
	}
	{
		my $r = run($row, "$unwrap; " . detached($pids, 'sleep 2719'));
		note sprintf('%s, %s, left the group, silent: exit %d after %.2f s', $name, $fault, $r->{rc}, $r->{secs});
		cell_is($name, $fault, $r->{rc}, 0, 'left the group, silent: the key is taken') or diag $r->{said};
		cell_ok($name, $fault, $r->{secs} < $bound + ($name eq 'pg_upgrade' ? 30 : 0),
			sprintf('left the group: %.1f s', $r->{secs}));
		my @left = grep { alive($_) } recorded_pids($pids);
		ok(scalar @left >= 1, 'left the group, silent: the grandchild is still there (the test kills it)');
		cell_is($name, $fault, join(' ', map { pipe_sharers($_, 1) } @left), '',
			'left the group: the grandchild, if still there, shares its stdout with no one');
		kill_recorded($pids);
	}
	{
		my $r = run($row, "$unwrap; " . detached($pids, 'yes fault-grandchild'));
		note sprintf('%s, %s, left the group, writing: exit %d after %.2f s', $name, $fault, $r->{rc}, $r->{secs});
		cell_ok($name, $fault, $r->{rc} != 0 && !$r->{timed_out}, 'left the group, writing: refused')
		  or diag $r->{said};
		cell_like($name, $fault, $r->{said}, $too_long, 'left the group, writing: as too long');
		cell_ok($name, $fault, $r->{secs} < $bound, sprintf('left the group, writing: at once: %.1f s', $r->{secs}));
		cell_ok($name, $fault, $r->{unchanged}, 'left the group, writing: nothing created or changed');
		cell_is($name, $fault, join(' ', left_alive($pids, 5)), '',
			'left the group, writing: the grandchild is gone (its pipe has no reader)');
		kill_recorded($pids);
	}
}

done_testing();
