# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# The last key.bin known to unwrap is never lost to a wrap that was not
# checked: a wrap command that exits 0 but writes junk (a key service's error
# body), with and without --no-verify.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Datakey qw(datakey_json);
use FeDatakey::Run qw(run_command);
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use PostgreSQL::Test::Utils qw(slurp_file command_ok command_fails command_checks_all);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'the good one');
my $node = FeDatakey::Cluster->new('main');
$node->init(encrypted => 1, wrap => openssl_wrap($pass), unwrap => openssl_unwrap($pass));
my $pgdata = $node->data_dir;
my $key = "$pgdata/pg_encryption/key.bin";
my $prev = "$key.prev";
my $original = slurp_file($key);
my $kcv = datakey_json($pgdata)->{key_check_value};
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};
$node->start;
$node->safe_psql('postgres', "CREATE TABLE t AS SELECT 'kept'::text AS v");
$node->stop;

my $junk = q{cat > /dev/null; echo '{"error":"quota exceeded"}' > "%p"};
my $junk_unwrap = 'cat "%p"';
my @rewrap = ('pg_datakey', 'rewrap', '-D', $pgdata);

# Verified (the default): refused before anything changes.
command_fails([ @rewrap, "--new-key-wrap-command=$junk", "--new-key-unwrap-command=$junk_unwrap" ],
	'a junk wrap is refused by the verification');
is(slurp_file($key), $original, 'key.bin untouched');
ok(!-e $prev, 'no previous key file needed');

# --no-verify: the junk goes in, the last good key file stays beside it.
command_checks_all(
	[ @rewrap, '--no-verify', "--new-key-wrap-command=$junk", "--new-key-unwrap-command=$junk_unwrap" ],
	0, [],
	[qr/the old one is kept as "pg_encryption\/key.bin.prev"/],
	'--no-verify accepts the junk, as asked, and says what it keeps');
is(slurp_file($prev), $original, 'key.bin.prev is the last key file known to unwrap');
my $status = datakey_json($pgdata);
ok($status->{rewrap}{previous_key_kept}, 'status --json reports the previous key file');
command_checks_all(
	[ 'pg_datakey', 'status', '-D', $pgdata ],
	0,
	[qr/^Previous key file:\s+kept/m],
	[qr/was not verified after the last rewrap/],
	'status says so, with a warning');

command_fails([ 'pg_datakey', 'verify', '-D', $pgdata ], 'verify with the new command fails on the junk');
ok(-e $prev, 'and keeps key.bin.prev');
command_fails(
	[
		@rewrap, "--key-unwrap-command=$junk_unwrap",
		'--new-key-wrap-command=-', '--new-key-unwrap-command=-'
	],
	'a rewrap cannot start from the junk');
is(slurp_file($prev), $original, 'key.bin.prev is still the good one');

# Recovery by hand, as docs/pg_datakey.md says: the previous file back in
# place, the old command back in the configuration.
rename($prev, $key) or die;
command_ok(
	[
		@rewrap, '--key-unwrap-command=' . openssl_unwrap($pass),
		'--new-key-wrap-command=' . openssl_wrap($pass),
		'--new-key-unwrap-command=' . openssl_unwrap($pass)
	],
	'the recovered key file rewraps with the old passphrase');
ok(!-e $prev, 'a verified rewrap keeps no previous key file');

# --no-verify with a good wrap: key.bin.prev until a verify proves key.bin.
my $new = passphrase_file($dir, 'new', 'after the leak');
command_ok(
	[
		@rewrap, '--no-verify',
		'--new-key-wrap-command=' . openssl_wrap($new),
		'--new-key-unwrap-command=' . openssl_unwrap($new)
	],
	'unverified rewrap with a good command');
ok(-e $prev, 'the old wrapping is kept for now');
command_checks_all([ 'pg_datakey', 'verify', '-D', $pgdata ],
	0, [qr/Previous key file removed/], [],
	'verify with the new command succeeds, and says it removed the previous key file');
ok(!-e $prev, 'the old wrapping (under the leaked passphrase) is gone');
ok(!datakey_json($pgdata)->{rewrap}{previous_key_kept}, 'status agrees');
is(datakey_json($pgdata)->{key_check_value}, $kcv, 'same data key throughout');
ok($node->start(fail_ok => 1), 'server starts with the new command');
is($node->safe_psql('postgres', 'SELECT v FROM t'), 'kept', 'data intact');
$node->stop;

done_testing();
