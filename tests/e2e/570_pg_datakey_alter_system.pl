# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# postgresql.auto.conf belongs to the server while it runs (ALTER SYSTEM):
# pg_datakey never uses the server's temporary name, and while a postmaster
# holds the data directory it refuses to rewrite postgresql.auto.conf unless
# told to with --edit-auto-conf.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Datakey qw(datakey_json);
use FeDatakey::Run qw(run_command);
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use FeDatakey::Files qw(write_file);
use PostgreSQL::Test::Utils qw(slurp_file command_ok command_checks_all);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my @pass = map { passphrase_file($dir, "pass$_", "secret $_") } 0 .. 2;
my $node = FeDatakey::Cluster->new('main');
$node->init(encrypted => 1, wrap => openssl_wrap($pass[0]), unwrap => openssl_unwrap($pass[0]));
my $pgdata = $node->data_dir;
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};
my $auto = "$pgdata/postgresql.auto.conf";
my $key = "$pgdata/pg_encryption/key.bin";

ok($node->start(fail_ok => 1), 'server starts');
my $quoted = openssl_unwrap($pass[0]);
$quoted =~ s/'/''/g;
$node->safe_psql('postgres', "ALTER SYSTEM SET data_encryption_key_unwrap_command = '$quoted'");
like(slurp_file($auto), qr/data_encryption_key_unwrap_command/, 'ALTER SYSTEM set the command');

# The server's temporary name, as an ALTER SYSTEM in progress leaves it.
write_file("$auto.tmp", "# the server's own, half written\n");
my $auto_before = slurp_file($auto);
my $key_before = slurp_file($key);
my @rewrap = ('pg_datakey', 'rewrap', '-D', $pgdata);
my @new = ('--new-key-wrap-command=' . openssl_wrap($pass[1]),
	'--new-key-unwrap-command=' . openssl_unwrap($pass[1]));
command_checks_all(
	[ @rewrap, @new ],
	11, [],
	[
		qr/postgresql.auto.conf sets the unwrap command and the server is running/,
		qr/hint: .*--edit-auto-conf/
	],
	'rewrap refuses while the server runs and postgresql.auto.conf sets the command, '
	  . 'saying why and how to proceed');
is(slurp_file($auto), $auto_before, 'postgresql.auto.conf unchanged');
is(slurp_file($key), $key_before, 'key.bin unchanged');
is(datakey_json($pgdata)->{rewrap}{state}, 'none', 'nothing left behind');

command_ok([ @rewrap, '--edit-auto-conf', @new ], '--edit-auto-conf rewraps while the server runs');
like(slurp_file($auto), qr/\Q${\ openssl_unwrap($pass[1])}\E/, 'postgresql.auto.conf names the new command');
is(slurp_file("$auto.tmp"), "# the server's own, half written\n",
	'the server\'s temporary file is not touched');
unlink "$auto.tmp";
is( $node->safe_psql(
		'postgres',
		"SELECT setting FROM pg_file_settings WHERE name = 'data_encryption_key_unwrap_command' "
		  . "AND sourcefile LIKE '%postgresql.auto.conf'"),
	openssl_unwrap($pass[1]),
	'the server parses the rewritten file to the new command');

# Once the setting is removed from postgresql.auto.conf, postgresql.conf
# alone is updated and the server may run.
$node->safe_psql('postgres', 'ALTER SYSTEM RESET data_encryption_key_unwrap_command');
command_ok(
	[
		@rewrap, '--key-unwrap-command=' . openssl_unwrap($pass[1]),
		'--new-key-wrap-command=' . openssl_wrap($pass[2]),
		'--new-key-unwrap-command=' . openssl_unwrap($pass[2])
	],
	'without the setting in postgresql.auto.conf a running server is no obstacle');
ok($node->stop('fast', fail_ok => 1), 'server stops');
ok($node->start(fail_ok => 1), 'server restarts with the new command');
$node->stop;

# Stopped: postgresql.auto.conf is pg_datakey's to update.
$node->start;
$node->safe_psql('postgres',
	"ALTER SYSTEM SET data_encryption_key_unwrap_command = '" . (openssl_unwrap($pass[2]) =~ s/'/''/gr) . "'");
$node->stop;
command_ok([ @rewrap, @new ], 'rewrap of a stopped cluster updates postgresql.auto.conf');
like(slurp_file($auto), qr/\Q${\ openssl_unwrap($pass[1])}\E/, 'with the new command');
ok($node->start(fail_ok => 1), 'server starts');
$node->stop;

done_testing();
