# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# pg_datakey status and verify on an encrypted cluster: output, JSON, warnings,
# and one exit status per kind of failure.
use strict;
use warnings;
use JSON::PP;
use FeDatakey::Cluster;
use FeDatakey::Datakey qw(datakey_json);
use FeDatakey::Run qw(run_command);
use FeDatakey::KeyCommands qw(passphrase_file rejected_passphrase openssl_wrap openssl_unwrap);
use FeDatakey::Files qw(write_file);
use PostgreSQL::Test::Utils qw(slurp_file command_ok command_exit_is command_checks_all);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'correct horse');
my $node = FeDatakey::Cluster->new('main');
$node->init(encrypted => 1, wrap => openssl_wrap($pass), unwrap => openssl_unwrap($pass));
my $pgdata = $node->data_dir;
my $wrong = rejected_passphrase("$pgdata/pg_encryption/key.bin", $dir, 'wrong');

command_checks_all([ 'pg_datakey', '--version' ],
	0, [qr/\Apg_datakey \(fe_datakey\) 0\.1\.0\n\z/], [], '--version');

my (undef, $out) = run_command([ 'pg_datakey', '--help' ]);
like($out, qr/^Usage:\n  pg_datakey \[COMMAND\] \[OPTION\]\.\.\./m, '--help has a usage line');
like($out, qr/^  -D, --pgdata=DATADIR   data directory$/m, '--help: -D is required before DATADIR');
unlike($out, qr/\[-D/, '--help: no bracket that would make DATADIR a bare argument');
command_exit_is([ 'pg_datakey', $pgdata ], 1,
	'a bare DATADIR is refused as a command, as the help says');

command_checks_all(
	[ 'pg_datakey', 'frobnicate', '-D', $pgdata ],
	1, [],
	[
		qr/^pg_datakey: error: unrecognized command "frobnicate"$/m,
		qr/^pg_datakey: hint: Try "pg_datakey --help" for more information\.$/m
	],
	'unknown command is a usage error, with a message and a hint');

{
	delete local $ENV{PGDATA};
	command_checks_all([ 'pg_datakey', 'status' ],
		1, [], [qr/no data directory specified/], 'no data directory is a usage error');
}

{
	local $ENV{PGDATA} = $pgdata;
	my ($rc, $out, $err) = run_command([ 'pg_datakey', 'status' ]);
	is($rc, 0, 'status with PGDATA');
	like($out, qr/^Encrypted:\s+yes$/m, 'status says encrypted');
	like($out, qr/^Key length:\s+128 bits$/m, 'status gives the key length');
	like($out, qr/^Key check value:\s+[0-9a-f]{32}$/m, 'status gives the key check value');
	unlike($out . $err, qr/openssl|\Q$pass\E/, 'status hides the command');
	is($err, '', 'no warnings for a well-kept cluster');
}

command_checks_all([ 'pg_datakey', 'status', '-D', $pgdata, '--show-commands' ],
	0, [qr/^Key unwrap command:\s+\Qopenssl enc -d\E.*-in "%p"$/m],
	[], '--show-commands shows the configured command');

my $status = datakey_json($pgdata);
is($status->{encrypted}, JSON::PP::true, 'json: encrypted');
is($status->{key_bits}, 128, 'json: key bits');
like($status->{key_check_value}, qr/^[0-9a-f]{32}$/, 'json: key check value');
ok(!exists $status->{unwrap_command}, 'json: no command without --show-commands');
is($status->{rewrap}{state}, 'none', 'json: no rewrap');
my %modes = map { $_->{path} => $_->{mode} } @{ $status->{files} };
is($modes{'pg_encryption'}, '0700', 'json: directory mode');
is($modes{'pg_encryption/key.bin'}, '0600', 'json: key file mode');
is_deeply($status->{warnings}, [], 'json: no warnings');
my $kcv = $status->{key_check_value};

command_checks_all([ 'pg_datakey', 'verify', '-D', $pgdata ],
	0, [qr/key check value $kcv/], [],
	'verify with the configured command reports the key check value');

{
	my ($rc, $out, $err) =
	  run_command([ 'pg_datakey', 'verify', '-D', $pgdata, '--key-unwrap-command=' . openssl_unwrap($wrong) ]);
	is($rc, 4, 'wrong passphrase: openssl fails, status 4');
	like($err, qr/pg_datakey: error: key unwrap command failed/, 'names the failing command');
	unlike($err, qr/\Q$wrong\E/, 'the command text is not echoed');
}

{
	local $ENV{PGDATAKEYUNWRAPCMD} = openssl_unwrap($wrong);
	command_exit_is([ 'pg_datakey', 'verify', '-D', $pgdata ], 4,
		'PGDATAKEYUNWRAPCMD beats the configuration');
	command_ok([ 'pg_datakey', 'verify', '-D', $pgdata, '--key-unwrap-command=' . openssl_unwrap($pass) ],
		'the option beats PGDATAKEYUNWRAPCMD');
}

my @verify = ('pg_datakey', 'verify', '-D', $pgdata);
command_exit_is([ @verify, '--key-unwrap-command=head -c 64 /dev/urandom #%p' ],
	6, 'a key of the right length but wrong: status 6');
command_exit_is([ @verify, '--key-unwrap-command=head -c 10 /dev/urandom #%p' ],
	7, 'short output: status 7');
command_exit_is([ @verify, '--key-unwrap-command=kill -9 $$ #%p' ],
	4, 'a command killed by a signal: status 4');
command_exit_is([ @verify, '--timeout=1', '--key-unwrap-command=sleep 30; cat "%p"' ],
	5, 'a hanging command past --timeout: status 5');
command_exit_is([ @verify, '--key-unwrap-command=' ], 3, 'an empty command: status 3');
command_exit_is([ @verify, '--key-unwrap-command=cat key' ], 3, 'a command without %p: status 3');

my $check = "$pgdata/pg_encryption/key.check";
rename $check, "$check.away" or die;
command_exit_is(\@verify, 13,
	'missing key check in a cluster pg_control calls encrypted: status 13');
command_checks_all([ 'pg_datakey', 'status', '-D', $pgdata, '--json' ],
	13, [qr/key check file \\"pg_encryption\/key.check\\" is missing/], [],
	'status fails too, and says why');
write_file($check, "fe_datakey key check 1\nbits 128\n");
command_exit_is(\@verify, 8, 'malformed key check: status 8');
# A monitor must not take it for a healthy cluster: the server would refuse it.
command_checks_all([ 'pg_datakey', 'status', '-D', $pgdata ],
	8, [qr/Encrypted:/], [qr/error: invalid key check file "pg_encryption\/key\.check"/],
	'status prints the report, then fails with the malformed key check (8)');
rename "$check.away", $check or die;

chmod 0644, "$pgdata/pg_encryption/key.bin";
command_checks_all(
	[ 'pg_datakey', 'status', '-D', $pgdata ],
	0, [],
	[qr/^pg_datakey: warning: "pg_encryption\/key\.bin" is accessible by other users \(mode 0644\)$/m],
	'status still succeeds, with a warning for a world-readable key file');
chmod 0600, "$pgdata/pg_encryption/key.bin";

# A configuration that names no command.
my $conf = slurp_file("$pgdata/postgresql.conf");
(my $without = $conf) =~ s/^data_encryption_key_unwrap_command\b.*$//mg;
write_file("$pgdata/postgresql.conf", $without);
$status = datakey_json($pgdata);
is($status->{unwrap_command_configured}, JSON::PP::false, 'json: no command configured');
ok((grep { /names no key unwrap command/ } @{ $status->{warnings} }), 'warned');
command_exit_is(\@verify, 3, 'verify without any command: status 3');
write_file("$pgdata/postgresql.conf", $conf);

# An unencrypted cluster.
my $plain = FeDatakey::Cluster->new('plain');
$plain->init;
$status = datakey_json($plain->data_dir);
is($status->{encrypted}, JSON::PP::false, 'json: an unencrypted cluster');
command_exit_is([ 'pg_datakey', 'verify', '-D', $plain->data_dir ],
	2, 'verify on an unencrypted cluster: status 2');
command_exit_is([ 'pg_datakey', 'verify', '-D', $dir ], 9, 'not a cluster directory: status 9');

done_testing();
