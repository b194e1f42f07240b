# FeDatakey::TestLib - what is left of the tests' first library, until the
# files that use it stand on PostgreSQL::Test::Cluster (FeDatakey::Cluster):
# it re-exports FeDatakey::Run, FeDatakey::Files and FeDatakey::KeyCommands
# under their old names, and keeps its own small cluster driver
# (init_cluster, start_server, stop_server, psql, FeDatakey::TestLib::Cluster)
# with temp_dir, free_port, slurp_file and a command_ok that returns stdout.
# New tests use FeDatakey::Cluster and those modules directly.
package FeDatakey::TestLib;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use File::Temp ();
use IO::Socket::INET;
use FeDatakey::Run;
use FeDatakey::Files;
use FeDatakey::KeyCommands qw(passphrase_file rejected_passphrase openssl_wrap openssl_unwrap
  unwrap_key_bytes);

our @EXPORT = qw(
  temp_dir free_port run_command command_ok pg_bin_dir pg_major pg_bins
  init_cluster start_server stop_server psql
  passphrase_file rejected_passphrase openssl_wrap openssl_unwrap
  slurp_file write_file file_mode
  unwrap_key_bytes files_containing list_tree user_processes
  pty_start
);

our $REPO = $FeDatakey::Run::REPO;

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

# Runs a command that must succeed; returns its stdout. Dies with its stderr.
sub command_ok
{
	my ($cmd, %opts) = @_;
	my ($rc, $out, $err) = run_command($cmd, %opts);
	croak "command failed (status $rc): @$cmd\n$err" if $rc != 0;
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
