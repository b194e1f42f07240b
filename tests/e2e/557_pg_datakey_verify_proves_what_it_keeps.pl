# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# verify removes key.bin.prev only when the key.bin in place is the file it
# proved. A rewrap --no-verify forced between verify's unwrap and its
# removal (verify's unwrap command writes the key, then waits for a file)
# must not leave an unproven key.bin without the previous one beside it.
use strict;
use warnings;
use IPC::Run qw(start finish);
use Time::HiRes qw(sleep);
use FeDatakey::Cluster;
use FeDatakey::Datakey qw(datakey_json);
use FeDatakey::Run qw(run_command);
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use PostgreSQL::Test::Utils qw(slurp_file command_ok);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my @pass = map { passphrase_file($dir, "pass$_", "secret number $_") } 0 .. 2;
my $node = FeDatakey::Cluster->new('main');
$node->init(encrypted => 1, wrap => openssl_wrap($pass[0]), unwrap => openssl_unwrap($pass[0]));
my $pgdata = $node->data_dir;
my $key = "$pgdata/pg_encryption/key.bin";
my $prev = "$key.prev";
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};

# An unverified rewrap leaves key.bin.prev.
command_ok(
	[
		'pg_datakey', 'rewrap', '-D', $pgdata, '--no-verify',
		'--new-key-wrap-command=' . openssl_wrap($pass[1]),
		'--new-key-unwrap-command=' . openssl_unwrap($pass[1])
	],
	'rewrap --no-verify');
ok(-e $prev, 'key.bin.prev kept');
my $proven = slurp_file($key);

# verify's unwrap writes the key, says so, then waits (at most 30 s).
my ($unwrapped, $go) = ("$dir/unwrapped", "$dir/go");
my $blocking = openssl_unwrap($pass[1])
  . "; touch '$unwrapped'; i=0; while [ ! -e '$go' ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done";
my ($vout, $verr) = ('', '');
my $verify = start [ 'pg_datakey', 'verify', '-D', $pgdata, "--key-unwrap-command=$blocking" ],
  '<', \'', '>', \$vout, '2>', \$verr;
my $waited = 0;
for (1 .. 300)
{
	last if ($waited = -e $unwrapped);
	sleep 0.1;
}
ok($waited, 'verify has unwrapped key.bin and waits');

# In that window: another unverified rewrap.
my ($rrc, $rout, $rerr) = run_command([ 'pg_datakey', 'rewrap', '-D', $pgdata, '--no-verify',
	'--key-unwrap-command=' . openssl_unwrap($pass[1]),
	'--new-key-wrap-command=' . openssl_wrap($pass[2]),
	'--new-key-unwrap-command=' . openssl_unwrap($pass[2]) ]);
open my $fh, '>', $go or die "$go: $!";
close $fh;
finish $verify;
is($? >> 8, 0, 'verify succeeds') or diag $verr;

# The invariant: key.bin.prev is gone only if key.bin is the file proven.
ok(-e $prev || slurp_file($key) eq $proven,
	'key.bin.prev is not removed unless the key.bin in place is the one verify proved');
if ($rrc == 0)
{
	ok(-e $prev, 'the rewrap went through: key.bin.prev stays beside the unproven key.bin');
	unlike($vout, qr/Previous key file removed/, 'verify does not claim to have removed it');
}
else
{
	is($rrc, 11, 'the rewrap is refused while verify holds the lock') or diag $rerr;
	is(slurp_file($key), $proven, 'key.bin is the file verify proved');
	ok(!-e $prev, 'so key.bin.prev is removed');
	like($vout, qr/Previous key file removed/, 'and verify says so');
}

# A rewrap that holds the lock while verify runs: verify verifies, and
# key.bin.prev stays (the rewrap owns it).
command_ok(
	[
		'pg_datakey', 'rewrap', '-D', $pgdata, '--no-verify',
		'--key-unwrap-command=' . openssl_unwrap($rrc == 0 ? $pass[2] : $pass[1]),
		'--new-key-wrap-command=' . openssl_wrap($pass[0]),
		'--new-key-unwrap-command=' . openssl_unwrap($pass[0])
	],
	'another rewrap --no-verify');
ok(-e $prev, 'key.bin.prev kept');
my $go2 = "$dir/go2";
my $slow_wrap = "i=0; while [ ! -e '$go2' ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done; cat > \"%p\"";
my ($wout, $werr) = ('', '');
my $rewrap = start [ 'pg_datakey', 'rewrap', '-D', $pgdata, '--no-verify',
	"--new-key-wrap-command=$slow_wrap", '--new-key-unwrap-command=cat "%p"' ],
  '<', \'', '>', \$wout, '2>', \$werr;
my $held = 0;
for (1 .. 300)
{
	last if ($held = datakey_json($pgdata)->{rewrap}{state} eq 'in_progress');
	sleep 0.1;
}
ok($held, 'a rewrap holds the lock');
my ($rc, $out, $err) = run_command([ 'pg_datakey', 'verify', '-D', $pgdata ]);
is($rc, 0, 'verify works while it runs') or diag $err;
ok(-e $prev, 'and leaves key.bin.prev to it');
unlike($out, qr/Previous key file removed/, 'without claiming otherwise');
open $fh, '>', $go2 or die "$go2: $!";
close $fh;
finish $rewrap;
is($? >> 8, 0, 'the rewrap completes') or diag $werr;

done_testing();
