# FeDatakey::Run - what the end-to-end tests need to run programs and
# PostgreSQL's test modules lack: the programs of the version under test
# first in PATH and a clean environment, run_command with an environment,
# a working directory, a timeout and the signal that ended the command, and
# a driver for programs that talk to a terminal (pty_start).
# FE_DATAKEY_PG_BIN names the PostgreSQL programs (scripts/test sets it for
# each version it tests), else build/pg/bin, the newest version.
#
#   use FeDatakey::Run;
#   my ($rc, $out, $err, $how) = run_command([ 'pg_datakey', 'status' ],
#       env => { PGDATAKEYUNWRAPCMD => undef }, timeout => 60);
#   my $out = command_stdout([ 'openssl', 'rand', '-hex', '16' ]);
#   my $t = pty_start([ 'initdb', ... ]);
#   $t->expect(qr/password:/); $t->send("secret\n"); $t->finish;
#
# Every command runs with a clean environment: no PGDATAKEY* variables, no
# libpq connection variables and no FE_DATAKEY_CRASH_AT unless a test passes
# them (env => {...}), and messages in English.
package FeDatakey::Run;

use strict;
use warnings;

use Carp;
use Cwd qw(abs_path);
use Exporter 'import';
use File::Basename qw(dirname);
use IPC::Run ();

our @EXPORT = qw(run_command command_stdout pty_start user_processes pg_bin_dir pg_major pg_bins);

our $REPO = abs_path(dirname(__FILE__) . '/../../../..');

# Seconds a command may take before it is killed (initdb, pg_ctl -w, psql).
our $TIMEOUT = $ENV{FE_DATAKEY_TEST_TIMEOUT} || 180;

# --- environment ---------------------------------------------------------------

sub pg_bin_dir
{
	return $ENV{FE_DATAKEY_PG_BIN} // "$REPO/build/pg/bin";
}

# The major version of the PostgreSQL in $bin (default: pg_bin_dir()).
my %major_of;

sub pg_major
{
	my ($bin) = @_;
	$bin //= pg_bin_dir();
	return $major_of{$bin} //= do
	{
		my ($rc, $out, $err) = run_command([ "$bin/pg_config", '--version' ]);
		croak "$bin/pg_config --version failed: $err" if $rc != 0;
		$out =~ /^PostgreSQL (\d+)/ or croak "cannot read a version from: $out";
		$1;
	};
}

# Every version under test, for the cross-version tests: major => bin
# directory, from FE_DATAKEY_PG_BINS ("15=/path/bin 17=/path/bin ...").
sub pg_bins
{
	my %bins;
	for (split ' ', $ENV{FE_DATAKEY_PG_BINS} // '')
	{
		my ($v, $dir) = split /=/, $_, 2;
		$bins{$v} = $dir;
	}
	return %bins;
}

BEGIN
{
	delete $ENV{$_} for grep { /^PG/ } keys %ENV;
	delete $ENV{FE_DATAKEY_CRASH_AT};
	$ENV{LC_ALL} = 'C';
	$ENV{LANG} = 'C';
	delete $ENV{LANGUAGE};
	$ENV{TZ} = 'UTC';
}

{
	my $bin = pg_bin_dir();
	croak "no PostgreSQL programs in $bin (run scripts/build, or set FE_DATAKEY_PG_BIN)"
	  unless -x "$bin/initdb";
	# pg_datakey is installed with the library, outside PostgreSQL's prefix.
	$ENV{PATH} = "$bin:$REPO/build/fe_datakey/bin:$ENV{PATH}";
	croak "the end-to-end tests cannot run as root (initdb refuses to)" if $> == 0;
}

# The processes of the user running the test, now: a list of [pid, argv...]
# from /proc (a process that ends while it is read is left out).
sub user_processes
{
	my @procs;
	opendir(my $proc, '/proc') or croak "opendir /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir $proc)
	{
		my @st = stat "/proc/$pid" or next;
		next if $st[4] != $<;
		open(my $fh, '<', "/proc/$pid/cmdline") or next;
		local $/;
		my $cmdline = <$fh> // '';
		close $fh;
		push @procs, [ $pid, split /\0/, $cmdline ];
	}
	closedir $proc;
	return @procs;
}

# --- running commands -----------------------------------------------------------

# The program $name as the current PATH finds it. IPC::Run remembers where
# it found a program for the rest of the process, so a test that runs the
# programs of several PostgreSQL versions by changing PATH must look it up
# itself.
sub _in_path
{
	my ($name) = @_;
	return $name if $name =~ m{/};
	for my $dir (split /:/, $ENV{PATH} // '')
	{
		my $path = ($dir eq '' ? '.' : $dir) . "/$name";
		return $path if -f $path && -x _;
	}
	return $name;
}

# Sets (or, for undef, unsets) the variables of %$env in the current %ENV;
# the caller localizes %ENV.
sub _set_env
{
	my ($env) = @_;
	while (my ($k, $v) = each %{ $env // {} })
	{
		if (defined $v) { $ENV{$k} = $v }
		else { delete $ENV{$k} }
	}
}

# run_command(\@argv, %opts) -> ($status, $stdout, $stderr, \%how)
#   $status: the exit code, or 128 + N when killed by signal N, or 124 when
#   killed after the timeout.
#   %how: signal => N when killed by signal N (else 0), timed_out => 1 when
#   killed after the timeout (else 0): what $status cannot tell apart from
#   an exit code.
#   opts: env => { NAME => value or undef to unset }, stdin => string,
#         cwd => dir, timeout => seconds.
sub run_command
{
	my ($cmd, %opts) = @_;
	my ($out, $err) = ('', '');
	my $in = $opts{stdin} // '';
	local %ENV = %ENV;
	_set_env($opts{env});
	$cmd = [ _in_path($cmd->[0]), @{$cmd}[ 1 .. $#$cmd ] ];
	my @init = defined $opts{cwd} ? (init => sub { chdir $opts{cwd} or die "chdir: $!" }) : ();
	my $timer = IPC::Run::timeout($opts{timeout} // $TIMEOUT);
	eval {
		IPC::Run::run($cmd, @init, '<', \$in, '>', \$out, '2>', \$err, $timer);
		1;
	} or do {
		my $e = $@;
		croak "command @$cmd: $e" unless $e =~ /timeout/i;
		return (124, $out, $err . "\n[timed out after " . ($opts{timeout} // $TIMEOUT) . "s]\n",
			{ signal => 0, timed_out => 1 });
	};
	my $st = $?;
	my $status = ($st & 127) ? 128 + ($st & 127) : $st >> 8;
	return ($status, $out, $err, { signal => $st & 127, timed_out => 0 });
}

# command_stdout(\@argv, %opts) -> the stdout of a command that must succeed
# (a step of a test's setup, not a check: upstream's command_ok is the
# check); dies with its stderr.  %opts: run_command's.
sub command_stdout
{
	my ($cmd, %opts) = @_;
	my ($rc, $out, $err) = run_command($cmd, %opts);
	croak "command failed (status $rc): @$cmd\n$err" if $rc != 0;
	return $out;
}

# --- pseudo-terminals -----------------------------------------------------------

# pty_start(\@argv, %opts) -> a FeDatakey::Run::Pty: the command runs with
# a new pseudo-terminal as its controlling terminal, stdin, stdout and stderr.
#   opts: env, cwd.
sub pty_start
{
	my ($cmd, %opts) = @_;
	return FeDatakey::Run::Pty->start($cmd, %opts);
}

package FeDatakey::Run::Pty;

use Carp;
use Time::HiRes qw(time);

sub start
{
	my ($class, $cmd, %opts) = @_;
	my $self = bless { in => '', out => '', cmd => $cmd }, $class;
	local %ENV = %ENV;
	FeDatakey::Run::_set_env($opts{env});
	my @init = defined $opts{cwd} ? (init => sub { chdir $opts{cwd} or die "chdir: $!" }) : ();
	$self->{h} = IPC::Run::start($cmd, @init, '<pty<', \$self->{in}, '>pty>', \$self->{out});
	return $self;
}

# Everything the command wrote to the terminal so far.
sub output { return $_[0]{out} }

# Waits until the output after the last match matches $re (or $timeout
# seconds pass); returns the text up to and including the match, or undef.
sub expect
{
	my ($self, $re, $timeout) = @_;
	$timeout //= 60;
	my $deadline = time + $timeout;
	$self->{pos} //= 0;
	while (1)
	{
		my $rest = substr($self->{out}, $self->{pos});
		if ($rest =~ $re)
		{
			my $matched = substr($rest, 0, $+[0]);
			$self->{pos} += $+[0];
			return $matched;
		}
		return undef if time > $deadline || !$self->{h}->pumpable;
		$self->_pump;
	}
}

sub _pump
{
	my ($self) = @_;
	my $before = length $self->{out};
	eval { $self->{h}->pump_nb; 1 } or return;
	select(undef, undef, undef, 0.05) if length $self->{out} == $before;
}

# Types $text on the terminal.
sub send
{
	my ($self, $text) = @_;
	$self->{in} .= $text;
	$self->{h}->pump_nb while length $self->{in} && $self->{h}->pumpable;
	return;
}

# Waits for the command to end (killing it after $timeout seconds); returns
# its status as run_command does.
sub finish
{
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	$self->_pump while $self->{h}->pumpable && time < $deadline;
	if ($self->{h}->pumpable)
	{
		$self->{h}->kill_kill;
		return 124;
	}
	$self->{h}->finish;
	my $st = $self->{h}->full_result(0);
	return ($st & 127) ? 128 + ($st & 127) : $st >> 8;
}

sub signal
{
	my ($self, $sig) = @_;
	$self->{h}->signal($sig);
}

sub DESTROY
{
	my ($self) = @_;
	local $@;
	eval { $self->{h}->kill_kill if $self->{h} && $self->{h}->pumpable };
}

1;
