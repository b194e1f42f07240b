# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# Two concurrent rewraps (the second refused by the lock, nothing damaged),
# and a rewrap while the server runs followed by a restart.
use strict;
use warnings;
use Test::More;
use IPC::Run qw(start finish);
use Time::HiRes qw(sleep);
use FeDatakey::TestLib;
use FeDatakey::Datakey;

my $dir = temp_dir();
my $pass = passphrase_file($dir, 'pass', 'first');
my ($node, $pgdata) = new_cluster($dir, '-', '-');
my $kcv = datakey_json($pgdata)->{key_check_value};

# The first rewrap waits inside its wrap command until told to go on.
my $go = "$dir/go";
my $slow_wrap = "while [ ! -e '$go' ]; do sleep 0.1; done; " . openssl_wrap($pass);
my ($out1, $err1) = ('', '');
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};
my $first = start [ 'pg_datakey', 'rewrap', '-D', $pgdata, "--new-key-wrap-command=$slow_wrap",
	'--new-key-unwrap-command=' . openssl_unwrap($pass) ], '<', \'', '>', \$out1, '2>', \$err1;

my $held = 0;
for (1 .. 100)
{
	last if ($held = datakey_json($pgdata)->{rewrap}{state} eq 'in_progress');
	sleep 0.1;
}
ok($held, 'status sees the rewrap in progress');

my ($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
	'--new-key-wrap-command=cat > "%p"', '--new-key-unwrap-command=cat "%p"' ]);
is($rc, 11, 'a second rewrap is refused');
like($err, qr/^pg_datakey: error: another rewrap or repair is running on this data directory$/m,
	'with a clear message');
($rc, $out, $err) = run_datakey([ 'repair', '-D', $pgdata ]);
is($rc, 11, 'repair is refused too while the rewrap runs');
($rc) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 0, 'verify works during the rewrap');

open my $fh, '>', $go or die;
close $fh;
finish $first;
is($? >> 8, 0, 'the first rewrap completes') or diag $err1;
($rc) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 0, 'the key opens with the first rewrap\'s command');
is(datakey_json($pgdata)->{key_check_value}, $kcv, 'same data key');

{
	ok($node->start, 'server starts');
	$node->psql("CREATE TABLE t AS SELECT 'live' AS v");
	my $new = passphrase_file($dir, 'new', 'second');
	($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
		'--new-key-wrap-command=' . openssl_wrap($new),
		'--new-key-unwrap-command=' . openssl_unwrap($new) ]);
	is($rc, 0, 'rewrap while the server runs') or diag $err;
	is($node->psql('SELECT v FROM t'), 'live', 'server keeps running');
	($rc) = run_datakey([ 'verify', '-D', $pgdata ]);
	is($rc, 0, 'verify while the server runs');
	ok($node->stop, 'server stops');
	ok($node->start, 'server restarts with the new command');
	is($node->psql('SELECT v FROM t'), 'live', 'data intact');
	$node->stop;
}

done_testing();
