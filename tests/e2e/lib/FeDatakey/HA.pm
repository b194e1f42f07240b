# FeDatakey::HA - the real services of the HA and backup tests, on
# 127.0.0.1 with ports chosen at run time: an etcd 3.4 cluster, Patroni 4.0
# nodes running the patched PostgreSQL of build/pg, a writer that inserts
# rows while nodes fail, and the checks that compare nodes.
#
#   use FeDatakey::HA;
#   my $etcd = FeDatakey::HA::Etcd->start($dir, 3);
#   my $node = FeDatakey::HA::Patroni->new($dir, 'node1', $etcd, env => {...},
#       dcs => {...}, initdb => [...]);
#   $node->start;
#
# Every process started here (etcd, patroni, the postmasters patroni starts,
# the writer) is stopped by stop_all, which an END block runs on any exit.
package FeDatakey::HA;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use FeDatakey::Files qw(write_file);
use FeDatakey::Run qw(run_command pg_bin_dir);
# Its ports come from upstream's get_free_port, as the nodes' do.
use FeDatakey::Upstream;
use PostgreSQL::Test::Cluster ();
use PostgreSQL::Test::Utils qw(slurp_file);
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(wait_until to_yaml stop_all sql sql_ok table_digest dcs_config post_init_script start_fleet);

my $owner = $$;
my @stoppers;    # code refs, run last-in first-out by stop_all

sub at_exit { push @stoppers, $_[0] }

sub stop_all
{
	while (my $s = pop @stoppers) { eval { $s->(); 1 } or warn "cleanup: $@" }
}

# A test killed by a signal (a CI timeout, ^C) stops its services too: the
# handler turns the signal into an exit, which runs the END block.
$SIG{$_} = sub { exit 128 + 15 } for qw(INT TERM HUP);

END
{
	my $status = $?;
	stop_all() if $$ == $owner;
	$? = $status;
}

# Polls $cond every $step seconds until it returns true (returns that value)
# or $timeout seconds pass (returns undef).
sub wait_until
{
	my ($cond, $timeout, $step) = @_;
	$step //= 0.25;
	my $deadline = time + $timeout;
	my $n = int($timeout / $step) + 2;
	for (1 .. $n)
	{
		my $v = $cond->();
		return $v if $v;
		last if time > $deadline;
		sleep $step;
	}
	return undef;
}

# True while $pid runs: a child of ours is reaped, and a zombie (a
# postmaster that init has not reaped yet) counts as gone.
sub alive
{
	my ($pid) = @_;
	return 0 unless $pid;
	my $w = waitpid($pid, POSIX::WNOHANG());
	return 0 if $w == $pid;
	return 0 unless kill 0, $pid;
	open my $fh, '<', "/proc/$pid/stat" or return 0;
	my $stat = <$fh> // '';
	return $stat !~ /^\d+ \(.*\) Z/s;
}

# SIGTERM (or $sig), then SIGKILL after $grace seconds.
sub terminate
{
	my ($pid, $grace, $sig) = @_;
	return unless alive($pid);
	kill $sig // 'TERM', $pid;
	return if wait_until(sub { !alive($pid) }, $grace // 10, 0.1);
	kill 'KILL', $pid;
	wait_until(sub { !alive($pid) }, 5, 0.1);
}

# Starts @cmd in the background in a session of its own, its output
# appended to $log; returns the pid.
sub spawn
{
	my ($cmd, $log, $env) = @_;
	my $pid = fork // croak "fork: $!";
	if ($pid == 0)
	{
		POSIX::setsid();
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $log or POSIX::_exit(127);
		open STDERR, '>&', \*STDOUT;
		while (my ($k, $v) = each %{ $env // {} })
		{
			if (defined $v) { $ENV{$k} = $v } else { delete $ENV{$k} }
		}
		exec @$cmd or POSIX::_exit(127);
	}
	return $pid;
}

# A YAML document for a nested structure of hashes, arrays and scalars:
# keys sorted, strings double-quoted (JSON escapes are YAML escapes),
# numbers and booleans bare.
sub to_yaml
{
	my ($data, $indent) = @_;
	$indent //= 0;
	my $pad = ' ' x $indent;
	my $scalar = sub {
		my ($v) = @_;
		return 'null' unless defined $v;
		return $$v ? 'true' : 'false' if ref $v eq 'SCALAR';
		return $v if $v =~ /^-?[0-9]+$/;
		return JSON::PP->new->allow_nonref->ascii->encode("$v");
	};
	my $out = '';
	if (ref $data eq 'HASH')
	{
		for my $k (sort keys %$data)
		{
			my $v = $data->{$k};
			if (ref $v eq 'HASH' || ref $v eq 'ARRAY')
			{
				my $empty = ref $v eq 'HASH' ? !%$v : !@$v;
				if ($empty) { $out .= "$pad$k: " . (ref $v eq 'HASH' ? '{}' : '[]') . "\n" }
				else { $out .= "$pad$k:\n" . to_yaml($v, $indent + 2) }
			}
			else { $out .= "$pad$k: " . $scalar->($v) . "\n" }
		}
	}
	elsif (ref $data eq 'ARRAY')
	{
		for my $v (@$data)
		{
			if (ref $v eq 'HASH')
			{
				my $y = to_yaml($v, $indent + 2);
				$y =~ s/^ {$indent}  /$pad- /;
				$out .= $y;
			}
			else { $out .= "$pad- " . $scalar->($v) . "\n" }
		}
	}
	return $out;
}

# The DCS part of the bootstrap configuration the tests use (and
# docs/ha-and-backup.md shows): short timings for a test, synchronous
# replication so that a failover loses no committed row, pg_rewind.  Not the
# unwrap command: Patroni (3.0 and 4.0) drops parameters it does not know
# from the postgresql.conf it writes (see post_init_script).
sub dcs_config
{
	return {
		ttl => 20,
		loop_wait => 2,
		retry_timeout => 3,
		synchronous_mode => \1,
		synchronous_node_count => 2,
		postgresql => {
			use_pg_rewind => \1,
			use_slots => \1,
			parameters => {
				wal_level => 'replica',
				wal_log_hints => 'on',
				hot_standby => 'on',
				max_wal_senders => 10,
				max_replication_slots => 10,
				wal_keep_size => '64MB',
			},
		},
	};
}

# A bootstrap.post_init script that sets the unwrap command in
# postgresql.auto.conf with ALTER SYSTEM: Patroni leaves that file alone,
# pg_basebackup copies it to every replica, the server reads it last, and
# pg_datakey reads and rewrites it.
sub post_init_script
{
	my ($dir, $unwrap) = @_;
	(my $q = $unwrap) =~ s/'/''/g;
	write_file("$dir/post_init.sql", "ALTER SYSTEM SET data_encryption_key_unwrap_command = '$q';\n", 0600);
	return write_file("$dir/post_init.sh",
		"#!/bin/sh\n# Patroni passes a connection string to the new cluster.\n"
		  . "exec psql -X -q -v ON_ERROR_STOP=1 -d \"\$1\" -f '$dir/post_init.sql'\n", 0700);
}

# Three Patroni nodes on $etcd with the key commands in their environment;
# node1 bootstraps with initdb --data-encryption, the others are made by
# pg_basebackup.  Returns the nodes once node1 leads and both others
# replicate, or dies with the end of their logs.
sub start_fleet
{
	my ($dir, $etcd, $wrap, $unwrap, $count) = @_;
	my @nodes = map {
		FeDatakey::HA::Patroni->new($dir, "node$_", $etcd,
			env => { PGDATAKEYWRAPCMD => $wrap, PGDATAKEYUNWRAPCMD => $unwrap },
			dcs => dcs_config(),
			post_init => post_init_script($dir, $unwrap),
			initdb => [ 'data-encryption', { encoding => 'UTF8' }, { locale => 'C' } ])
	} 1 .. ($count // 3);
	my $logs = sub { join '', map { $_->name . ":\n" . $_->log_tail(25) } @nodes };
	$nodes[0]->start;
	wait_until(sub { $nodes[0]->is_leader }, 90) or croak "node1 did not bootstrap:\n" . $logs->();
	my $auto = $nodes[0]->data_dir . '/postgresql.auto.conf';
	wait_until(sub { -e $auto && slurp_file($auto) =~ /^data_encryption_key_unwrap_command = /m }, 30)
	  or croak "post_init did not set the unwrap command:\n" . $logs->();
	$_->start for @nodes[ 1 .. $#nodes ];
	wait_until(sub { !grep { !$_->is_replica } @nodes[ 1 .. $#nodes ] }, 120)
	  or croak "the replicas did not start:\n" . $logs->();
	wait_until(sub { scalar($nodes[0]->sync_standbys) == $#nodes }, 60)
	  or croak "the replicas did not become synchronous:\n" . $logs->();
	return @nodes;
}

# --- SQL over TCP ---------------------------------------------------------------

# sql($port, $sql, %opts) -> ($rc, $out, $err); user postgres, 127.0.0.1.
sub sql
{
	my ($port, $q, %opts) = @_;
	my ($rc, $out, $err) = run_command(
		[ 'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', $port,
			'-U', $opts{user} // 'postgres', '-d', $opts{dbname} // 'postgres', '-c', $q ],
		timeout => $opts{timeout} // 30,
		env => { PGCONNECT_TIMEOUT => 3 });
	chomp $out;
	return ($rc, $out, $err);
}

sub sql_ok
{
	my ($port, $q, %opts) = @_;
	my ($rc, $out, $err) = sql($port, $q, %opts);
	croak "psql on port $port failed ($rc): $q\n$err" if $rc != 0;
	return $out;
}

# "count|md5" of a table ordered by its first column: equal on two nodes
# only when they hold the same rows.
sub table_digest
{
	my ($port, $table) = @_;
	my ($rc, $out) =
	  sql($port, "SELECT count(*) || '|' || coalesce(md5(string_agg(t::text, ',' ORDER BY t)), '') FROM $table t");
	return $rc == 0 ? $out : undef;
}

# --- etcd ------------------------------------------------------------------------

package FeDatakey::HA::Etcd;

use Carp;
use FeDatakey::Run qw(run_command);
use PostgreSQL::Test::Utils qw(slurp_file);

# start($dir, $members): an etcd cluster of $members members, each with its
# own data directory and client and peer ports; returns when it is healthy.
sub start
{
	my ($class, $dir, $members) = @_;
	my $self = bless { members => [] }, $class;
	my @m = map {
		+{ name => "etcd$_", client => PostgreSQL::Test::Cluster::get_free_port(),
			peer => PostgreSQL::Test::Cluster::get_free_port() }
	} 1 .. $members;
	my $initial = join ',', map { "$_->{name}=http://127.0.0.1:$_->{peer}" } @m;
	for my $m (@m)
	{
		my $cmd = [
			'etcd', '--name', $m->{name}, '--data-dir', "$dir/$m->{name}",
			'--listen-client-urls', "http://127.0.0.1:$m->{client}",
			'--advertise-client-urls', "http://127.0.0.1:$m->{client}",
			'--listen-peer-urls', "http://127.0.0.1:$m->{peer}",
			'--initial-advertise-peer-urls', "http://127.0.0.1:$m->{peer}",
			'--initial-cluster', $initial, '--initial-cluster-state', 'new',
			'--initial-cluster-token', "fe_datakey_$$", '--logger', 'zap', '--log-outputs', 'stderr',
			'--heartbeat-interval', '100', '--election-timeout', '1000'
		];
		$m->{log} = "$dir/$m->{name}.log";
		$m->{pid} = FeDatakey::HA::spawn($cmd, $m->{log});
		my $pid = $m->{pid};
		FeDatakey::HA::at_exit(sub { FeDatakey::HA::terminate($pid, 5) });
		push @{ $self->{members} }, $m;
	}
	my $ok = FeDatakey::HA::wait_until(
		sub {
			my ($rc) = run_command([ 'etcdctl', '--endpoints', $self->endpoints, 'endpoint', 'health' ],
				env => { ETCDCTL_API => 3 }, timeout => 10);
			return $rc == 0;
		},
		30, 0.5);
	croak "etcd did not become healthy:\n" . join('', map { slurp_file($_->{log}) } @m)
	  unless $ok;
	return $self;
}

sub endpoints { join ',', map { "http://127.0.0.1:$_->{client}" } @{ $_[0]{members} } }
sub hosts { join ',', map { "127.0.0.1:$_->{client}" } @{ $_[0]{members} } }

# --- Patroni ---------------------------------------------------------------------

package FeDatakey::HA::Patroni;

use Carp;
use FeDatakey::Files qw(write_file);
use FeDatakey::Run qw(run_command pg_bin_dir);
use PostgreSQL::Test::Utils qw(slurp_file);
use HTTP::Tiny;
use JSON::PP;

# new($dir, $name, $etcd, env => {...}, dcs => {...}, initdb => [...],
#     post_init => SCRIPT, parameters => {...}): a Patroni node whose files live in $dir/$name.
sub new
{
	my ($class, $dir, $name, $etcd, %o) = @_;
	my $home = "$dir/$name";
	mkdir $home, 0700;
	my $self = bless {
		name => $name,
		home => $home,
		# A socket path must be short: not under the test's directory.
		sock => PostgreSQL::Test::Utils::tempdir_short(),
		data => "$home/data",
		pgport => PostgreSQL::Test::Cluster::get_free_port(),
		apiport => PostgreSQL::Test::Cluster::get_free_port(),
		log => "$home/patroni.log",
		config => "$home/patroni.yml",
		env => $o{env} // {},
		etcd => $etcd,
		o => \%o,
	}, $class;
	$self->write_config;
	return $self;
}

sub name { $_[0]{name} }
sub data_dir { $_[0]{data} }
sub port { $_[0]{pgport} }
sub config_file { $_[0]{config} }
sub log_file { $_[0]{log} }

# The Patroni configuration, as YAML; what docs/ha-and-backup.md shows.
sub config_hash
{
	my ($self) = @_;
	my $o = $self->{o};
	return {
		scope => $o->{scope} // 'fe_datakey',
		name => $self->{name},
		restapi => {
			listen => "127.0.0.1:$self->{apiport}",
			connect_address => "127.0.0.1:$self->{apiport}",
		},
		etcd3 => { hosts => $self->{etcd}->hosts },
		bootstrap => {
			($o->{post_init} ? (post_init => $o->{post_init}) : ()),
			dcs => $o->{dcs} // {},
			initdb => $o->{initdb} // [],
			pg_hba => [
				'local all all trust',
				'host all all 127.0.0.1/32 trust',
				'host replication all 127.0.0.1/32 trust',
			],
		},
		postgresql => {
			listen => "127.0.0.1:$self->{pgport}",
			connect_address => "127.0.0.1:$self->{pgport}",
			data_dir => $self->{data},
			bin_dir => pg_bin_dir(),
			pgpass => "$self->{home}/pgpass",
			authentication => {
				superuser => { username => 'postgres' },
				replication => { username => 'replicator' },
			},
			parameters => { unix_socket_directories => $self->{sock}, %{ $o->{parameters} // {} } },
			pg_hba => [
				'local all all trust',
				'host all all 127.0.0.1/32 trust',
				'host replication all 127.0.0.1/32 trust',
			],
		},
		log => { level => 'INFO' },
	};
}

sub write_config
{
	my ($self) = @_;
	write_file($self->{config}, FeDatakey::HA::to_yaml($self->config_hash), 0600);
}

# Starts the patroni daemon with the node's environment (set_env changes it
# for the next start).
sub start
{
	my ($self) = @_;
	croak "$self->{name} already runs" if FeDatakey::HA::alive($self->{pid});
	$self->{pid} = FeDatakey::HA::spawn([ 'patroni', $self->{config} ], $self->{log}, $self->{env});
	unless ($self->{guarded}++)
	{
		FeDatakey::HA::at_exit(sub { $self->stop(quiet => 1) });
	}
	return $self;
}

sub set_env { my ($self, %env) = @_; $self->{env} = { %{ $self->{env} }, %env } }

# The postmaster's pid from postmaster.pid, if that process is alive.
sub postmaster_pid
{
	my ($self) = @_;
	my $f = "$self->{data}/postmaster.pid";
	return undef unless -f $f;
	my ($pid) = (eval { slurp_file($f) } // '') =~ /^(\d+)/;
	return FeDatakey::HA::alive($pid) ? $pid : undef;
}

# Stops patroni (which stops its postgres), then anything left over.
sub stop
{
	my ($self, %o) = @_;
	FeDatakey::HA::terminate($self->{pid}, 20) if $self->{pid};
	my $pm = $self->postmaster_pid;
	FeDatakey::HA::terminate($pm, 10, 'QUIT') if $pm;
	delete $self->{pid};
}

# A crash of the host: SIGKILL to patroni and to the postmaster.
sub crash
{
	my ($self) = @_;
	my $pm = $self->postmaster_pid;
	kill 'KILL', $self->{pid} if $self->{pid};
	kill 'KILL', $pm if $pm;
	FeDatakey::HA::wait_until(sub { !FeDatakey::HA::alive($self->{pid}) && !FeDatakey::HA::alive($pm) }, 10, 0.1);
	delete $self->{pid};
	return $pm;
}

sub running { FeDatakey::HA::alive($_[0]{pid}) }

# GET /patroni of the REST API, decoded; undef when it does not answer.
sub status
{
	my ($self) = @_;
	my $r = HTTP::Tiny->new(timeout => 3)->get("http://127.0.0.1:$self->{apiport}/patroni");
	return undef unless $r->{status} == 200 || $r->{status} == 503;
	return eval { decode_json($r->{content}) };
}

sub role
{
	my $s = $_[0]->status or return '';
	return ($s->{role} // '') . '/' . ($s->{state} // '');
}

# The names of the members that GET /cluster shows as synchronous standbys.
sub sync_standbys
{
	my ($self) = @_;
	my $r = HTTP::Tiny->new(timeout => 3)->get("http://127.0.0.1:$self->{apiport}/cluster");
	return () unless $r->{status} == 200;
	my $c = eval { decode_json($r->{content}) } or return ();
	return map { $_->{name} } grep { ($_->{role} // '') eq 'sync_standby' } @{ $c->{members} // [] };
}

# Patroni 4 calls the leader's role primary; 3.0 called it master.
sub is_leader { $_[0]->role =~ m{^(?:primary|master)/running$} }
sub is_replica { $_[0]->role eq 'replica/running' }

# POST to the REST API with a JSON body: ($status, $content).
sub post
{
	my ($self, $path, $body) = @_;
	my $r = HTTP::Tiny->new(timeout => 30)->post("http://127.0.0.1:$self->{apiport}$path",
		{ content => encode_json($body // {}), headers => { 'Content-Type' => 'application/json' } });
	return ($r->{status}, $r->{content});
}

# The last $n lines of the Patroni log.
sub log_tail
{
	my ($self, $n) = @_;
	my @l = split /^/m, (eval { slurp_file($self->{log}) } // '');
	splice @l, 0, @l - ($n // 30) if @l > ($n // 30);
	return join '', @l;
}

# --- a writer --------------------------------------------------------------------

package FeDatakey::HA::Writer;

use Carp;
use FeDatakey::Files ();
use FeDatakey::Run ();
use PostgreSQL::Test::Utils qw(slurp_file);

# start($dir, \@ports, $table): a child process that inserts one row at a
# time into $table (id, note) through a multi-host connection to the
# read-write node among @ports, and appends each id the server acknowledged
# to $dir/acked. It stops when stop is called, or after $max seconds.
sub start
{
	my ($class, $dir, $ports, $table, $max) = @_;
	my $self = bless { acked => "$dir/acked", stopfile => "$dir/writer.stop" }, $class;
	unlink $self->{acked}, $self->{stopfile};
	my $hosts = join ',', map { '127.0.0.1' } @$ports;
	my $plist = join ',', @$ports;
	my $conn = "host=$hosts port=$plist user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=2";
	my $pid = fork // croak "fork: $!";
	if ($pid == 0)
	{
		my $deadline = time + ($max // 120);
		open my $ack, '>>', $self->{acked} or POSIX::_exit(1);
		$ack->autoflush(1);
		my $id = 0;
		while (!-e $self->{stopfile} && time < $deadline)
		{
			$id++;
			my ($rc) = FeDatakey::Run::run_command(
				[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $conn, '-c',
					"INSERT INTO $table VALUES ($id, 'writer')" ],
				timeout => 10);
			if ($rc == 0) { print $ack "$id\n" }
			else { select undef, undef, undef, 0.2 }
		}
		POSIX::_exit(0);
	}
	$self->{pid} = $pid;
	FeDatakey::HA::at_exit(sub { $self->stop });
	return $self;
}

# Stops the writer; returns the acknowledged ids.
sub stop
{
	my ($self) = @_;
	if ($self->{pid})
	{
		FeDatakey::Files::write_file($self->{stopfile}, '');
		FeDatakey::HA::wait_until(sub { waitpid($self->{pid}, POSIX::WNOHANG()) != 0 }, 20, 0.1)
		  or do { kill 'KILL', $self->{pid}; waitpid($self->{pid}, 0) };
		delete $self->{pid};
	}
	return $self->acked;
}

sub acked
{
	my ($self) = @_;
	return () unless -e $self->{acked};
	return grep { length } split /\n/, slurp_file($self->{acked});
}

1;
