# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# Files in the data directory are its owner's word: pg_datakey, run as that
# owner, never runs a program that postmaster.opts names, nor any of its
# other words (only config_file and -D are read from it), and status and
# repair never run the command postgresql.auto.conf names. The refusal of
# root and of other users with planted files runs as root, in
# tests/root/pg_datakey_trust.sh; here, as the unprivileged owner, only the
# refusal of a directory owned by another user ("/", root's) is shown.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use PostgreSQL::Test::Utils qw(slurp_file command_ok command_checks_all);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my @pass = map { passphrase_file($dir, "pass$_", "secret number $_") } 0 .. 1;
my $node = FeDatakey::Cluster->new('main');
$node->init(encrypted => 1, wrap => openssl_wrap($pass[0]), unwrap => openssl_unwrap($pass[0]));
my $pgdata = $node->data_dir;
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};
ok($node->start(fail_ok => 1), 'server starts');
ok($node->stop('fast', fail_ok => 1), 'server stops');
my $opts_file = "$pgdata/postmaster.opts";
like(slurp_file($opts_file), qr{/postgres"? }, 'the server wrote postmaster.opts');

my $marker = "$dir/marker";
my $script = "$pgdata/evil.sh";
open my $fh, '>', $script or die "$script: $!";
print $fh "#!/bin/sh\ntouch '$marker'\necho '$pgdata/postgresql.conf'\n";
close $fh;
chmod 0755, $script or die;

my %hostile = (
	'/bin/sh with -c touch' => qq{/bin/sh "-c" "touch '$marker'"\n},
	'a script in the data directory' => qq{$script "-D" "$pgdata"\n},
	'a script with shared_preload_libraries' =>
	  qq{$script "-D" "$pgdata" "-c" "shared_preload_libraries=$dir/evil.so"\n},
	'a script with a -D that does not exist' => qq{$script "-D" "$dir/no-such-etc"\n},
);
my $n = 0;
for my $what (sort keys %hostile)
{
	open my $o, '>', $opts_file or die;
	print $o $hostile{$what};
	close $o;
	command_ok([ 'pg_datakey', 'status', '-D', $pgdata, '--json' ], "status with $what");
	ok(!-e $marker, "status with $what runs nothing");
	command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], "verify with $what");
	ok(!-e $marker, "verify with $what runs nothing of it");
	my ($from, $to) = ($n % 2, ($n + 1) % 2);
	$n++;
	command_ok(
		[
			'pg_datakey', 'rewrap', '-D', $pgdata,
			'--new-key-wrap-command=' . openssl_wrap($pass[$to]),
			'--new-key-unwrap-command=' . openssl_unwrap($pass[$to])
		],
		"rewrap with $what");
	ok(!-e $marker, "rewrap with $what runs nothing of it");
	like(slurp_file("$pgdata/postgresql.conf"), qr/\Q${\ openssl_unwrap($pass[$to])}\E/,
		'and updates the data directory\'s postgresql.conf');
	command_ok([ 'pg_datakey', 'repair', '-D', $pgdata ], "repair with $what");
	ok(!-e $marker, "repair with $what runs nothing");
}
ok(!-e $marker, 'no marker at all');

# postgresql.auto.conf naming a hostile unwrap command: status and repair run
# no command at all (verify and rewrap, as the owner, run what the server
# would run: that is the owner's own setting).
open my $a, '>>', "$pgdata/postgresql.auto.conf" or die;
print $a "data_encryption_key_unwrap_command = 'touch ''$marker''; cat \"%p\"'\n";
close $a;
command_ok([ 'pg_datakey', 'status', '-D', $pgdata ], 'status with a hostile postgresql.auto.conf');
command_ok([ 'pg_datakey', 'repair', '-D', $pgdata ], 'repair with a hostile postgresql.auto.conf');
ok(!-e $marker, 'neither runs its command');

# A directory of another user is refused before anything in it is read.
command_checks_all(
	[ 'pg_datakey', 'status', '-D', '/' ],
	14, [],
	[
		qr{^pg_datakey: error: data directory "/" is owned by another user$}m,
		qr{^pg_datakey: detail: It is owned by "root" \(uid 0\); pg_datakey runs as }m,
		qr{^pg_datakey: hint: Run pg_datakey as the owner of the data directory, e\.g\. "runuser -u root -- pg_datakey \.\.\."\.$}m
	],
	'a directory owned by another user: exit status 14, the message, the detail and the hint');

done_testing();
