# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# pg_datakey rewrap: passphrase rotation with openssl, "-" to a passphrase and
# back, failing, garbage-writing and hanging wrap commands, and the server
# starting with the new passphrase only.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Datakey qw(datakey_json);
use FeDatakey::Run qw(run_command);
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap unwrap_key_bytes);
use PostgreSQL::Test::Utils
  qw(slurp_file command_ok command_fails command_exit_is command_checks_all);
use Test::More;


my $dir = PostgreSQL::Test::Utils::tempdir();
my $old = passphrase_file($dir, 'old.pass', 'old secret');
my $new = passphrase_file($dir, 'new.pass', 'new secret');
my $node = FeDatakey::Cluster->new('main');
$node->init(encrypted => 1, wrap => openssl_wrap($old), unwrap => openssl_unwrap($old));
my $pgdata = $node->data_dir;
my $kcv = datakey_json($pgdata)->{key_check_value};

{
	ok($node->start(fail_ok => 1), 'server starts with the old passphrase');
	$node->safe_psql('postgres', 'CREATE TABLE t AS SELECT 42 AS v');
	ok($node->stop('fast', fail_ok => 1), 'server stops');
}

# Failures before anything is replaced leave the cluster as it was.
my $before = slurp_file("$pgdata/pg_encryption/key.bin");
my @rewrap = ('pg_datakey', 'rewrap', '-D', $pgdata);
command_checks_all(
	[
		@rewrap, '--new-key-wrap-command=cat >/dev/null; exit 3 #%p',
		'--new-key-unwrap-command=' . openssl_unwrap($new)
	],
	4, [],
	[ qr/key wrap command failed/, qr/left unchanged/ ],
	'a failing wrap command: status 4, naming the wrap command and saying nothing changed');

command_exit_is(
	[
		@rewrap, '--new-key-wrap-command=cat >/dev/null; head -c 64 /dev/urandom > "%p"',
		'--new-key-unwrap-command=cat "%p"'
	],
	6, 'a wrap command that writes garbage is caught by verification');

command_exit_is(
	[
		@rewrap, '--timeout=1', '--new-key-wrap-command=sleep 30; cat > "%p"',
		'--new-key-unwrap-command=cat "%p"'
	],
	5, 'a wrap command hanging past --timeout: status 5');

command_fails(
	[
		@rewrap, '--key-unwrap-command=' . openssl_unwrap($new),
		'--new-key-wrap-command=' . openssl_wrap($new),
		'--new-key-unwrap-command=' . openssl_unwrap($new)
	],
	'a wrong old passphrase is refused');

is(slurp_file("$pgdata/pg_encryption/key.bin"), $before, 'key.bin untouched by failures');
my $status = datakey_json($pgdata);
is($status->{rewrap}{state}, 'none', 'no debris left by failures');
is(scalar(grep { $_->{path} =~ /\.new|\.tmp|rewrap\.state/ } @{ $status->{files} }), 0,
	'no temporary files left');

# The rotation.
my ($rc, $out, $err) = run_command([ @rewrap,
	'--new-key-wrap-command=' . openssl_wrap($new),
	'--new-key-unwrap-command=' . openssl_unwrap($new) ]);
is($rc, 0, 'rewrap old -> new passphrase') or diag $err;
like($out, qr/key check value $kcv/, 'the data key did not change');
unlike($out . $err, qr/secret|\Q$new\E/, 'no command text or passphrase in the output');
$status = datakey_json($pgdata);
is($status->{key_check_value}, $kcv, 'key check value unchanged');
is_deeply([ sort map { $_->{path} } @{ $status->{files} } ],
	[ 'pg_encryption', 'pg_encryption/key.bin', 'pg_encryption/key.check',
		'pg_encryption/rewrap.lock' ], 'only the key, its check and the lock remain');
command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], 'verify with the configured (new) command');
command_fails([ 'pg_datakey', 'verify', '-D', $pgdata, '--key-unwrap-command=' . openssl_unwrap($old) ],
	'the old passphrase opens nothing any more');
# (Compared with the key, not by openssl's exit status: a wrong passphrase
# decrypts without error about once in 256 salts.)
my $key = unwrap_key_bytes($pgdata, openssl_unwrap($new));
for my $f (glob("$pgdata/pg_encryption/*"))
{
	next if $f =~ /key\.check$/;
	(my $cmd = openssl_unwrap($old)) =~ s/%p/$f/g;
	my (undef, $plain) = run_command([ '/bin/sh', '-c', $cmd ]);
	isnt($plain, $key, "old passphrase does not open $f");
}

{
	ok($node->start(fail_ok => 1), 'server starts with the new passphrase');
	is($node->safe_psql('postgres', 'SELECT v FROM t'), '42', 'data intact');
	ok($node->stop('fast', fail_ok => 1), 'server stops');
	# The command goes through pg_ctl's shell and then verbatim to
	# postgres -c: %p without quotes, and no quotes around the value.
	(my $old_unwrap = openssl_unwrap($old)) =~ s/"%p"/%p/;
	my $offset = -s $node->logfile;
	ok(!$node->start_with_options("-c \"data_encryption_key_unwrap_command=$old_unwrap\""),
		'server refuses the old passphrase');
	like(slurp_file($node->logfile, $offset), qr/FATAL:  (?!.*status 127)/,
		'the unwrap command ran and the key was refused');
}

# Back to "-" and to a passphrase again.
command_ok([ @rewrap, '--new-key-wrap-command=-', '--new-key-unwrap-command=-' ], 'rewrap to "-"');
$status = datakey_json($pgdata);
ok($status->{plaintext_key}, 'status: plaintext key');
ok((grep { /without wrapping/ } @{ $status->{warnings} }), 'status warns about it');
is(length(slurp_file("$pgdata/pg_encryption/key.bin")), 64, 'key.bin is the raw key');
command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], 'verify in "-" mode');
{
	ok($node->start(fail_ok => 1), 'server starts in "-" mode');
	ok($node->stop('fast', fail_ok => 1), 'server stops');
}

command_ok(
	[
		@rewrap, '--new-key-wrap-command=' . openssl_wrap($old),
		'--new-key-unwrap-command=' . openssl_unwrap($old)
	],
	'rewrap "-" -> passphrase');
is(datakey_json($pgdata)->{key_check_value}, $kcv, 'still the same data key');
isnt(length(slurp_file("$pgdata/pg_encryption/key.bin")), 64, 'key.bin is wrapped again');
command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], 'verify with the passphrase');

# Mixed new commands are refused before anything runs.
command_exit_is([ @rewrap, '--new-key-wrap-command=-', '--new-key-unwrap-command=cat "%p"' ],
	3, '"-" mixed with a command: status 3');

done_testing();
