# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# The Tang recipe of docs/key-stores.md, run as written against tangd served by socat on
# 127.0.0.1 (keys made by tangd-keygen, the thumbprint by the recipe's
# line): initdb -y and a server with the key bound to Tang; rewrap from a
# passphrase into Tang, into a SoftHSM2 token and back, and to another Tang
# server; Tang stopped; a key bound to a Tang server whose keys were
# replaced; a wrong thumbprint at initdb; another cluster's key caught by
# the key check; a Tang that accepts and never answers ended by pg_datakey
# --timeout.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Run qw(run_command);
use FeDatakey::KeyCommands qw(unwrap_key_bytes);
use FeDatakey::Files qw(write_file);
use FeDatakey::KeyStores;
use PostgreSQL::Test::Utils qw(slurp_file command_ok command_checks_all);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $tang = tang_store($dir, 'tang-db');
my $tang2 = tang_store($dir, 'tang2-db');    # another Tang server
my ($wrap, $unwrap) = @$tang{qw(wrap unwrap)};
like($wrap, qr/^clevis encrypt tang "\{\\"url\\":\\"http:\/\/127\.0\.0\.1:\d+\\",\\"thp\\":\\"[\w-]{43}\\"\}" > "%p"$/,
	'the wrap command of docs/key-stores.md, with the test\'s Tang server and thumbprint');

# A wrong thumbprint: initdb fails and leaves nothing behind.
{
	my $bad = $wrap =~ s/"thp\\":\\"[\w-]+\\"/"thp\\":\\"@{[ 'A' x 43 ]}\\"/r;
	isnt($bad, $wrap, 'a wrap command with another thumbprint');
	command_checks_all(
		[
			'initdb', '-D', "$dir/bad-thp", '-A', 'trust', '-N', '--no-instructions',
			'-y', "--key-wrap-command=$bad", "--key-unwrap-command=$unwrap"
		],
		1, [],
		[ qr/key wrap command failed/, qr/Unable to fetch advertisement/ ],
		'initdb -y with a wrong Tang thumbprint fails, saying the wrap command failed, with clevis\'s reason');
	ok(!-e "$dir/bad-thp", 'and leaves no data directory');
}

my ($node) = run_store_checks(
	name => 'Tang',
	dir => $dir,
	wrap => $wrap,
	unwrap => $unwrap,
	other => [ @{ softhsm_token($dir, 'hsm', '1234') }{qw(wrap unwrap)} ],
	rotate => [ @$tang2{qw(wrap unwrap)} ],
	down => $tang->{down},
	up => $tang->{up},
	silent => sub { silent_listener($tang->{port}) });

# A key bound to a Tang server whose keys were since replaced.
{
	my $pgdata = $node->data_dir;
	my $keybin = "$pgdata/pg_encryption/key.bin";
	my $saved = slurp_file($keybin);
	my $k = unwrap_key_bytes($pgdata, $unwrap);
	my ($rc, $jwe, $err) = run_command([ 'bash', '-o', 'pipefail', '-c', $tang2->{wrap} =~ s/> "%p"//r ], stdin => $k);
	is($rc, 0, 'the key bound to the second Tang server') or diag $err;
	# New keys on the same address: the old ones are gone.
	$tang2->{down}->();
	unlink glob "$tang2->{db}/*.jwk";
	command_ok([ '/usr/libexec/tangd-keygen', $tang2->{db} ], 'new keys for the second Tang server');
	$tang2->{up}->();
	write_file($keybin, $jwe, 0600);
	command_checks_all([ 'pg_datakey', 'verify', '-D', $pgdata, "--key-unwrap-command=$tang2->{unwrap}" ],
		4, [], [qr/key unwrap command failed/],
		'Tang keys replaced: pg_datakey verify says the unwrap command failed (4), and names it');
	write_file($keybin, $saved, 0600);
	command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], 'the cluster\'s own key still verifies');
}

done_testing();
