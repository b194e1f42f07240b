# FeDatakey::BoundedRun - a program run in the background with its output
# in files (so that a process it leaves behind cannot hold a pipe of the
# test open), waited for with a bound, killed when it runs past it; and a
# bounded wait for a condition.  For tests that time how fast something
# ends, or signal it while it waits.
#
#   use FeDatakey::BoundedRun;
#   my $r = run_bounded([ 'pg_datakey', 'verify', '-D', $pgdata ], timeout => 30);
#   # $r->{rc}, $r->{out}, $r->{err}, $r->{secs}, $r->{signal}, $r->{timed_out}
#   my $p = spawn([ 'initdb', ... ]);
#   wait_for(sub { -s $pidfile }, 30);
#   kill 'TERM', $p->{pid};
#   my $r = reap_within($p, 10);
package FeDatakey::BoundedRun;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use File::Temp ();
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time);
use FeDatakey::Run ();

our @EXPORT = qw(spawn reap_within run_bounded wait_for);

# spawn(\@argv, %opts) -> a running program: {pid, t0, ...}.
#   opts: env => { NAME => value or undef }, stdin => string (default:
#   none, /dev/null), cwd => dir.
sub spawn
{
	my ($cmd, %opts) = @_;
	my %p = (cmd => $cmd);
	$p{outf} = File::Temp->new;
	$p{errf} = File::Temp->new;
	my $in = '/dev/null';
	if (defined $opts{stdin})
	{
		$p{inf} = File::Temp->new;
		print { $p{inf} } $opts{stdin};
		close $p{inf};
		$in = $p{inf}->filename;
	}
	local %ENV = %ENV;
	while (my ($k, $v) = each %{ $opts{env} // {} })
	{
		if (defined $v) { $ENV{$k} = $v }
		else { delete $ENV{$k} }
	}
	$p{t0} = time;
	my $pid = fork;
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open STDIN, '<', $in or POSIX::_exit(126);
		open STDOUT, '>', $p{outf}->filename or POSIX::_exit(126);
		open STDERR, '>', $p{errf}->filename or POSIX::_exit(126);
		if (defined $opts{cwd}) { chdir $opts{cwd} or POSIX::_exit(126) }
		{ no warnings 'exec'; exec { $cmd->[0] } @$cmd; }
		POSIX::_exit(127);
	}
	$p{pid} = $pid;
	return \%p;
}

sub _slurp
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or return '';
	local $/;
	return <$fh> // '';
}

# reap_within($p, $seconds) -> {rc, out, err, secs, signal, timed_out}: waits
# for the program at most $seconds (then kills it with SIGKILL: timed_out).
# rc is the exit status, or 128 + N when killed by signal N; secs is the
# time since spawn.
sub reap_within
{
	my ($p, $seconds) = @_;
	my $deadline = time + $seconds;
	my ($got, $st) = (0, 0);
	while (1)
	{
		$got = waitpid($p->{pid}, WNOHANG);
		if ($got == $p->{pid}) { $st = $?; last }
		last if time >= $deadline;
		select(undef, undef, undef, 0.02);
	}
	my %r = (timed_out => 0);
	if ($got != $p->{pid})
	{
		kill 'KILL', $p->{pid};
		waitpid($p->{pid}, 0);
		$st = $?;
		$r{timed_out} = 1;
	}
	$r{secs} = time - $p->{t0};
	$r{signal} = $st & 127;
	$r{rc} = $r{signal} ? 128 + $r{signal} : $st >> 8;
	$r{out} = _slurp($p->{outf}->filename);
	$r{err} = _slurp($p->{errf}->filename);
	$r{err} .= sprintf("\n[killed after %d s]\n", $seconds) if $r{timed_out};
	return \%r;
}

# run_bounded(\@argv, timeout => seconds, spawn's opts) -> reap_within's result.
sub run_bounded
{
	my ($cmd, %opts) = @_;
	my $timeout = delete $opts{timeout} // $FeDatakey::Run::TIMEOUT;
	my @argv = @$cmd;
	$argv[0] = FeDatakey::Run::_in_path($argv[0]);
	return reap_within(spawn(\@argv, %opts), $timeout);
}

# Waits (at most $seconds) until $cond returns true; returns its last value.
sub wait_for
{
	my ($cond, $seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		my $v = $cond->();
		return $v if $v;
		select(undef, undef, undef, 0.05);
	}
	return $cond->();
}

1;
