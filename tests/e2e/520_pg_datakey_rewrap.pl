# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# pg_datakey rewrap: passphrase rotation with openssl, "-" to a passphrase and
# back, failing, garbage-writing and hanging wrap commands, and the server
# starting with the new passphrase only.
use strict;
use warnings;
use Test::More;
use FeDatakey::TestLib;
use FeDatakey::Datakey;

my $dir = temp_dir();
my $old = passphrase_file($dir, 'old.pass', 'old secret');
my $new = passphrase_file($dir, 'new.pass', 'new secret');
my ($node, $pgdata) = new_cluster($dir, openssl_wrap($old), openssl_unwrap($old));
my $kcv = datakey_json($pgdata)->{key_check_value};

{
	ok($node->start, 'server starts with the old passphrase');
	$node->psql('CREATE TABLE t AS SELECT 42 AS v');
	ok($node->stop, 'server stops');
}

# Failures before anything is replaced leave the cluster as it was.
my $before = slurp_file("$pgdata/pg_encryption/key.bin");
my ($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
	'--new-key-wrap-command=cat >/dev/null; exit 3 #%p',
	'--new-key-unwrap-command=' . openssl_unwrap($new) ]);
is($rc, 4, 'a failing wrap command: status 4');
like($err, qr/key wrap command failed/, 'names the wrap command');
like($err, qr/left unchanged/, 'says nothing changed');

($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
	'--new-key-wrap-command=cat >/dev/null; head -c 64 /dev/urandom > "%p"',
	'--new-key-unwrap-command=cat "%p"' ]);
is($rc, 6, 'a wrap command that writes garbage is caught by verification');

($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata, '--timeout=1',
	'--new-key-wrap-command=sleep 30; cat > "%p"',
	'--new-key-unwrap-command=cat "%p"' ]);
is($rc, 5, 'a wrap command hanging past --timeout: status 5');

($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
	'--key-unwrap-command=' . openssl_unwrap($new),
	'--new-key-wrap-command=' . openssl_wrap($new),
	'--new-key-unwrap-command=' . openssl_unwrap($new) ]);
isnt($rc, 0, 'a wrong old passphrase is refused');

is(slurp_file("$pgdata/pg_encryption/key.bin"), $before, 'key.bin untouched by failures');
my $status = datakey_json($pgdata);
is($status->{rewrap}{state}, 'none', 'no debris left by failures');
is(scalar(grep { $_->{path} =~ /\.new|\.tmp|rewrap\.state/ } @{ $status->{files} }), 0,
	'no temporary files left');

# The rotation.
($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
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
($rc) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 0, 'verify with the configured (new) command');
($rc) = run_datakey([ 'verify', '-D', $pgdata, '--key-unwrap-command=' . openssl_unwrap($old) ]);
isnt($rc, 0, 'the old passphrase opens nothing any more');
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
	ok($node->start, 'server starts with the new passphrase');
	is($node->psql('SELECT v FROM t'), '42', 'data intact');
	ok($node->stop, 'server stops');
	ok(!$node->start(
			options => "-c \"data_encryption_key_unwrap_command='" . openssl_unwrap($old) . "'\""),
		'server refuses the old passphrase');
}

# Back to "-" and to a passphrase again.
($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
	'--new-key-wrap-command=-', '--new-key-unwrap-command=-' ]);
is($rc, 0, 'rewrap to "-"') or diag $err;
$status = datakey_json($pgdata);
ok($status->{plaintext_key}, 'status: plaintext key');
ok((grep { /without wrapping/ } @{ $status->{warnings} }), 'status warns about it');
is(length(slurp_file("$pgdata/pg_encryption/key.bin")), 64, 'key.bin is the raw key');
($rc) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 0, 'verify in "-" mode');
{
	ok($node->start, 'server starts in "-" mode');
	ok($node->stop, 'server stops');
}

($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
	'--new-key-wrap-command=' . openssl_wrap($old),
	'--new-key-unwrap-command=' . openssl_unwrap($old) ]);
is($rc, 0, 'rewrap "-" -> passphrase') or diag $err;
is(datakey_json($pgdata)->{key_check_value}, $kcv, 'still the same data key');
isnt(length(slurp_file("$pgdata/pg_encryption/key.bin")), 64, 'key.bin is wrapped again');
($rc) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 0, 'verify with the passphrase');

# Mixed new commands are refused before anything runs.
($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
	'--new-key-wrap-command=-', '--new-key-unwrap-command=cat "%p"' ]);
is($rc, 3, '"-" mixed with a command: status 3');

done_testing();
