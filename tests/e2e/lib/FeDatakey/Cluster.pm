# FeDatakey::Cluster - PostgreSQL::Test::Cluster of the version under test
# (through FeDatakey::Upstream), with what is ours: an encrypted initdb with
# the key commands, initdb run by hand for the tests of initdb itself, the
# pg_upgrade command line for two nodes, a standby made by pg_basebackup,
# postgres -C, a start with extra server options, and snapshots of a data
# directory to prove that a refused run changed nothing.  Everything else is upstream's: start, stop, safe_psql,
# poll_query_until, promote, logfile, connstr, host, port, data_dir.  It
# exports key_commands (FeDatakey::KeyCommands's, its files in base_dir).
#
#   use FeDatakey::Cluster;
#   my ($wrap, $unwrap) = key_commands('name');
#   my $node = FeDatakey::Cluster->new('primary');
#   $node->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
#   my $old = FeDatakey::Cluster->new('old', install_path => '/path/to/pg-15');
#   my ($rc, $out, $err) = FeDatakey::Cluster->new('by_hand')->initdb('-y', ...);
#
# A node made with install_path => DIR runs DIR/bin's programs, so that
# clusters of several versions live side by side.
package FeDatakey::Cluster;

use strict;
use warnings;

use Digest::SHA;
use Exporter 'import';
use FeDatakey::Upstream;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils ();
use FeDatakey::Files ();
use FeDatakey::KeyCommands ();
use FeDatakey::Run ();

our @ISA = ('PostgreSQL::Test::Cluster');
our @EXPORT = qw(key_commands pg_upgrade_command);

# The passphrase files live here; it is removed with the test's other
# directories.
my $base;

sub base_dir { return $base //= PostgreSQL::Test::Utils::tempdir() }

# FeDatakey::KeyCommands's key_commands, its passphrase file in base_dir.
sub key_commands
{
	my ($name, $passphrase) = @_;
	return FeDatakey::KeyCommands::key_commands($name, $passphrase, base_dir());
}

# pg_upgrade from $old to $new (each node's own programs, the new one's
# pg_upgrade), its socket directory the nodes' own, then @extra.
sub pg_upgrade_command
{
	my ($old, $new, @extra) = @_;
	return [
		$new->bin_dir . '/pg_upgrade', '-b', $old->bin_dir, '-B', $new->bin_dir,
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-p', $old->port, '-P', $new->port, '-s', $new->host, @extra
	];
}

# The directory of this node's programs.
sub bin_dir
{
	my ($self) = @_;
	my $inst = $self->install_path;
	return defined $inst ? "$inst/bin" : FeDatakey::Run::pg_bin_dir();
}

# init(encrypted => 0|1, wrap => CMD, unwrap => CMD, copy_key_from => FILE,
#      any of upstream's init parameters)
# Streaming is allowed unless the caller says otherwise: upstream then sets
# wal_log_hints = on, which pg_rewind needs.  WAL is kept for standbys made
# from a backup, and the key's LOG lines are logged.
sub init
{
	my ($self, %params) = @_;
	my @extra = ('--locale=C', '-E', 'UTF8', @{ delete $params{extra} // [] });
	if (delete $params{encrypted})
	{
		push @extra, '-y', "--key-wrap-command=$params{wrap}", "--key-unwrap-command=$params{unwrap}";
		push @extra, "--copy-key-from=$params{copy_key_from}" if $params{copy_key_from};
	}
	delete @params{qw(wrap unwrap copy_key_from)};
	$params{allows_streaming} //= 1;
	$self->SUPER::init(%params, extra => \@extra);
	$self->append_conf('postgresql.conf', "wal_keep_size = 320MB\nlog_min_messages = info");
	return $self;
}

# The argv of initdb for this node's data directory as the tests of initdb
# run it: -A trust -N --no-instructions, then @args.
sub initdb_command
{
	my ($self, @args) = @_;
	return [ $self->bin_dir . '/initdb', '-D', $self->data_dir, '-A', 'trust', '-N', '--no-instructions',
		@args ];
}

# initdb(@args [, { run_command options }]) -> ($rc, $stdout, $stderr), or
# in scalar context whether it succeeded: initdb_command run by hand, for a
# test that reads what initdb says.  When it succeeds the node gets the
# server settings of init (configure_server), so that start and psql work.
sub initdb
{
	my ($self, @args) = @_;
	my %opts = ref $args[-1] eq 'HASH' ? %{ pop @args } : ();
	my @r = FeDatakey::Run::run_command($self->initdb_command(@args), %opts);
	if ($r[0] == 0) { $self->configure_server }
	else { print "# initdb failed (status $r[0]):\n$r[2]" }
	return wantarray ? @r : $r[0] == 0;
}

# The settings upstream's init gives a node to run: its port and socket
# directory, no TCP, the log line prefix.  Written to the node's
# postgresql.conf, or to the one in $pgdata (a data directory of this node
# that is not data_dir, for a test of odd paths).
sub configure_server
{
	my ($self, $pgdata) = @_;
	my $settings =
	    "\n# Added by FeDatakey::Cluster\nport = "
	  . $self->port
	  . "\nunix_socket_directories = '"
	  . $self->host
	  . "'\nlisten_addresses = ''\nlog_line_prefix = '%m [%p] %q%a '";
	if (defined $pgdata) { PostgreSQL::Test::Utils::append_to_file("$pgdata/postgresql.conf", "$settings\n") }
	else { $self->append_conf('postgresql.conf', $settings) }
	return $self;
}

# pg_ctl start with extra postgres options ($options, one string for
# pg_ctl -o), which upstream's start does not take; true when the server
# started.
sub start_with_options
{
	my ($self, $options) = @_;
	my $ok = PostgreSQL::Test::Utils::system_log($self->bin_dir . '/pg_ctl', '-w', '-D', $self->data_dir,
		'-l', $self->logfile, '-o', $options, 'start') == 0;
	$self->_update_pid($ok ? 1 : -1);
	return $ok;
}

# postgres -C $setting of this node's data directory -> ($rc, the value
# without its newline, $stderr).  %opts: run_command's.
sub postgres_C
{
	my ($self, $setting, %opts) = @_;
	my ($rc, $out, $err) =
	  FeDatakey::Run::run_command([ $self->bin_dir . '/postgres', '-D', $self->data_dir, '-C', $setting ],
		%opts);
	chomp $out;
	return ($rc, $out, $err);
}

# pg_basebackup of this running node (with @options, e.g. -R for a standby)
# into a new node of the same installation.  It writes straight into the
# node's data directory, so that the files are as pg_basebackup made them,
# modes included (init_from_backup copies them); then the node gets its own
# port and socket directory, as init_from_backup gives it.
sub basebackup
{
	my ($self, $name, @options) = @_;
	my $node = ref($self)->new($name, install_path => $self->install_path);
	PostgreSQL::Test::Utils::system_or_bail($self->bin_dir . '/pg_basebackup',
		'-D', $node->data_dir, '-h', $self->host, '-p', $self->port,
		'--checkpoint', 'fast', '--no-sync', @options);
	$node->append_conf('postgresql.conf',
		'port = ' . $node->port . "\nunix_socket_directories = '" . $node->host . "'");
	return $node;
}

# Every file and directory below the data directory, files with their
# SHA-256, except what pg_upgrade writes for its own logs.
sub snapshot
{
	my ($self) = @_;
	my $dir = $self->data_dir;
	my %snap;
	for my $rel (FeDatakey::Files::list_tree($dir))
	{
		next if $rel =~ m{^pg_upgrade_output\.d(/|$)};
		if ($rel =~ m{/$}) { $snap{$rel} = 'dir' }
		elsif (-f "$dir/$rel") { $snap{$rel} = Digest::SHA->new(256)->addfile("$dir/$rel")->hexdigest }
	}
	return \%snap;
}

1;
