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
use Test::More;
use FeDatakey::TestLib;
use FeDatakey::Datakey;

my $dir = temp_dir();
my @pass = map { passphrase_file($dir, "pass$_", "secret number $_") } 0 .. 1;
my ($node, $pgdata) = new_cluster($dir, openssl_wrap($pass[0]), openssl_unwrap($pass[0]));
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};
ok($node->start, 'server starts');
ok($node->stop, 'server stops');
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
	my ($rc, $out, $err) = run_datakey([ 'status', '-D', $pgdata, '--json' ]);
	is($rc, 0, "status with $what") or diag $err;
	ok(!-e $marker, "status with $what runs nothing");
	($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
	is($rc, 0, "verify with $what") or diag $err;
	ok(!-e $marker, "verify with $what runs nothing of it");
	my ($from, $to) = ($n % 2, ($n + 1) % 2);
	$n++;
	($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
		'--new-key-wrap-command=' . openssl_wrap($pass[$to]),
		'--new-key-unwrap-command=' . openssl_unwrap($pass[$to]) ]);
	is($rc, 0, "rewrap with $what") or diag $err;
	ok(!-e $marker, "rewrap with $what runs nothing of it");
	like(slurp_file("$pgdata/postgresql.conf"), qr/\Q${\ openssl_unwrap($pass[$to])}\E/,
		'and updates the data directory\'s postgresql.conf');
	($rc, $out, $err) = run_datakey([ 'repair', '-D', $pgdata ]);
	is($rc, 0, "repair with $what") or diag $err;
	ok(!-e $marker, "repair with $what runs nothing");
}
ok(!-e $marker, 'no marker at all');

# postgresql.auto.conf naming a hostile unwrap command: status and repair run
# no command at all (verify and rewrap, as the owner, run what the server
# would run: that is the owner's own setting).
open my $a, '>>', "$pgdata/postgresql.auto.conf" or die;
print $a "data_encryption_key_unwrap_command = 'touch ''$marker''; cat \"%p\"'\n";
close $a;
my ($rc, $out, $err) = run_datakey([ 'status', '-D', $pgdata ]);
is($rc, 0, 'status with a hostile postgresql.auto.conf') or diag $err;
($rc, $out, $err) = run_datakey([ 'repair', '-D', $pgdata ]);
is($rc, 0, 'repair with a hostile postgresql.auto.conf') or diag $err;
ok(!-e $marker, 'neither runs its command');

# A directory of another user is refused before anything in it is read.
($rc, $out, $err) = run_datakey([ 'status', '-D', '/' ]);
is($rc, 14, 'a directory owned by another user: exit status 14');
like($err, qr{^pg_datakey: error: data directory "/" is owned by another user$}m, 'the message');
like($err, qr{^pg_datakey: detail: It is owned by "root" \(uid 0\); pg_datakey runs as }m, 'the detail');
like($err, qr{^pg_datakey: hint: Run pg_datakey as the owner of the data directory, e\.g\. "runuser -u root -- pg_datakey \.\.\."\.$}m,
	'the hint');

done_testing();
