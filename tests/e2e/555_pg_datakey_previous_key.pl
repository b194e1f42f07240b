# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# The last key.bin known to unwrap is never lost to a wrap that was not
# checked: a wrap command that exits 0 but writes junk (a key service's error
# body), with and without --no-verify.
use strict;
use warnings;
use Test::More;
use FeDatakey::TestLib;
use FeDatakey::Datakey;

my $dir = temp_dir();
my $pass = passphrase_file($dir, 'pass', 'the good one');
my ($node, $pgdata) = new_cluster($dir, openssl_wrap($pass), openssl_unwrap($pass));
my $key = "$pgdata/pg_encryption/key.bin";
my $prev = "$key.prev";
my $original = slurp_file($key);
my $kcv = datakey_json($pgdata)->{key_check_value};
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};
$node->start or BAIL_OUT('server does not start');
$node->safe_psql("CREATE TABLE t AS SELECT 'kept'::text AS v");
$node->stop;

my $junk = q{cat > /dev/null; echo '{"error":"quota exceeded"}' > "%p"};
my $junk_unwrap = 'cat "%p"';

# Verified (the default): refused before anything changes.
my ($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
	"--new-key-wrap-command=$junk", "--new-key-unwrap-command=$junk_unwrap" ]);
isnt($rc, 0, 'a junk wrap is refused by the verification');
is(slurp_file($key), $original, 'key.bin untouched');
ok(!-e $prev, 'no previous key file needed');

# --no-verify: the junk goes in, the last good key file stays beside it.
($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata, '--no-verify',
	"--new-key-wrap-command=$junk", "--new-key-unwrap-command=$junk_unwrap" ]);
is($rc, 0, '--no-verify accepts the junk, as asked') or diag $err;
like($err, qr/the old one is kept as "pg_encryption\/key.bin.prev"/, 'and says what it keeps');
is(slurp_file($prev), $original, 'key.bin.prev is the last key file known to unwrap');
my $status = datakey_json($pgdata);
ok($status->{rewrap}{previous_key_kept}, 'status --json reports the previous key file');
($rc, $out, $err) = run_datakey([ 'status', '-D', $pgdata ]);
like($out, qr/^Previous key file:\s+kept/m, 'status says so');
like($err, qr/was not verified after the last rewrap/, 'with a warning');

($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
isnt($rc, 0, 'verify with the new command fails on the junk');
ok(-e $prev, 'and keeps key.bin.prev');
($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata, "--key-unwrap-command=$junk_unwrap",
	'--new-key-wrap-command=-', '--new-key-unwrap-command=-' ]);
isnt($rc, 0, 'a rewrap cannot start from the junk');
is(slurp_file($prev), $original, 'key.bin.prev is still the good one');

# Recovery by hand, as docs/pg_datakey.md says: the previous file back in
# place, the old command back in the configuration.
rename($prev, $key) or die;
($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata, '--key-unwrap-command=' . openssl_unwrap($pass),
	'--new-key-wrap-command=' . openssl_wrap($pass),
	'--new-key-unwrap-command=' . openssl_unwrap($pass) ]);
is($rc, 0, 'the recovered key file rewraps with the old passphrase') or diag $err;
ok(!-e $prev, 'a verified rewrap keeps no previous key file');

# --no-verify with a good wrap: key.bin.prev until a verify proves key.bin.
my $new = passphrase_file($dir, 'new', 'after the leak');
($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata, '--no-verify',
	'--new-key-wrap-command=' . openssl_wrap($new),
	'--new-key-unwrap-command=' . openssl_unwrap($new) ]);
is($rc, 0, 'unverified rewrap with a good command') or diag $err;
ok(-e $prev, 'the old wrapping is kept for now');
($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 0, 'verify with the new command succeeds') or diag $err;
like($out, qr/Previous key file removed/, 'and says it removed the previous key file');
ok(!-e $prev, 'the old wrapping (under the leaked passphrase) is gone');
ok(!datakey_json($pgdata)->{rewrap}{previous_key_kept}, 'status agrees');
is(datakey_json($pgdata)->{key_check_value}, $kcv, 'same data key throughout');
ok($node->start, 'server starts with the new command');
is($node->safe_psql('SELECT v FROM t'), 'kept', 'data intact');
$node->stop;

done_testing();
