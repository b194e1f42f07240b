# FeDatakey::Cluster - named clusters for the pg_rewind and pg_upgrade
# scenarios, built on FeDatakey::TestLib::Cluster: initdb (encrypted or not)
# with replication settings, start/stop that die on failure, promotion,
# base backups, and snapshots of a data directory to prove that a refused
# run changed nothing.
#
#   use FeDatakey::TestLib;
#   use FeDatakey::Cluster;
#   my ($wrap, $unwrap) = key_commands('name');
#   my $node = FeDatakey::Cluster->new('primary');
#   $node->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
#   my $old = FeDatakey::Cluster->new('old', bin => '/path/to/pg-15/bin');
#
# A node made with bin => DIR runs that directory's programs (initdb,
# pg_ctl, psql), so that clusters of several versions live side by side.
package FeDatakey::Cluster;

use strict;
use warnings;

use Carp;
use Digest::SHA;
use Exporter 'import';
# Only these: an exported psql would shadow the psql method.
use FeDatakey::TestLib qw(temp_dir passphrase_file pg_bin_dir command_ok list_tree);
use Test::More ();

our @ISA = ('FeDatakey::TestLib::Cluster');
our @EXPORT = qw(key_commands pg_upgrade_command);

# Every node's data directory, the passphrase files, and pg_upgrade's
# socket directory (-s) live here.
our $base = temp_dir();

sub base_dir { return $base }

# A passphrase file and a wrap/unwrap command pair using it with openssl.
# The unwrap command deliberately holds spaces, single and double quotes and
# a literal %, which must reach the server intact through any shell quoting.
sub key_commands
{
	my ($name, $passphrase) = @_;
	my $file = passphrase_file($base, "$name.pass", $passphrase // "secret-$name");
	my $wrap = "openssl enc -aes-256-cbc -pbkdf2 -salt -pass \"file:$file\" -out %p";
	my $unwrap =
	  "printf '%%s' \"x\" >/dev/null && openssl enc -d -aes-256-cbc -pbkdf2 -pass 'file:$file' -in \"%p\"";
	return ($wrap, $unwrap);
}

# pg_upgrade from $old to $new (each node's own programs, the new one's
# pg_upgrade), its socket directory the base directory, then @extra.
sub pg_upgrade_command
{
	my ($old, $new, @extra) = @_;
	return [
		$new->bin_dir . '/pg_upgrade', '-b', $old->bin_dir, '-B', $new->bin_dir,
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-p', $old->port, '-P', $new->port, '-s', $base, @extra
	];
}

sub new
{
	my ($class, $name, %opt) = @_;
	my $self = $class->SUPER::new("$base/$name");
	$self->{name} = $name;
	$self->{bin} = $opt{bin} // pg_bin_dir();
	return $self;
}

sub name { return $_[0]{name} }
sub bin_dir { return $_[0]{bin} }

# The PATH under which this node's programs come first.
sub _path { return "$_[0]{bin}:$ENV{PATH}" }

for my $method (qw(initdb psql safe_psql postgres_C))
{
	my $super = FeDatakey::TestLib::Cluster->can($method) or next;
	no strict 'refs';
	*{$method} = sub {
		my $self = shift;
		local $ENV{PATH} = $self->_path;
		return $super->($self, @_);
	};
}

# init(encrypted => 0|1, wrap => CMD, unwrap => CMD, copy_key_from => FILE,
#      initdb_args => [...])
sub init
{
	my ($self, %opt) = @_;
	my @args = ('--locale=C', '-E', 'UTF8', @{ $opt{initdb_args} // [] });
	if ($opt{encrypted})
	{
		push @args, '-y', "--key-wrap-command=$opt{wrap}", "--key-unwrap-command=$opt{unwrap}";
		push @args, "--copy-key-from=$opt{copy_key_from}" if $opt{copy_key_from};
	}
	my ($rc, undef, $err) = $self->initdb(@args);
	croak "initdb $self->{name} failed: $err" if $rc != 0;
	$self->append_conf("wal_level = replica\nwal_log_hints = on\nmax_wal_senders = 5\n"
		  . "hot_standby = on\nwal_keep_size = 320MB\nfsync = off\nlog_min_messages = info\n");
	return $self;
}

# start and stop die when pg_ctl fails.
sub start
{
	my ($self, %opts) = @_;
	local $ENV{PATH} = $self->_path;
	my ($rc, $out, $err) = $self->SUPER::start(%opts);
	if ($rc != 0)
	{
		my @log = split /^/m, $self->log;
		splice @log, 0, @log - 21 if @log > 21;
		croak "start of $self->{name} failed: $out$err\n" . join('', @log);
	}
	return 1;
}

sub stop
{
	my ($self, %opts) = @_;
	local $ENV{PATH} = $self->_path;
	my ($rc, $out, $err) = $self->SUPER::stop(%opts);
	croak "stop of $self->{name} failed: $out$err" if $rc != 0;
	return 1;
}

sub promote
{
	my ($self) = @_;
	local $ENV{PATH} = $self->_path;
	command_ok([ 'pg_ctl', '-w', '-D', $self->data_dir, 'promote' ]);
	return 1;
}

# Waits until $sql gives $expected (true), or $timeout seconds pass (false).
sub poll_query
{
	my ($self, $sql, $expected, $timeout) = @_;
	$timeout //= 60;
	for (1 .. $timeout * 10)
	{
		my ($rc, $out) = $self->psql($sql);
		return 1 if $rc == 0 && $out eq $expected;
		select(undef, undef, undef, 0.1);
	}
	my (undef, $out) = $self->psql($sql);
	Test::More::diag("poll on $self->{name}: got '$out', expected '$expected'");
	return 0;
}

# pg_basebackup of this running node into a new node (-R: a standby).
sub basebackup
{
	my ($self, $name, @extra) = @_;
	my $node = ref($self)->new($name);
	command_ok(
		[
			'pg_basebackup', '-D', $node->data_dir, '-h', $self->sockdir,
			'-p', $self->port, '-X', 'stream', '-c', 'fast', @extra
		]);
	return $node;
}

# Every file and directory below the data directory, files with their
# SHA-256, except what pg_upgrade writes for its own logs.
sub snapshot
{
	my ($self) = @_;
	my $dir = $self->data_dir;
	my %snap;
	for my $rel (list_tree($dir))
	{
		next if $rel =~ m{^pg_upgrade_output\.d(/|$)};
		if ($rel =~ m{/$}) { $snap{$rel} = 'dir' }
		elsif (-f "$dir/$rel") { $snap{$rel} = Digest::SHA->new(256)->addfile("$dir/$rel")->hexdigest }
	}
	return \%snap;
}

1;
