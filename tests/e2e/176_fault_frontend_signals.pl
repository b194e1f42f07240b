# Versions: newest
# (the frontends and pg_datakey handle signals with the same library on every version; the server's part runs on every version in 175)
#
# The fault matrix, signals while a key command hangs, for the programs
# other than the server: initdb -y (its wrap command), initdb
# --copy-key-from, the pre-flight checks of pg_rewind and pg_upgrade (their
# unwrap command), pg_datakey verify and rewrap (the current unwrap command,
# and the new wrap command).  SIGTERM, SIGINT or SIGQUIT sent to the program
# ends it at once, and the command's whole process group with it: initdb
# leaves no data directory, pg_rewind and pg_upgrade change nothing,
# pg_datakey says the command was interrupted and leaves the cluster as it
# was or for repair to finish, after which verify passes.  (A FIFO as a key
# file cannot block any of them any more, 171 and 172: the command is the
# only wait there is.)
use strict;
use warnings;
use JSON::PP ();
use Time::HiRes qw(time);
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
my $pass = passphrase_file($dir, 'pass', 'frontend signals');
my $wrap = openssl_wrap($pass);
my $unwrap = openssl_unwrap($pass);
my $pids = "$dir/pids";
my $hang_unwrap = ': "%p"; ' . recorded($pids, 'sleep 2722');
my $hang_wrap = ': "%p"; cat >/dev/null; ' . recorded($pids, 'sleep 2722');

# The pg_encryption/ states of some nodes, to prove that a run changed none;
# without the lock file pg_datakey rewrap creates on its first run, empty
# and only ever locked.
sub states
{
	return join('',
		map { $_->name . ":\n" . (dir_state($_->data_dir . '/pg_encryption') =~ s/^rewrap\.lock .*\n//mr) } @_);
}

# --- the rows: a program that waits on a hanging command -------------------------------------------------
my @rows;
{
	my $n = 0;
	my $new;
	push @rows, {
		name => 'initdb -y',
		spawn => sub {
			$new = $C->new('init' . $n++);
			return spawn($new->initdb_command('-y', "--key-wrap-command=$hang_wrap", "--key-unwrap-command=$unwrap"));
		},
		created => sub { -e $new->data_dir },
	};
}
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
			$new = $C->new('copy' . $n++);
			return spawn($new->initdb_command('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$hang_unwrap",
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
			return spawn([ FeDatakey::Run::_in_path('pg_rewind'), '-D', $target->data_dir,
				'--source-pgdata=' . $copy->data_dir, '-n', "--key-unwrap-command=$hang_unwrap" ]);
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
		spawn => sub { return spawn(pg_upgrade_command($old, $new, '--check', "--key-unwrap-command=$hang_unwrap")) },
	};
}
my $datakey = $C->new('datakey');
$datakey->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
my $pgdata = $datakey->data_dir;
my $pg_datakey = FeDatakey::Run::_in_path('pg_datakey');
push @rows,
  {
	name => 'pg_datakey verify',
	nodes => [$datakey],
	datakey => qr/key unwrap command was interrupted/,
	spawn => sub {
		return spawn([ $pg_datakey, 'verify', '-D', $pgdata, "--key-unwrap-command=$hang_unwrap", '--timeout=0' ]);
	},
  },
  {
	name => 'pg_datakey rewrap',
	what => 'its current unwrap command',
	datakey => qr/key unwrap command was interrupted/,
	spawn => sub {
		return spawn([ $pg_datakey, 'rewrap', '-D', $pgdata, "--key-unwrap-command=$hang_unwrap", '--timeout=0',
			"--new-key-wrap-command=$wrap", "--new-key-unwrap-command=$unwrap" ]);
	},
  },
  {
	name => 'pg_datakey rewrap',
	what => 'its new wrap command',
	datakey => qr/key wrap command was interrupted/,
	spawn => sub {
		return spawn([ $pg_datakey, 'rewrap', '-D', $pgdata, '--timeout=0',
			"--new-key-wrap-command=$hang_wrap", "--new-key-unwrap-command=$unwrap" ]);
	},
  };

# pg_datakey @args on the cluster -> the result.
sub datakey { return run_bounded([ 'pg_datakey', @_, '-D', $pgdata ], timeout => 60) }

for my $row (@rows)
{
	my $name = $row->{name};
	my $label = $row->{what} ? "$row->{what}: " : '';
	for my $sig ('TERM', 'INT', 'QUIT')
	{
		my $fault = "SIG$sig while waiting";
		my $before = states(@{ $row->{nodes} // [] });
		my $p = $row->{spawn}->();
		wait_for(sub { recorded_pids($pids) > 0 }, 60);
		my ($cmd) = recorded_pids($pids);
		my $pgid = $cmd && pgid_of($cmd);
		ok($cmd && $pgid, "$name, $fault: ${label}the command hangs");
		my $t0 = time;
		kill $sig, $p->{pid};
		my $r = reap_within($p, 30);
		my $secs = time - $t0;
		note sprintf('%s, %s: %sexit %d %.2f s after the signal', $name, $fault, $label, $r->{rc}, $secs);
		cell_ok($name, $fault, !$r->{timed_out} && $secs < $bound, sprintf('%sit ends at once: %.1f s', $label, $secs));
		cell_ok($name, $fault, $r->{rc} != 0, "${label}with an error (status $r->{rc})");
		cell_is($name, $fault, group_left($pgid), '', "${label}no process of the command's group is left");
		cell_ok($name, $fault, !$row->{created}->(), "${label}no data directory is left") if $row->{created};
		cell_is($name, $fault, states(@{ $row->{nodes} }), $before, "${label}nothing changed") if $row->{nodes};
		if ($row->{datakey})
		{
			cell_is($name, $fault, $r->{rc}, 4, "${label}pg_datakey exits with 4, interrupted (not killed by the signal)");
			cell_like($name, $fault, $r->{err}, $row->{datakey}, "${label}it says the command was interrupted");
			my $status = datakey('status');
			my $repair = datakey('repair');
			my $verify = datakey('verify');
			my $json = datakey('status', '--json');
			my $state = eval { JSON::PP::decode_json($json->{out})->{rewrap}{state} } // 'no JSON';
			note "$name, $fault: status $status->{rc}, repair $repair->{rc}, verify $verify->{rc}";
			cell_ok($name, $fault, $repair->{rc} == 0 && $verify->{rc} == 0 && $state eq 'none',
				"${label}status, then repair leave it clean (rewrap state: $state) and verify passes")
			  or diag $status->{out} . $status->{err} . $repair->{err} . $verify->{err};
		}
		kill_recorded($pids);
	}
}

ok($datakey->start(fail_ok => 1), 'the cluster of pg_datakey starts');
$datakey->stop;

done_testing();
