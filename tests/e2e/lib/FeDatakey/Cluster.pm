# FeDatakey::Cluster - small clusters for the pg_rewind and pg_upgrade
# scenarios: initdb (encrypted or not), start/stop, SQL, base backups, and
# snapshots of a data directory to prove that a refused run changed nothing.
package FeDatakey::Cluster;

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA;
use File::Find;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IPC::Run qw(run);
use Test::More;

our $base = tempdir('fe_datakey_e2e_XXXX', TMPDIR => 1, CLEANUP => 1);
my $next_port = 20000 + ($$ % 20000);

sub base_dir { return $base }

# A passphrase file and a wrap/unwrap command pair using it with openssl.
# The unwrap command deliberately holds spaces, single and double quotes and
# a literal %, which must reach the server intact through any shell quoting.
sub key_commands
{
	my ($name, $passphrase) = @_;
	my $file = "$base/$name.pass";
	open my $fh, '>', $file or die "$file: $!";
	print $fh ($passphrase // "secret-$name"), "\n";
	close $fh;
	chmod 0600, $file;
	my $wrap = "openssl enc -aes-256-cbc -pbkdf2 -salt -pass \"file:$file\" -out %p";
	my $unwrap =
	  "printf '%%s' \"x\" >/dev/null && openssl enc -d -aes-256-cbc -pbkdf2 -pass 'file:$file' -in \"%p\"";
	return ($wrap, $unwrap);
}

sub free_port
{
	while (1)
	{
		my $port = $next_port++;
		my $sock = IO::Socket::INET->new(
			LocalAddr => '127.0.0.1',
			LocalPort => $port,
			Proto => 'tcp',
			ReuseAddr => 0);
		next unless $sock;
		close $sock;
		return $port;
	}
}

sub new
{
	my ($class, $name) = @_;
	my $self = bless {
		name => $name,
		datadir => "$base/$name",
		port => free_port(),
		host => "$base/sock_$name",
		log => "$base/$name.log",
	}, $class;
	make_path($self->{host});
	return $self;
}

sub name { $_[0]{name} }
sub datadir { $_[0]{datadir} }
sub port { $_[0]{port} }
sub host { $_[0]{host} }
sub connstr
{
	my ($self, $db) = @_;
	return "host=$self->{host} port=$self->{port} dbname=" . ($db // 'postgres');
}

# Settings that belong to this node (pg_rewind replaces postgresql.conf with
# the source's, so tests put them back with this).
sub own_settings
{
	my ($self) = @_;
	return "port = $self->{port}\n"
	  . "unix_socket_directories = '$self->{host}'\n"
	  . "listen_addresses = ''\n";
}

sub append_conf
{
	my ($self, $text, $file) = @_;
	$file //= 'postgresql.conf';
	open my $fh, '>>', "$self->{datadir}/$file" or die $!;
	print $fh $text;
	close $fh;
}

# init(encrypted => 0|1, wrap => CMD, unwrap => CMD, copy_key_from => FILE)
sub init
{
	my ($self, %opt) = @_;
	my @cmd = ('initdb', '-D', $self->{datadir}, '-A', 'trust', '-N',
		'--locale=C', '-E', 'UTF8');
	if ($opt{encrypted})
	{
		push @cmd, '-y', "--key-wrap-command=$opt{wrap}",
		  "--key-unwrap-command=$opt{unwrap}";
		push @cmd, "--copy-key-from=$opt{copy_key_from}"
		  if $opt{copy_key_from};
	}
	my ($out, $err);
	run(\@cmd, '>', \$out, '2>', \$err)
	  or die "initdb $self->{name} failed: $err";
	$self->append_conf($self->own_settings
		  . "wal_level = replica\nwal_log_hints = on\nmax_wal_senders = 5\n"
		  . "hot_standby = on\nwal_keep_size = 320MB\nfsync = off\nlog_min_messages = info\n");
	return $self;
}

sub pg_ctl
{
	my ($self, @args) = @_;
	my ($out, $err);
	my $ok = run([ 'pg_ctl', '-D', $self->{datadir}, '-l', $self->{log}, @args ],
		'>', \$out, '2>', \$err);
	return wantarray ? ($ok, $out . $err) : $ok;
}

sub start
{
	my ($self) = @_;
	my ($ok, $out) = $self->pg_ctl('-w', 'start');
	die "start of $self->{name} failed: $out\n" . $self->log_tail unless $ok;
}

sub try_start
{
	my ($self) = @_;
	my ($ok) = $self->pg_ctl('-w', '-t', '30', 'start');
	return $ok;
}

sub stop
{
	my ($self, $mode) = @_;
	my ($ok, $out) = $self->pg_ctl('-w', '-m', $mode // 'fast', 'stop');
	die "stop of $self->{name} failed: $out" unless $ok;
}

sub promote
{
	my ($self) = @_;
	my ($ok, $out) = $self->pg_ctl('-w', 'promote');
	die "promote of $self->{name} failed: $out" unless $ok;
}

sub log_tail
{
	my ($self) = @_;
	open my $fh, '<', $self->{log} or return '';
	my @l = <$fh>;
	return join '', @l[ ($#l > 20 ? $#l - 20 : 0) .. $#l ];
}

sub psql
{
	my ($self, $sql, $db) = @_;
	my ($out, $err);
	my $ok = run(
		[
			'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-h', $self->{host}, '-p', $self->{port}, '-d', $db // 'postgres',
			'-c', $sql
		],
		'>', \$out, '2>', \$err);
	chomp $out;
	return ($ok, $out, $err);
}

sub safe_psql
{
	my ($self, $sql, $db) = @_;
	my ($ok, $out, $err) = $self->psql($sql, $db);
	die "psql on $self->{name} failed: $err" unless $ok;
	return $out;
}

sub poll_query
{
	my ($self, $sql, $expected, $timeout) = @_;
	$timeout //= 60;
	for (1 .. $timeout * 10)
	{
		my ($ok, $out) = $self->psql($sql);
		return 1 if $ok && $out eq $expected;
		select(undef, undef, undef, 0.1);
	}
	my (undef, $out) = $self->psql($sql);
	diag("poll on $self->{name}: got '$out', expected '$expected'");
	return 0;
}

# pg_basebackup of this running node into a new node (-R: a standby).
sub basebackup
{
	my ($self, $name, @extra) = @_;
	my $node = FeDatakey::Cluster->new($name);
	my ($out, $err);
	run(
		[
			'pg_basebackup', '-D', $node->{datadir}, '-h', $self->{host},
			'-p', $self->{port}, '-X', 'stream', '-c', 'fast', @extra
		],
		'>', \$out, '2>', \$err) or die "pg_basebackup failed: $err";
	$node->append_conf($node->own_settings);
	return $node;
}

# Every file under the data directory with its size and SHA-256, except
# what pg_upgrade writes for its own logs.
sub snapshot
{
	my ($self) = @_;
	my %snap;
	my $dir = $self->{datadir};
	find(
		{
			no_chdir => 1,
			wanted => sub {
				my $rel = substr($File::Find::name, length($dir));
				return if $rel =~ m{^/pg_upgrade_output\.d};
				if (-f $_)
				{
					$snap{$rel} = Digest::SHA->new(256)->addfile($_)->hexdigest;
				}
				elsif (-d $_) { $snap{$rel} = 'dir' }
			}
		},
		$dir);
	return \%snap;
}

sub slurp
{
	my ($file) = @_;
	open my $fh, '<:raw', $file or die "$file: $!";
	local $/;
	return <$fh>;
}

# run_cmd([...], env => {...}) -> (ok, stdout, stderr)
sub run_cmd
{
	my ($cmd, %opt) = @_;
	local %ENV = %ENV;
	delete $ENV{PGDATAKEYUNWRAPCMD};
	delete $ENV{PGDATAKEYWRAPCMD};
	$ENV{$_} = $opt{env}{$_} for keys %{ $opt{env} // {} };
	my ($out, $err) = ('', '');
	my $ok = run($cmd, '>', \$out, '2>', \$err);
	return ($ok, $out, $err);
}

1;
