# FeDatakey::CommandProcs - the processes of a key command under test: a
# command that records the PIDs of its long-lived processes in a file, and
# whether they, or anything of their process group, are left; which other
# processes share a pipe with one of them.
#
#   use FeDatakey::CommandProcs;
#   my $cmd = recorded($pids, 'sleep 2718');    # sh -c 'echo $$ >> FILE; exec sleep 2718'
#   my $gc = detached($pids, 'yes');             # the same, in a session of its own, in the background
#   my @left = left_alive($pids, 5);            # those still alive after (at most) 5 s
#   kill_recorded($pids);                       # cleanup
package FeDatakey::CommandProcs;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use FeDatakey::BoundedRun qw(wait_for);

our @EXPORT =
  qw(recorded detached recorded_pids alive pgid_of group_members group_left left_alive kill_recorded pipe_sharers);

# A shell command that appends its PID to $pidfile, then becomes $program
# (no single quotes in either).
sub recorded
{
	my ($pidfile, $program) = @_;
	croak 'recorded: no single quotes' if "$pidfile$program" =~ /'/;
	return "sh -c 'echo \$\$ >> $pidfile; exec $program'";
}

# A shell command that starts $program in a session of its own (setsid: it
# leaves the command's process group), recorded in $pidfile, its stdin and
# stderr /dev/null, its stdout the command's; and waits until it has
# recorded itself, so that it is out of the group before the command exits.
sub detached
{
	my ($pidfile, $program) = @_;
	return 'setsid ' . recorded($pidfile, $program) . " </dev/null 2>/dev/null & while ! [ -s $pidfile ]; do sleep 0.01; done";
}

sub recorded_pids
{
	my ($pidfile) = @_;
	open my $fh, '<', $pidfile or return ();
	my @pids = grep { /^\d+$/ } map { s/\s+//gr } <$fh>;
	close $fh;
	return @pids;
}

sub _stat_fields
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return ();
	my $line = <$fh> // '';
	close $fh;
	# pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
	$line =~ s/^.*\)\s+// or return ();
	return split ' ', $line;
}

# Whether $pid runs (a zombie does not).
sub alive
{
	my ($pid) = @_;
	my @f = _stat_fields($pid) or return 0;
	return $f[0] ne 'Z' && $f[0] ne 'X';
}

sub pgid_of
{
	my ($pid) = @_;
	my @f = _stat_fields($pid) or return undef;
	return $f[2];
}

# The live processes (of any user this test can see) in process group $pgid.
sub group_members
{
	my ($pgid) = @_;
	opendir(my $proc, '/proc') or croak "opendir /proc: $!";
	my @pids = grep { /^\d+$/ && $_ != $$ } readdir $proc;
	closedir $proc;
	return grep { my @f = _stat_fields($_); @f && $f[2] == $pgid && $f[0] ne 'Z' } @pids;
}

# The processes left in group $pgid after waiting at most $seconds (default
# 3) for it to be empty, as text: '' for none, '?' when $pgid is unknown.
sub group_left
{
	my ($pgid, $seconds) = @_;
	return '?' unless $pgid;
	wait_for(sub { !group_members($pgid) }, $seconds // 3);
	return join(' ', group_members($pgid));
}

# The recorded processes still alive after waiting at most $seconds for
# them all to be gone.
sub left_alive
{
	my ($pidfile, $seconds) = @_;
	wait_for(sub { !grep { alive($_) } recorded_pids($pidfile) }, $seconds);
	return grep { alive($_) } recorded_pids($pidfile);
}

# Kills what is left of the recorded processes (the end of a test, or one
# that failed), and forgets them.
sub kill_recorded
{
	my ($pidfile) = @_;
	kill 'KILL', $_ for grep { alive($_) } recorded_pids($pidfile);
	unlink $pidfile;
	return;
}

# The other processes that hold the pipe that is $pid's descriptor $fd
# (its stdout, say), by the pipe's inode.
sub pipe_sharers
{
	my ($pid, $fd) = @_;
	my $pipe = readlink("/proc/$pid/fd/$fd") // return ();
	return () unless $pipe =~ /^pipe:/;
	my @holders;
	opendir(my $proc, '/proc') or croak "opendir /proc: $!";
	for my $other (grep { /^\d+$/ && $_ != $pid } readdir $proc)
	{
		opendir(my $fds, "/proc/$other/fd") or next;
		push @holders, $other if grep { (readlink("/proc/$other/fd/$_") // '') eq $pipe } readdir $fds;
		closedir $fds;
	}
	closedir $proc;
	return @holders;
}

1;
