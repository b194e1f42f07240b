# Shared helpers for the end-to-end tests of fe_datakey against a patched
# PostgreSQL: FE_DATAKEY_PG_BIN names its programs (scripts/test sets it for
# each version it tests), else build/pg/bin, the newest version.
#
#   use FeDatakey::TestLib;
#   my $dir  = temp_dir();
#   my $pass = passphrase_file($dir, 'pass', 'secret');
#   my $node = FeDatakey::TestLib::Cluster->new("$dir/data");
#   my ($rc, $out, $err) = $node->initdb('-y', '--key-wrap-command=' . openssl_wrap($pass),
#       '--key-unwrap-command=' . openssl_unwrap($pass));
#   $node->start or BAIL_OUT($node->log);
#   is($node->psql('select 1'), '1');
#   $node->stop;
#
# Every command runs with a clean environment: no PGDATAKEY* variables, no
# libpq connection variables and no FE_DATAKEY_CRASH_AT unless a test passes
# them (env => {...}), and messages in English.
package FeDatakey::TestLib;

use strict;
use warnings;

use Carp;
use Cwd qw(abs_path);
use Exporter 'import';
use Fcntl qw(:mode);
use File::Basename qw(dirname);
use File::Find;
use File::Temp ();
use IO::Socket::INET;
use IPC::Run ();

our @EXPORT = qw(
  temp_dir free_port run_command command_ok pg_bin_dir pg_major pg_bins
  init_cluster start_server stop_server psql
  passphrase_file rejected_passphrase openssl_wrap openssl_unwrap
  slurp_file write_file file_mode
  unwrap_key_bytes files_containing list_tree user_processes
  pty_start
);

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

# --- files and directories ---------------------------------------------------------

# A new directory owned by the user running the test, removed at exit unless
# FE_DATAKEY_KEEP_TMP is set (then its path is printed as a diagnostic).
sub temp_dir
{
	my ($template) = @_;
	$template //= 'fe_datakey_e2e_XXXXXX';
	my $keep = $ENV{FE_DATAKEY_KEEP_TMP} ? 1 : 0;
	my $dir = File::Temp::tempdir($template, TMPDIR => 1, CLEANUP => !$keep);
	chmod 0700, $dir;
	Test::More::diag("keeping $dir") if $keep && defined &Test::More::diag;
	return $dir;
}

# A TCP port nobody listens on now (the kernel's pick), for a server that
# listens only on a private socket directory anyway.
sub free_port
{
	my $sock = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => 0,
		Proto => 'tcp',
		Listen => 1,
		ReuseAddr => 1) or croak "could not open a socket: $!";
	my $port = $sock->sockport;
	close $sock;
	return $port;
}

sub slurp_file
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or croak "could not read $path: $!";
	local $/;
	my $data = <$fh>;
	close $fh;
	return $data // '';
}

sub write_file
{
	my ($path, $data, $mode) = @_;
	open my $fh, '>:raw', $path or croak "could not write $path: $!";
	print $fh $data;
	close $fh or croak "could not write $path: $!";
	chmod $mode, $path if defined $mode;
	return $path;
}

# The permission bits of a file as an octal string, e.g. "0600".
sub file_mode
{
	my ($path) = @_;
	my @st = lstat $path or return undef;
	return sprintf('%04o', S_IMODE($st[2]));
}

# A passphrase file (mode 0600) holding $secret on one line.
sub passphrase_file
{
	my ($dir, $name, $secret) = @_;
	return write_file("$dir/$name", "$secret\n", 0600);
}

# A wrong passphrase that openssl rejects outright for $keyfile: openssl
# enc -d with a wrong passphrase finds valid CBC padding about once in 256
# salts and then prints garbage instead of failing ("bad decrypt"). Tests
# that expect openssl's own error use this, so that they do not depend on
# chance; garbage from an unwrap command has tests of its own. Returns the
# passphrase, and writes it to $dir/$name when a name is given.
sub rejected_passphrase
{
	my ($keyfile, $dir, $name, $cipher) = @_;
	$cipher //= 'aes-128-cbc';
	for my $i (1 .. 64)
	{
		my $candidate = "not the passphrase $i";
		my ($rc) = run_command([ 'openssl', 'enc', '-d', "-$cipher", '-pbkdf2', '-pass', 'stdin',
			'-in', $keyfile ], stdin => "$candidate\n");
		next if $rc == 0;
		return defined $name ? passphrase_file($dir, $name, $candidate) : $candidate;
	}
	croak "openssl accepted 64 wrong passphrases for $keyfile";
}

# The README's passphrase recipe with openssl, the passphrase read from a
# file. $pass must not need quoting in a shell (a temp_dir path does not).
sub openssl_wrap
{
	my ($pass, $cipher) = @_;
	$cipher //= 'aes-128-cbc';
	return "openssl enc -e -$cipher -pbkdf2 -pass file:$pass -out \"%p\"";
}

sub openssl_unwrap
{
	my ($pass, $cipher) = @_;
	$cipher //= 'aes-128-cbc';
	return "openssl enc -d -$cipher -pbkdf2 -pass file:$pass -in \"%p\"";
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

# Every path below $dir (relative, sorted), directories with a trailing /.
sub list_tree
{
	my ($dir) = @_;
	return () unless -e $dir;
	my @paths;
	find(
		{
			no_chdir => 1,
			wanted => sub {
				return if $_ eq $dir;
				my $rel = substr($_, length($dir) + 1);
				push @paths, -d $_ && !-l $_ ? "$rel/" : $rel;
			}
		},
		$dir);
	return sort @paths;
}

# The files below $dir whose contents hold $bytes (relative paths).
sub files_containing
{
	my ($dir, $bytes) = @_;
	croak "files_containing: empty pattern" unless length $bytes;
	my @hits;
	for my $rel (list_tree($dir))
	{
		my $path = "$dir/$rel";
		next if -d $path || -l $path || !-f $path;
		my $data = eval { slurp_file($path) } // next;
		push @hits, $rel if index($data, $bytes) >= 0;
	}
	return @hits;
}

# --- running commands -----------------------------------------------------------

# run_command(\@argv, %opts) -> ($status, $stdout, $stderr, \%how)
#   $status: the exit code, or 128 + N when killed by signal N, or 124 when
#   killed after the timeout.
#   %how: signal => N when killed by signal N (else 0), timed_out => 1 when
#   killed after the timeout (else 0): what $status cannot tell apart from
#   an exit code.
#   opts: env => { NAME => value or undef to unset }, stdin => string,
#         cwd => dir, timeout => seconds.
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

sub run_command
{
	my ($cmd, %opts) = @_;
	my ($out, $err) = ('', '');
	my $in = $opts{stdin} // '';
	local %ENV = %ENV;
	while (my ($k, $v) = each %{ $opts{env} // {} })
	{
		if (defined $v) { $ENV{$k} = $v }
		else { delete $ENV{$k} }
	}
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

# Runs a command that must succeed; returns its stdout. Dies with its stderr.
sub command_ok
{
	my ($cmd, %opts) = @_;
	my ($rc, $out, $err) = run_command($cmd, %opts);
	croak "command failed (status $rc): @$cmd\n$err" if $rc != 0;
	return $out;
}

# Runs the unwrap command of an encrypted cluster by hand (through the same
# shell the library uses, in the data directory, %p = pg_encryption/key.bin)
# and returns the plaintext key bytes.
sub unwrap_key_bytes
{
	my ($pgdata, $unwrap, %opts) = @_;
	my $keyfile = $opts{key_file} // 'pg_encryption/key.bin';
	(my $cmd = $unwrap) =~ s/%(p|%)/$1 eq 'p' ? $keyfile : '%'/ge;
	return slurp_file("$pgdata/$keyfile") if $unwrap eq '-';
	my $shell = -x '/bin/bash' ? [ '/bin/bash', '-o', 'pipefail', '-c', $cmd ] : [ '/bin/sh', '-c', $cmd ];
	my ($rc, $out, $err) = run_command($shell, cwd => $pgdata, %opts);
	croak "unwrap command failed (status $rc): $err" if $rc != 0;
	return $out;
}

# --- clusters ---------------------------------------------------------------------

# initdb -D $pgdata -A trust -N --no-instructions @args -> ($rc, $out, $err).
# A trailing hash ref of run_command options may follow @args.
sub init_cluster
{
	my ($pgdata, @args) = @_;
	my %opts = ref $args[-1] eq 'HASH' ? %{ pop @args } : ();
	return run_command([ 'initdb', '-D', $pgdata, '-A', 'trust', '-N', '--no-instructions', @args ],
		%opts);
}

# start_server($pgdata, %opts) -> ($rc, $out, $err) of pg_ctl -w start.
#   opts: sockdir (default: a new private directory), port (default: free_port),
#         log (default: server.log in the socket directory), options => extra
#         postgres options, env, timeout, wait (pg_ctl -t, default 60).
# The socket directory, port and log file are remembered per data directory
# for psql and stop_server.
my %servers;

sub server_info
{
	my ($pgdata) = @_;
	return $servers{$pgdata} if $servers{$pgdata};
	my $sockdir = temp_dir('fe_datakey_srv_XXXXXX');
	return $servers{$pgdata} = {
		sockdir => $sockdir,
		port => free_port(),
		log => "$sockdir/server.log",
	};
}

sub start_server
{
	my ($pgdata, %opts) = @_;
	my $info = server_info($pgdata);
	$info->{$_} = $opts{$_} for grep { defined $opts{$_} } qw(sockdir port log);
	my $o = "-k $info->{sockdir} -p $info->{port} -c listen_addresses=''";
	$o .= " $opts{options}" if $opts{options};
	# pg_ctl puts -D in double quotes in a shell command: a path with " $ `
	# or \ goes through PGDATA instead.
	my %env = %{ $opts{env} // {} };
	my @D = ('-D', $pgdata);
	if ($pgdata =~ /["\$`\\]/)
	{
		$env{PGDATA} = $pgdata;
		@D = ();
	}
	return run_command(
		[ 'pg_ctl', '-w', '-t', $opts{wait} // 60, @D, '-l', $info->{log}, '-o', $o, 'start' ],
		env => \%env,
		timeout => $opts{timeout});
}

sub stop_server
{
	my ($pgdata, %opts) = @_;
	return run_command([ 'pg_ctl', '-w', '-D', $pgdata, '-m', $opts{mode} // 'fast', 'stop' ],
		timeout => $opts{timeout});
}

# psql($pgdata, $sql, %opts) -> stdout without the trailing newline, or undef
# on failure (in list context: ($rc, $out, $err)).
sub psql
{
	my ($pgdata, $sql, %opts) = @_;
	my $info = server_info($pgdata);
	my ($rc, $out, $err) = run_command(
		[ 'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $info->{sockdir},
			'-p', $info->{port}, '-d', $opts{dbname} // 'postgres', '-c', $sql ],
		env => $opts{env});
	chomp $out;
	return ($rc, $out, $err) if wantarray;
	return $rc == 0 ? $out : undef;
}

# --- pseudo-terminals -----------------------------------------------------------

# pty_start(\@argv, %opts) -> a FeDatakey::TestLib::Pty: the command runs with
# a new pseudo-terminal as its controlling terminal, stdin, stdout and stderr.
#   opts: env, cwd.
sub pty_start
{
	my ($cmd, %opts) = @_;
	return FeDatakey::TestLib::Pty->start($cmd, %opts);
}

package FeDatakey::TestLib::Pty;

use Carp;
use Time::HiRes qw(time);

sub start
{
	my ($class, $cmd, %opts) = @_;
	my $self = bless { in => '', out => '', cmd => $cmd }, $class;
	local %ENV = %ENV;
	while (my ($k, $v) = each %{ $opts{env} // {} })
	{
		if (defined $v) { $ENV{$k} = $v }
		else { delete $ENV{$k} }
	}
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

package FeDatakey::TestLib::Cluster;

# An object face on the functions above, for one data directory.
#   my $node = FeDatakey::TestLib::Cluster->new($pgdata);
#   $node->initdb(@args) / ->start(%opts) / ->stop / ->restart / ->psql($sql)
#   $node->safe_psql($sql) / ->append_conf($text) / ->connstr
#   $node->log / ->postgres_C($setting) / ->data_dir / ->sockdir / ->port

sub new
{
	my ($class, $pgdata) = @_;
	return bless { pgdata => $pgdata }, $class;
}

sub data_dir { return $_[0]{pgdata} }
sub sockdir { return FeDatakey::TestLib::server_info($_[0]{pgdata})->{sockdir} }
sub port { return FeDatakey::TestLib::server_info($_[0]{pgdata})->{port} }
sub logfile { return FeDatakey::TestLib::server_info($_[0]{pgdata})->{log} }

# A libpq connection string for this server.
sub connstr
{
	my ($self, $dbname) = @_;
	return "host=" . $self->sockdir . " port=" . $self->port . " dbname=" . ($dbname // 'postgres');
}

# Appends $text to postgresql.conf (or to $file in the data directory).
sub append_conf
{
	my ($self, $text, $file) = @_;
	my $path = "$self->{pgdata}/" . ($file // 'postgresql.conf');
	open my $fh, '>>', $path or Carp::croak "could not append to $path: $!";
	print $fh $text;
	close $fh or Carp::croak "could not append to $path: $!";
	return $path;
}

sub initdb
{
	my ($self, @args) = @_;
	return FeDatakey::TestLib::init_cluster($self->{pgdata}, @args);
}

# In scalar context: true when the server started.
sub start
{
	my ($self, %opts) = @_;
	my @r = FeDatakey::TestLib::start_server($self->{pgdata}, %opts);
	return wantarray ? @r : $r[0] == 0;
}

sub stop
{
	my ($self, %opts) = @_;
	my @r = FeDatakey::TestLib::stop_server($self->{pgdata}, %opts);
	return wantarray ? @r : $r[0] == 0;
}

sub restart
{
	my ($self, %opts) = @_;
	$self->stop;
	return $self->start(%opts);
}

sub psql
{
	my ($self, $sql, %opts) = @_;
	return FeDatakey::TestLib::psql($self->{pgdata}, $sql, %opts);
}

# Like psql, but dies with psql's stderr when it fails.
sub safe_psql
{
	my ($self, $sql, %opts) = @_;
	my ($rc, $out, $err) = $self->psql($sql, %opts);
	Carp::croak "psql on $self->{pgdata} failed (status $rc): $err" if $rc != 0;
	return $out;
}

# The server log so far ('' when there is none).
sub log
{
	my ($self) = @_;
	my $path = $self->logfile;
	return -e $path ? FeDatakey::TestLib::slurp_file($path) : '';
}

# The server log written since the last call of log_since_mark / mark_log.
sub mark_log
{
	my ($self) = @_;
	$self->{mark} = length $self->log;
}

sub log_since_mark
{
	my ($self) = @_;
	my $log = $self->log;
	return substr($log, $self->{mark} // 0);
}

# postgres -C SETTING -D pgdata -> ($rc, $stdout without newline, $stderr).
sub postgres_C
{
	my ($self, $setting, %opts) = @_;
	my ($rc, $out, $err) =
	  FeDatakey::TestLib::run_command([ 'postgres', '-D', $self->{pgdata}, '-C', $setting ], %opts);
	chomp $out;
	return ($rc, $out, $err);
}

sub DESTROY
{
	my ($self) = @_;
	local ($?, $@);
	if (-e "$self->{pgdata}/postmaster.pid")
	{
		eval { FeDatakey::TestLib::stop_server($self->{pgdata}, mode => 'immediate', timeout => 30) };
	}
}

1;
