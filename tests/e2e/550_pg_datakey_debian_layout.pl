# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# The Debian/Ubuntu layout: postgresql.conf, pg_hba.conf and pg_ident.conf in
# their own directory, the server started with config_file, hba_file and
# ident_file. pg_datakey finds the configuration the server reads (or is
# told with --config-file): status, verify, rewrap, repair, every crash point
# of the rewrap protocol, and a restart under the new command.
use strict;
use warnings;
use Test::More;
use File::Copy qw(move);
use FeDatakey::TestLib;
use FeDatakey::Datakey;

my $dir = temp_dir();
my @pass = map { passphrase_file($dir, "pass$_", "secret number $_") } 0 .. 1;
my ($node, $pgdata) = new_cluster($dir, openssl_wrap($pass[0]), openssl_unwrap($pass[0]));
my $etc = "$dir/etc";
mkdir $etc or die "mkdir $etc: $!";
move("$pgdata/$_", "$etc/$_") or die "move $_: $!"
  for qw(postgresql.conf pg_hba.conf pg_ident.conf);
my $conf = "$etc/postgresql.conf";
my $options = "-c config_file=$conf -c hba_file=$etc/pg_hba.conf -c ident_file=$etc/pg_ident.conf";
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};

ok($node->start(options => $options), 'server starts on the Debian layout');
$node->safe_psql("CREATE TABLE t AS SELECT 'kept'::text AS v");
is($node->safe_psql('SHOW config_file'), $conf, 'the server reads the moved postgresql.conf');

my $status = datakey_json($pgdata);
is($status->{config_file}, $conf, 'status finds the running server\'s configuration file');
is($status->{config_file_source}, 'postmaster.opts', 'from postmaster.opts');
ok($status->{unwrap_command_configured}, 'and the unwrap command in it');
is_deeply($status->{warnings}, [], 'no warnings');
my $kcv = $status->{key_check_value};

my ($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 0, 'verify with the command of the moved configuration') or diag $err;

# Rewrap while the server runs: the moved file is updated, nothing is
# created in the data directory.
($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
	'--new-key-wrap-command=' . openssl_wrap($pass[1]),
	'--new-key-unwrap-command=' . openssl_unwrap($pass[1]) ]);
is($rc, 0, 'rewrap on the Debian layout') or diag $err;
like(slurp_file($conf), qr/^data_encryption_key_unwrap_command = '\Q${\ openssl_unwrap($pass[1])}\E'$/m,
	'the moved postgresql.conf names the new command');
ok(!-e "$pgdata/postgresql.conf", 'no postgresql.conf appears in the data directory');
ok(!-e "$pgdata/pg_encryption/key.bin.prev", 'verified rewrap keeps no previous key file');
($rc, $out, $err) = run_datakey([ 'repair', '-D', $pgdata ]);
is($rc, 0, 'repair on the Debian layout') or diag $err;
like($out, qr/No interrupted rewrap/, 'nothing to repair');

ok($node->stop, 'server stops');
$status = datakey_json($pgdata);
is($status->{config_file}, $conf, 'stopped: found through the options of the last start');
is($status->{config_file_source}, 'postmaster.opts',
	'read from its config_file option; no program is run');
ok($node->start(options => $options), 'server restarts under the new command');
is($node->safe_psql('SELECT v FROM t'), 'kept', 'data intact');
ok($node->stop, 'server stops');

# --config-file names it outright; a wrong one is refused before anything changes.
($rc, $out, $err) = run_datakey([ 'status', '-D', $pgdata, "--config-file=$conf", '--json' ]);
is($rc, 0, 'status --config-file');
like($out, qr/"config_file_source":"--config-file"/, 'the option wins');
($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata, "--config-file=$conf" ]);
is($rc, 0, 'verify --config-file') or diag $err;
($rc, $out, $err) = run_datakey([ 'repair', '-D', $pgdata, "--config-file=$conf" ]);
is($rc, 0, 'repair --config-file') or diag $err;
my $key_before = slurp_file("$pgdata/pg_encryption/key.bin");
($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata, "--config-file=$dir/nowhere.conf",
	'--key-unwrap-command=' . openssl_unwrap($pass[1]),
	'--new-key-wrap-command=' . openssl_wrap($pass[0]),
	'--new-key-unwrap-command=' . openssl_unwrap($pass[0]) ]);
is($rc, 9, 'rewrap with a configuration file that does not exist is refused');
like($err, qr/configuration file "\Q$dir\E\/nowhere.conf" cannot be updated/, 'naming it');
is(slurp_file("$pgdata/pg_encryption/key.bin"), $key_before, 'key.bin unchanged');
is(datakey_json($pgdata)->{rewrap}{state}, 'none', 'nothing left behind');

# A symbolic link to the configuration: the target is updated, the link stays.
mkdir "$dir/real" or die;
move($conf, "$dir/real/postgresql.conf") or die;
symlink("$dir/real/postgresql.conf", $conf) or die;

# Every crash point, with the server stopped as in 530, then a start.
my $cur = 1;
for my $point (qw(after-unwrap after-wrap after-verify after-journal after-keep-previous
	after-rename after-conf after-drop-previous))
{
	my $next = 1 - $cur;
	($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
		'--new-key-wrap-command=' . openssl_wrap($pass[$next]),
		'--new-key-unwrap-command=' . openssl_unwrap($pass[$next]) ],
		env => { FE_DATAKEY_CRASH_AT => $point });
	is($rc, -9, "$point: pg_datakey was killed") or diag $err;
	($rc, $out, $err) = run_datakey([ 'repair', '-D', $pgdata ]);
	is($rc, 0, "$point: repair succeeds") or diag $err;
	$status = datakey_json($pgdata);
	is($status->{rewrap}{state}, 'none', "$point: consistent after repair");
	is($status->{key_check_value}, $kcv, "$point: same data key");
	ok(!-e "$pgdata/pg_encryption/key.bin.prev", "$point: no previous key file left");
	ok(-l $conf, "$point: the configuration is still a symbolic link");
	($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
	is($rc, 0, "$point: the configured command opens key.bin") or diag $err;
	$cur = $next if $point =~ /after-(journal|keep-previous|rename|conf|drop-previous)/;
	ok($node->start(options => $options), "$point: server starts");
	is($node->safe_psql('SELECT v FROM t'), 'kept', "$point: data intact");
	$node->stop;
}
ok(!-e "$pgdata/postgresql.conf", 'still no postgresql.conf in the data directory');

done_testing();
