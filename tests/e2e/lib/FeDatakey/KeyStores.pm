# Helpers for the key-store tests (tests/e2e/6xx_keystore_*.pl): stores
# made from the key-store recipes of docs/key-stores.md (read by
# FeDatakey::Recipes), services started and always stopped, a socket that
# accepts and never answers, and the checks every store must pass
# (run_store_checks).
#
# The stores and services stand alone, for bench/keystore-cost too, which
# runs outside PostgreSQL's test framework (PostgreSQL::Test::Utils takes
# over a program's standard output when it loads).  run_store_checks makes
# FeDatakey::Cluster nodes: a test that calls it loads FeDatakey::Cluster
# first, and then the services' ports come from upstream's get_free_port
# too, so that they never meet a node's.
#
#   use FeDatakey::Cluster;
#   use FeDatakey::KeyStores;
#   my $tang = tang_store($dir, 'tang');
#   my $svc  = start_service('tang', [ 'socat', ... ], port => $port);
#   stop_service($svc);
package FeDatakey::KeyStores;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use IO::Socket::INET;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use FeDatakey::Files qw(write_file file_mode list_tree files_containing);
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap unwrap_key_bytes);
use FeDatakey::Recipes;
use FeDatakey::Run qw(run_command command_stdout);

our @EXPORT = qw(
  start_service stop_service wait_port service_port free_port_pair silent_listener
  tree_digest run_store_checks softhsm_token tls_certificates
  kmip_store tang_store tpm2_store aws_kms_store
);

# --- services -----------------------------------------------------------------------

# Every service started, stopped at exit whatever happens. A service runs in
# a process group of its own, so that what it forks (socat's tangd
# children) is stopped with it.
my @services;

END
{
	local ($?, $@);
	stop_service($_) for reverse @services;
}
$SIG{$_} = sub { exit 1 } for qw(INT TERM HUP);

# start_service($name, \@argv, %opts) -> a service handle.
#   opts: log => file for its stdout and stderr (default: none kept),
#         port => a TCP port on 127.0.0.1 to wait for (then returns once
#         something accepts there, or dies after `wait` seconds, default 60),
#         env => { NAME => value },
#         grace => seconds between TERM and KILL when stopped (default 10).
sub start_service
{
	my ($name, $argv, %opts) = @_;
	my $log = $opts{log} // '/dev/null';
	my $pid = fork // croak "fork: $!";
	if ($pid == 0)
	{
		POSIX::setsid();
		$ENV{$_} = $opts{env}{$_} for keys %{ $opts{env} // {} };
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $log or POSIX::_exit(126);
		open STDERR, '>&', \*STDOUT;
		exec @$argv or POSIX::_exit(127);
	}
	my $svc = { name => $name, pid => $pid, argv => $argv, opts => \%opts };
	push @services, $svc;
	if ($opts{port})
	{
		unless (wait_port($opts{port}, $opts{wait} // 60, $pid))
		{
			my $out = $opts{log} && -e $opts{log} ? _read($opts{log}) : '';
			stop_service($svc);
			croak "$name did not listen on 127.0.0.1:$opts{port}\n$out";
		}
	}
	return $svc;
}

# Stops a service and what it forked (TERM, then KILL after its grace).
sub stop_service
{
	my ($svc) = @_;
	return unless $svc && $svc->{pid};
	my $pid = delete $svc->{pid};
	kill 'TERM', -$pid;
	my $deadline = time + ($svc->{opts}{grace} // 10);
	while (time < $deadline)
	{
		last if waitpid($pid, POSIX::WNOHANG()) == $pid;
		sleep 0.05;
	}
	if (kill 0, $pid)
	{
		kill 'KILL', -$pid;
		waitpid($pid, 0);
	}
	kill 'KILL', -$pid;    # anything left in its group
	return;
}

# True once something accepts on 127.0.0.1:$port (false after $timeout
# seconds, or as soon as process $pid has exited).
sub wait_port
{
	my ($port, $timeout, $pid) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 1);
		if ($s) { close $s; return 1 }
		return 0 if $pid && waitpid($pid, POSIX::WNOHANG()) == $pid;
		sleep 0.1;
	}
	return 0;
}

# A free TCP port of 127.0.0.1 for a service: in a test, upstream's
# get_free_port (which reserves it for the test, as it does the nodes');
# outside the framework (the benchmark), one the kernel picks.
sub service_port
{
	return PostgreSQL::Test::Cluster::get_free_port() if defined &PostgreSQL::Test::Cluster::get_free_port;
	my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1)
	  or croak "could not open a socket: $!";
	my $port = $sock->sockport;
	close $sock;
	return $port;
}

# Two free consecutive ports P, P+1 (swtpm's server and control ports).
sub free_port_pair
{
	for (1 .. 50)
	{
		my $p = service_port();
		next if $p >= 65535;
		# get_free_port hands out ports in order and reserves each one: take
		# the next one too.  The kernel's pick: P+1 must be free.
		if (defined &PostgreSQL::Test::Cluster::get_free_port) { return $p if service_port() == $p + 1 }
		elsif (_can_listen($p + 1)) { return $p }
	}
	croak "no two consecutive free ports";
}

sub _can_listen
{
	my ($port) = @_;
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp', Listen => 1)
	  or return 0;
	close $s;
	return 1;
}

# The contents of a file (upstream's slurp_file, which the benchmark cannot
# load).
sub _read
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or croak "could not read $path: $!";
	local $/;
	return scalar(<$fh>) // '';
}

# A socket listening on 127.0.0.1:$port that never accepts: the kernel
# completes the TCP handshake and takes what the client sends, and no answer
# ever comes. Closed when the returned handle goes.
sub silent_listener
{
	my ($port) = @_;
	my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp',
		Listen => 16, ReuseAddr => 1) or croak "could not listen on 127.0.0.1:$port: $!";
	return $sock;
}

# --- stores made from the recipes ------------------------------------------------

# A SoftHSM2 token made by the recipe's PKCS#11 setup lines, with its paths
# moved under $dir/$name: returns { wrap, unwrap, map, setup, dir }.
sub softhsm_token
{
	my ($dir, $name, $pin) = @_;
	my $text = recipe_section('PKCS#11: a key pair in an HSM (SoftHSM2 here)');
	my $setup = recipe_block($text, 0);
	my $commands = recipe_block($text, 1);
	mkdir "$dir/$name" or croak "mkdir $dir/$name: $!";
	my $map = {
		'/etc/postgresql/' => "$dir/$name/",
		'/var/lib/postgresql/softhsm' => "$dir/$name/tokens",
	};
	write_file("$dir/$name/hsm.pin", "$pin\n", 0600);
	write_file("$dir/$name/hsm.so-pin", "so-$pin\n", 0600);
	write_file("$dir/$name/hsm.wrong-pin", "not-$pin\n", 0600);
	# The install lines make the PIN files that the user then fills: done
	# above, with the PINs in them.
	my $script = join "\n", grep { !m{^install -m 600 /dev/null } } split /\n/, fill_placeholders($setup, $map);
	my ($rc, $out, $err) = run_command([ 'bash', '-e', '-o', 'pipefail', '-c', $script ]);
	croak "the recipe's PKCS#11 setup failed for $name: $err" if $rc != 0;
	my ($wrap, $unwrap) = map { fill_placeholders(quoted_after($commands, "export $_"), $map) }
	  qw(PGDATAKEYWRAPCMD PGDATAKEYUNWRAPCMD);
	return { wrap => $wrap, unwrap => $unwrap, map => $map, setup => $setup, dir => "$dir/$name" };
}

# A PyKMIP server on a free port of 127.0.0.1 (certificates made here, in
# $dir/etc), and the recipe's KMIP setup run against it: the client's
# configuration $dir/etc/kmip.conf and a key. Returns { wrap, unwrap,
# key_id, etc, port, client, up, down } (up and down start and stop the
# server, on the same port and database).
sub kmip_store
{
	my ($dir) = @_;
	my $client = "$FeDatakey::Run::REPO/kmip-client/kmip-datakey";
	my $text = recipe_section('KMIP: a key server (PyKMIP here)');
	my $etc = "$dir/etc";
	mkdir $etc;
	tls_certificates($etc, [ 'server', '127.0.0.1', 'serverAuth' ], [ 'kmip-client', 'pg-datakey', 'clientAuth' ]);
	write_file("$etc/kmip-ca.pem", _read("$etc/ca.pem"));
	mkdir "$dir/kmip-policies";
	my $port = service_port();
	write_file("$dir/kmip-server.conf", <<"EOF");
[server]
hostname=127.0.0.1
port=$port
certificate_path=$etc/server.pem
key_path=$etc/server.key
ca_path=$etc/ca.pem
auth_suite=TLS1.2
policy_path=$dir/kmip-policies
enable_tls_client_auth=True
logging_level=INFO
database_path=$dir/kmip.db
EOF
	my $s = { etc => $etc, port => $port, client => $client, log => "$dir/kmip-server.log" };
	$s->{up} = sub {
		$s->{svc} = start_service('pykmip-server',
			[ 'pykmip-server', '-f', "$dir/kmip-server.conf", '-l', "$dir/kmip-server.log" ],
			port => $port, log => "$dir/kmip-server.out", grace => 2);    # its TERM handler can take 10 s
	};
	$s->{down} = sub { stop_service($s->{svc}) };
	$s->{up}->();

	my $map = {
		'/etc/postgresql/' => "$etc/",
		'kmip.example.com' => '127.0.0.1',
		'port=5696' => "port=$port",
		'kmip-datakey ' => "$client ",
	};
	my $setup = recipe_block($text, 0);
	$setup =~ m{^install -m 600 /dev/null /etc/postgresql/kmip-client\.key}m
	  or croak 'docs/key-stores.md: the KMIP setup no longer makes the client key file 0600 first';
	# The install line makes the file the user then fills: tls_certificates did.
	my $script = join "\n", grep { !m{^install -m 600 /dev/null } } split /\n/, fill_placeholders($setup, $map);
	my $out = command_stdout([ 'bash', '-e', '-o', 'pipefail', '-c', $script ]);
	($s->{key_id}) = $out =~ /^(\S+)\n\z/ or croak "the recipe's KMIP setup printed no key id: $out";
	@$s{qw(wrap unwrap)} =
	  map { fill_placeholders(quoted_after(recipe_block($text, 1), "export $_"), { %$map, KEY_ID => $s->{key_id} }) }
	  qw(PGDATAKEYWRAPCMD PGDATAKEYUNWRAPCMD);
	return $s;
}

# A Tang server (tangd run by socat for each connection) with its keys in
# $dir/$name, on a free port of 127.0.0.1, and the recipe's Tang commands
# for it (the thumbprint computed by the recipe's line). Returns { wrap,
# unwrap, port, db, up, down }.
sub tang_store
{
	my ($dir, $name) = @_;
	my $text = recipe_section('Tang: network-bound unwrap (Clevis)');
	my $db = "$dir/$name";
	mkdir $db or croak "mkdir $db: $!";
	command_stdout([ '/usr/libexec/tangd-keygen', $db ]);
	my $s = { db => $db, port => service_port() };
	$s->{up} = sub {
		$s->{svc} = start_service("tang $s->{db}",
			[ 'socat', "TCP-LISTEN:$s->{port},bind=127.0.0.1,reuseaddr,fork", "EXEC:/usr/libexec/tangd $s->{db}" ],
			port => $s->{port}, log => "$dir/$name.log");
	};
	$s->{down} = sub { stop_service($s->{svc}) };
	$s->{up}->();
	(my $line = recipe_block($text, 0)) =~ s/\s*#.*//s;
	my $thp = command_stdout([ 'bash', '-e', '-o', 'pipefail', '-c', fill_placeholders($line, { '/var/db/tang' => $db }) ]);
	chomp $thp;
	$thp =~ /^[\w-]{43}$/ or croak "the recipe's thumbprint line printed \"$thp\"";
	$s->{thp} = $thp;
	my $map = { 'http://tang.example.com:7500' => "http://127.0.0.1:$s->{port}", THUMBPRINT => $thp };
	@$s{qw(wrap unwrap)} = map { fill_placeholders(quoted_after(recipe_block($text, 1), "export $_"), $map) }
	  qw(PGDATAKEYWRAPCMD PGDATAKEYUNWRAPCMD);
	return $s;
}

# A software TPM (swtpm, its state in $dir/$name) on two free consecutive
# ports of 127.0.0.1, and the recipe's TPM 2.0 commands with the swtpm TCTI
# in place of the device. Returns { wrap, unwrap, port, up, down }.
sub tpm2_store
{
	my ($dir, $name) = @_;
	my $text = recipe_section('TPM 2.0: the key sealed to this machine\'s TPM (Clevis)');
	my $state = "$dir/$name";
	mkdir $state or croak "mkdir $state: $!";
	my $port = free_port_pair();
	my $s = { port => $port };
	# In the foreground, so that it is stopped with the test.
	$s->{up} = sub {
		$s->{svc} = start_service("swtpm $state",
			[ 'swtpm', 'socket', '--tpm2', '--tpmstate', "dir=$state",
				'--server', "type=tcp,port=$port,bindaddr=127.0.0.1",
				'--ctrl', 'type=tcp,port=' . ($port + 1) . ',bindaddr=127.0.0.1',
				'--flags', 'not-need-init,startup-clear' ],
			port => $port, log => "$state.log");
	};
	$s->{down} = sub { stop_service($s->{svc}) };
	$s->{up}->();
	my $map = { 'device:/dev/tpmrm0' => "swtpm:host=127.0.0.1,port=$port" };
	@$s{qw(wrap unwrap)} = map { fill_placeholders(quoted_after(recipe_block($text, 0), "export $_"), $map) }
	  qw(PGDATAKEYWRAPCMD PGDATAKEYUNWRAPCMD);
	return $s;
}

# An AWS KMS for the recipe: moto's server on a free port of 127.0.0.1,
# reached through socat on another (so that `down` makes the KMS unreachable
# and `up` brings it back with its keys: moto keeps them in memory only). moto
# checks credentials once its first three calls, which make the
# administrator, are done (INITIAL_NO_AUTH_ACTION_COUNT); the server's user
# "pg-datakey" may then call kms:Encrypt and kms:Decrypt, no more. The
# recipe's setup lines make two keys with the administrator's credentials,
# alias/pg-datakey-master-1 and -2. Debian's aws CLI (2.9) does not read
# AWS_ENDPOINT_URL: the commands get --endpoint-url, and the server's user's
# files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE under $dir/aws) in
# place of its ~/.aws. Returns { wrap, unwrap, rotate => [wrap, unwrap],
# key_id, key_id2, port, endpoint, aws => prefix of the commands, admin =>
# sub (aws arguments -> stdout), user => sub (name, \@actions ->
# credentials file of a new user), up, down }.
sub aws_kms_store
{
	my ($dir) = @_;
	my $text = recipe_section('AWS Key Management Service');
	# The CLI prefers AWS_* of its environment to its files: none of the
	# caller's may reach the store.
	delete $ENV{$_} for grep { /^AWS_/ } keys %ENV;
	my $moto_port = service_port();
	my $port = service_port();
	my $endpoint = "http://127.0.0.1:$port";
	my $s = { port => $port, endpoint => $endpoint };
	$s->{moto} = start_service('moto_server', [ 'moto_server', '-H', '127.0.0.1', '-p', $moto_port ],
		port => $moto_port, log => "$dir/moto.log", env => { INITIAL_NO_AUTH_ACTION_COUNT => 3 }, grace => 2);
	$s->{up} = sub {
		$s->{svc} = start_service('kms endpoint',
			[ 'socat', "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork", "TCP:127.0.0.1:$moto_port" ],
			port => $port, log => "$dir/kms-endpoint.log");
	};
	$s->{down} = sub { stop_service($s->{svc}) };
	$s->{up}->();

	# One directory of aws files per identity: config (the region) and
	# credentials (mode 0600).
	my $identity = sub {
		my ($name, $id, $secret) = @_;
		my $d = "$dir/$name";
		mkdir $d;
		write_file("$d/config", "[default]\nregion = us-east-1\n", 0600);
		write_file("$d/credentials", "[default]\naws_access_key_id = $id\naws_secret_access_key = $secret\n", 0600);
		return $d;
	};
	my $run_as = sub {
		my ($d, @argv) = @_;
		return command_stdout(\@argv,
			env => { AWS_CONFIG_FILE => "$d/config", AWS_SHARED_CREDENTIALS_FILE => "$d/credentials" },
			timeout => 120);
	};
	my $aws_as = sub { my ($d, @args) = @_; return $run_as->($d, 'aws', "--endpoint-url=$endpoint", @args) };
	my $policy = sub {
		my ($effect, @actions) = @_;
		return '{"Version":"2012-10-17","Statement":[{"Effect":"' . $effect . '","Action":['
		  . join(',', map { "\"$_\"" } @actions) . '],"Resource":"*"}]}';
	};
	# The three calls moto answers without credentials: the administrator.
	my $boot = $identity->('aws-bootstrap', 'bootstrap', 'bootstrap');
	$aws_as->($boot, qw(iam create-user --user-name admin));
	my ($aid, $asecret) = split ' ', $aws_as->($boot, qw(iam create-access-key --user-name admin --output text),
		'--query', 'AccessKey.[AccessKeyId,SecretAccessKey]');
	$aws_as->($boot, qw(iam put-user-policy --user-name admin --policy-name all --policy-document), $policy->('Allow', '*'));
	my $admin = $identity->('aws-admin', $aid, $asecret);
	$s->{admin} = sub { $aws_as->($admin, @_) };
	$s->{user} = sub {
		my ($name, @actions) = @_;
		$s->{admin}->(qw(iam create-user --user-name), $name);
		my ($id, $secret) = split ' ', $s->{admin}->(qw(iam create-access-key --output text --user-name), $name,
			'--query', 'AccessKey.[AccessKeyId,SecretAccessKey]');
		$s->{admin}->(qw(iam put-user-policy --policy-name kms --user-name), $name, '--policy-document',
			$policy->('Allow', @actions));
		return $identity->($name, $id, $secret) . '/credentials';
	};
	$s->{deny} = sub {
		my ($name, @actions) = @_;
		$s->{admin}->(qw(iam put-user-policy --policy-name deny --user-name), $name, '--policy-document',
			$policy->('Deny', @actions));
	};
	$s->{undeny} = sub { $s->{admin}->(qw(iam delete-user-policy --policy-name deny --user-name), $_[0]) };
	$s->{user}->('pg-datakey', 'kms:Encrypt', 'kms:Decrypt');

	# The recipe's setup: its first line prints the key id, the second one
	# names it.
	my @setup = grep { /\S/ } split /\n/, recipe_block($text, 0);
	@setup == 2 or croak 'docs/key-stores.md: the AWS setup is no longer two lines (create-key, create-alias)';
	my $cli = "aws --endpoint-url=$endpoint ";
	for my $n (1, 2)
	{
		my %alias = ('pg-datakey-master-1' => "pg-datakey-master-$n");
		(my $create = fill_placeholders($setup[0], { 'aws ' => $cli, %alias })) =~ s/\s+#.*//;
		my $id = $run_as->($admin, 'bash', '-e', '-o', 'pipefail', '-c', $create);
		chomp $id;
		$id =~ /^[0-9a-f-]{36}$/ or croak "the recipe's create-key line printed \"$id\"";
		$run_as->($admin, 'bash', '-e', '-o', 'pipefail', '-c',
			fill_placeholders($setup[1], { 'aws ' => $cli, %alias, KEY_ID => $id }));
		$s->{ $n == 1 ? 'key_id' : 'key_id2' } = $id;
	}

	# The server's user's files, then the CLI: what the commands run.
	$s->{aws} = "AWS_CONFIG_FILE=$dir/pg-datakey/config AWS_SHARED_CREDENTIALS_FILE=$dir/pg-datakey/credentials $cli";
	my $commands = recipe_block($text, 1);
	for my $n (1, 2)
	{
		my $map = { 'aws kms ' => "$s->{aws}kms ", 'pg-datakey-master-1' => "pg-datakey-master-$n" };
		my @c = map { fill_placeholders(quoted_after($commands, "export $_"), $map) } qw(PGDATAKEYWRAPCMD PGDATAKEYUNWRAPCMD);
		if ($n == 1) { @$s{qw(wrap unwrap)} = @c }
		else { $s->{rotate} = \@c }
	}
	return $s;
}

# A certificate authority (unless $dir has one) and certificates signed by
# it, in $dir: ca.pem, and for each [name, common name, extended key usage]
# NAME.pem and NAME.key (mode 0600), with 127.0.0.1 as subject alternative
# name.
sub tls_certificates
{
	my ($dir, @certs) = @_;
	my @days = ('-days', '2');
	-e "$dir/ca.key" or command_stdout([ 'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/ca.key",
		'-out', "$dir/ca.pem", @days, '-subj', '/CN=fe_datakey test CA',
		'-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign' ]);
	for my $c (@certs)
	{
		my ($name, $cn, $eku) = @$c;
		write_file("$dir/$name.ext", "extendedKeyUsage=$eku\nsubjectAltName=IP:127.0.0.1\n");
		command_stdout([ 'openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$dir/$name.key",
			'-out', "$dir/$name.csr", '-subj', "/CN=$cn" ]);
		chmod 0600, "$dir/$name.key";
		command_stdout([ 'openssl', 'x509', '-req', '-in', "$dir/$name.csr", '-CA', "$dir/ca.pem",
			'-CAkey', "$dir/ca.key", '-CAcreateserial', @days, '-out', "$dir/$name.pem",
			'-extfile', "$dir/$name.ext" ]);
	}
	return;
}

# --- the data directory ---------------------------------------------------------------

# Every path below $dir with its size, mode and content digest: equal
# digests mean nothing there changed.
sub tree_digest
{
	my ($dir) = @_;
	require Digest::SHA;
	my @lines;
	for my $rel (list_tree($dir))
	{
		my $path = "$dir/$rel";
		if (-d $path) { push @lines, "$rel " . file_mode($path); next }
		my $sha = Digest::SHA->new(256);
		$sha->addfile($path) if -f $path && -r $path;
		push @lines, join(' ', $rel, file_mode($path), -s $path, $sha->hexdigest);
	}
	return join("\n", @lines) . "\n";
}

# --- the checks every store passes -------------------------------------------------------

# The server log of $node from byte $from on ('' when there is none).
sub server_log
{
	my ($node, $from) = @_;
	return -e $node->logfile ? PostgreSQL::Test::Utils::slurp_file($node->logfile, $from // 0) : '';
}

sub datakey
{
	my (@args) = @_;
	my %opts = ref $args[-1] eq 'HASH' ? %{ pop @args } : ();
	return run_command([ 'pg_datakey', @args ], timeout => $opts{timeout} // 120);
}

# run_store_checks(%args): what the issue asks of every store.
#   name    => 'PKCS#11', dir => a directory of the test (a tempdir),
#   wrap, unwrap => the store's commands (the recipe's, filled in),
#   other   => [wrap, unwrap] of another store, for rewrap store -> other -> store,
#   rotate  => [wrap, unwrap] under a new master key in the same store,
#   down    => sub: stop the store; up => sub: start it again,
#   silent  => sub: make the store accept and never answer (returns a guard;
#              the store is back when the guard is gone and `up` ran),
#   wrong   => [ [ what, unwrap command, qr/stderr of pg_datakey verify/ ], ... ].
# Returns the cluster made with the store, the one rewrapped (two
# FeDatakey::Cluster nodes, "store" and "pass"), and the key.
sub run_store_checks
{
	my (%a) = @_;
	my ($name, $dir) = @a{qw(name dir)};
	croak 'run_store_checks: the test must use FeDatakey::Cluster' unless FeDatakey::Cluster->can('new');
	my $pass = passphrase_file($dir, 'datakey.pass', "passphrase for $name");

	# --- initdb -y with the store, server, a table ---
	my $node = FeDatakey::Cluster->new('store');
	my $pgdata = $node->data_dir;
	my ($rc, $out, $err) =
	  $node->initdb('-y', { env => { PGDATAKEYWRAPCMD => $a{wrap}, PGDATAKEYUNWRAPCMD => $a{unwrap} } });
	is($rc, 0, "$name: initdb -y wraps the new key with the store") or diag $err;
	($rc, $out) = $node->postgres_C('data_encryption_key_unwrap_command');
	is($out, $a{unwrap}, "$name: postgresql.conf names the store's unwrap command");
	ok($node->start(fail_ok => 1), "$name: the server starts, unwrapping the key from the store")
	  or diag server_log($node);
	like(server_log($node), qr/data encryption key loaded and verified/, "$name: the server verified the key");
	$node->safe_psql('postgres', "CREATE TABLE kept AS SELECT 'written with $name'::text AS v");
	is($node->safe_psql('postgres', 'SELECT v FROM kept'), "written with $name",
		"$name: a table is written and read back");
	my $key = unwrap_key_bytes($pgdata, $a{unwrap});
	is(length $key, 64, "$name: the store gives back a 64-byte key");

	# --- the store down ---
	$node->stop;
	$a{down}->();
	my $before = tree_digest($pgdata);
	my $mark = -s $node->logfile;
	ok(!$node->start(fail_ok => 1), "$name: with the store down the server does not start");
	like(server_log($node, $mark), qr/FATAL:  key unwrap command failed/,
		"$name: and its log says the unwrap command failed");
	is(tree_digest($pgdata), $before, "$name: nothing in the data directory changed");
	($rc, undef, $err) = datakey('verify', '-D', $pgdata);
	is($rc, 4, "$name: pg_datakey verify with the store down: a command failed (4)") or diag $err;
	$a{up}->();
	ok($node->start(fail_ok => 1), "$name: with the store back the server starts") or diag server_log($node, $mark);
	is($node->safe_psql('postgres', 'SELECT v FROM kept'), "written with $name", "$name: data intact");
	$node->stop;

	# --- wrong key objects, labels, PINs ---
	for my $w (@{ $a{wrong} // [] })
	{
		my ($what, $cmd, $re) = @$w;
		($rc, undef, $err) = datakey('verify', '-D', $pgdata, "--key-unwrap-command=$cmd");
		is($rc, 4, "$name: $what: pg_datakey verify says the unwrap command failed (4)") or diag $err;
		like($err, $re, "$name: $what: the store's own error is shown") or diag $err;
	}

	# --- rewrap: passphrase -> store -> other store -> store -> rotated -> passphrase ---
	my $pnode = FeDatakey::Cluster->new('pass');
	($rc, undef, $err) =
	  $pnode->initdb('-y', '--key-wrap-command=' . openssl_wrap($pass), '--key-unwrap-command=' . openssl_unwrap($pass));
	is($rc, 0, "$name: initdb -y with a passphrase") or diag $err;
	ok($pnode->start(fail_ok => 1), "$name: its server starts") or diag server_log($pnode);
	$pnode->safe_psql('postgres', "CREATE TABLE kept AS SELECT 'rewrapped'::text AS v");
	my $pkey = unwrap_key_bytes($pnode->data_dir, openssl_unwrap($pass));
	my @chain = (
		[ "from the passphrase into $name", $a{wrap}, $a{unwrap} ],
		($a{other} ? ([ "from $name into another store", @{ $a{other} } ], [ "back into $name", $a{wrap}, $a{unwrap} ])
			: ()),
		($a{rotate} ? ([ "in $name, to a new master key", @{ $a{rotate} } ]) : ()),
		[ "from $name back to a passphrase", openssl_wrap($pass), openssl_unwrap($pass) ]);
	for my $step (@chain)
	{
		my ($what, $w, $u) = @$step;
		($rc, undef, $err) = datakey('rewrap', '-D', $pnode->data_dir, "--new-key-wrap-command=$w",
			"--new-key-unwrap-command=$u");
		is($rc, 0, "$name: pg_datakey rewrap: $what") or diag $err;
		# (pg_datakey compares what the new unwrap command gives back with
		# the key; the data key is compared once more at the end.)
		if ($step == $chain[0])
		{
			# The store's key.bin of this cluster, for the wrong-key check below.
			$a{_other_keybin} = _read($pnode->data_dir . '/pg_encryption/key.bin');
		}
	}
	is(unwrap_key_bytes($pnode->data_dir, openssl_unwrap($pass)), $pkey, "$name: after the rewraps, the same data key");
	is($pnode->safe_psql('postgres', 'SELECT v FROM kept'), 'rewrapped', "$name: the running server is unaffected by rewraps");
	ok($pnode->restart(fail_ok => 1), "$name: the server restarts after the rewraps") or diag server_log($pnode);
	$pnode->stop;

	# --- a store that returns another key: the key check catches it ---
	{
		my $keybin = "$pgdata/pg_encryption/key.bin";
		my $saved = _read($keybin);
		write_file($keybin, $a{_other_keybin}, 0600);
		($rc, undef, $err) = datakey('verify', '-D', $pgdata);
		is($rc, 6, "$name: another cluster's key from the same store: wrong key (6)") or diag $err;
		like($err, qr/does not match the key check/, "$name: and it says so");
		my $mark = -s $node->logfile;
		ok(!$node->start(fail_ok => 1), "$name: the server does not start with another key");
		like(server_log($node, $mark), qr/FATAL:  data encryption key from key unwrap command does not match the key check/,
			"$name: the server's log says the key does not match the key check");
		write_file($keybin, $saved, 0600);
	}

	# --- a store that accepts and never answers ---
	if ($a{silent})
	{
		$a{down}->();
		my $guard = $a{silent}->();
		my $t0 = time;
		($rc, undef, $err) = datakey('verify', '-D', $pgdata, '--timeout=2', { timeout => 60 });
		my $took = time - $t0;
		is($rc, 5, "$name: a store that never answers: pg_datakey verify --timeout=2 times out (5)") or diag $err;
		like($err, qr/key unwrap command timed out/, "$name: and says the unwrap command timed out");
		cmp_ok($took, '<', 30, "$name: the timeout ended the command");
		($rc, undef, $err) = datakey('rewrap', '-D', $pgdata, '--timeout=2', '--new-key-wrap-command=' . openssl_wrap($pass),
			'--new-key-unwrap-command=' . openssl_unwrap($pass), { timeout => 60 });
		is($rc, 5, "$name: pg_datakey rewrap --timeout=2 times out too (5)") or diag $err;
		# The server's own bound, data_encryption_key_unwrap_timeout.
		my $mark = -s $node->logfile;
		ok(!$node->start_with_options('-c data_encryption_key_unwrap_timeout=2'),
			"$name: a store that never answers: the server start fails");
		like(server_log($node, $mark), qr/FATAL:  key unwrap command timed out/,
			"$name: data_encryption_key_unwrap_timeout ended the command, and the log says so");
		undef $guard;
		$a{up}->();
		($rc, undef, $err) = datakey('verify', '-D', $pgdata);
		is($rc, 0, "$name: with the store back, the key verifies: the timed-out rewrap changed nothing") or diag $err;
	}

	# --- where the key went: the test's directory, the nodes' and their logs ---
	my @where = ($dir, $node->basedir, $pnode->basedir, $ENV{TESTLOGDIR});
	is(join(',', map { files_containing($_, $key) } @where), '', "$name: the plaintext key is in no file");
	is(join(',', map { files_containing($_, $pkey) } @where), '', "$name: nor the other cluster's");
	return ($node, $pnode, $key);
}

1;
