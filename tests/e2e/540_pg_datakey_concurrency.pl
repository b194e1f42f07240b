# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# Two concurrent rewraps (the second refused by the lock, nothing damaged),
# and a rewrap while the server runs followed by a restart.
use strict;
use warnings;
use IPC::Run qw(start finish);
use Time::HiRes qw(sleep);
use FeDatakey::Cluster;
use FeDatakey::Datakey qw(datakey_json);
use FeDatakey::Run qw(run_command);
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use PostgreSQL::Test::Utils qw(command_ok command_exit_is command_checks_all);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'first');
my $node = FeDatakey::Cluster->new('main');
$node->init(encrypted => 1, wrap => '-', unwrap => '-');
my $pgdata = $node->data_dir;
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

command_checks_all(
	[
		'pg_datakey', 'rewrap', '-D', $pgdata,
		'--new-key-wrap-command=cat > "%p"', '--new-key-unwrap-command=cat "%p"'
	],
	11, [],
	[qr/^pg_datakey: error: another rewrap or repair is running on this data directory$/m],
	'a second rewrap is refused, with a clear message');
command_exit_is([ 'pg_datakey', 'repair', '-D', $pgdata ], 11,
	'repair is refused too while the rewrap runs');
command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], 'verify works during the rewrap');

open my $fh, '>', $go or die;
close $fh;
finish $first;
is($? >> 8, 0, 'the first rewrap completes') or diag $err1;
command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], 'the key opens with the first rewrap\'s command');
is(datakey_json($pgdata)->{key_check_value}, $kcv, 'same data key');

{
	ok($node->start(fail_ok => 1), 'server starts');
	$node->safe_psql('postgres', "CREATE TABLE t AS SELECT 'live' AS v");
	my $new = passphrase_file($dir, 'new', 'second');
	command_ok(
		[
			'pg_datakey', 'rewrap', '-D', $pgdata,
			'--new-key-wrap-command=' . openssl_wrap($new),
			'--new-key-unwrap-command=' . openssl_unwrap($new)
		],
		'rewrap while the server runs');
	is($node->safe_psql('postgres', 'SELECT v FROM t'), 'live', 'server keeps running');
	command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], 'verify while the server runs');
	ok($node->stop('fast', fail_ok => 1), 'server stops');
	ok($node->start(fail_ok => 1), 'server restarts with the new command');
	is($node->safe_psql('postgres', 'SELECT v FROM t'), 'live', 'data intact');
	$node->stop;
}

done_testing();
