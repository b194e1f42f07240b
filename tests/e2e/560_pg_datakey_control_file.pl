# pg_datakey decides "encrypted or not" from pg_control, never from whether
# key.bin exists: a missing, unreadable or wrong key file in an encrypted
# cluster, and a key file in an unencrypted one, are errors with their own
# exit status (13) from status, verify and rewrap.
use strict;
use warnings;
use File::Copy qw(copy move);
use FeDatakey::Cluster;
use FeDatakey::Datakey qw(datakey_json);
use FeDatakey::Run qw(run_command);
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use PostgreSQL::Test::Utils qw(command_ok command_exit_is command_checks_all);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'secret');
my $node = FeDatakey::Cluster->new('main');
$node->init(encrypted => 1, wrap => openssl_wrap($pass), unwrap => openssl_unwrap($pass));
my $pgdata = $node->data_dir;
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};
my $key = "$pgdata/pg_encryption/key.bin";
my @rewrap = ('--new-key-wrap-command=-', '--new-key-unwrap-command=-');

command_checks_all([ 'pg_controldata', $pgdata ],
	0, [qr/^Data encryption version:\s+1$/m], [],
	'pg_controldata: initdb -y recorded encryption');
my $status = datakey_json($pgdata);
# The series' pg_control version: stock + 1 (1300 since PostgreSQL 13).
my $control_version = { 15 => 1301, 17 => 1701, 18 => 1801 }->{ FeDatakey::Upstream::major() };
is($status->{pg_control_version}, $control_version, 'status --json: pg_control version');
is($status->{data_encryption_version}, 1, 'status --json: data_encryption_version');
is($status->{data_encryption_key_length}, 128, 'status --json: data_encryption_key_length');
command_checks_all(
	[ 'pg_datakey', 'status', '-D', $pgdata ],
	0,
	[ qr/^Data encryption version:\s+1$/m, qr/^Data encryption key length:\s+128$/m ],
	[], 'status: data encryption version, key length from pg_control');

# key.bin missing
move($key, "$dir/key.bin.saved") or die;
command_checks_all(
	[ 'pg_datakey', 'status', '-D', $pgdata ],
	13,
	[qr/^Encrypted:\s+yes$/m],
	[qr/^pg_datakey: error: data encryption key file "pg_encryption\/key.bin" is missing$/m],
	'status: encrypted without key.bin is exit 13, still says encrypted, with a clear error');
command_checks_all([ 'pg_datakey', 'status', '-D', $pgdata, '--json' ],
	13, [qr/"key_files_disagree":"data encryption key file \\"pg_encryption\/key.bin\\" is missing"/], [],
	'status --json: exit 13 too, and the JSON says why');
command_exit_is([ 'pg_datakey', 'verify', '-D', $pgdata ], 13, 'verify: exit 13');
command_exit_is([ 'pg_datakey', 'rewrap', '-D', $pgdata, @rewrap ], 13, 'rewrap: exit 13');
ok(!-e $key, 'rewrap created no key file');

# key.bin unreadable (a directory in its place)
mkdir $key or die;
command_checks_all([ 'pg_datakey', 'verify', '-D', $pgdata ],
	13, [], [qr/key file "pg_encryption\/key\.bin" is not a regular file\n.*It is a directory\./s],
	'verify: unreadable key.bin is exit 13, saying why');
rmdir $key or die;
move("$dir/key.bin.saved", $key) or die;

# key.bin wrong: the key of another cluster
my $other = FeDatakey::Cluster->new('other');
$other->init(encrypted => 1, wrap => openssl_wrap($pass), unwrap => openssl_unwrap($pass));
copy($key, "$dir/key.bin.saved") or die;
copy($other->data_dir . '/pg_encryption/key.bin', $key) or die;
command_exit_is([ 'pg_datakey', 'verify', '-D', $pgdata ], 6,
	'verify: another cluster\'s key file is a wrong key');
command_exit_is([ 'pg_datakey', 'rewrap', '-D', $pgdata, @rewrap ], 6, 'rewrap refuses it too');
copy("$dir/key.bin.saved", $key) or die;
command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], 'the right key file verifies again');

# A key file in a cluster whose pg_control says "not encrypted".
my $plaindir = FeDatakey::Cluster->new('plain')->data_dir;
command_ok([ 'initdb', '-D', $plaindir, '-A', 'trust', '-N', '--no-instructions' ],
	'an unencrypted cluster');
command_checks_all([ 'pg_datakey', 'status', '-D', $plaindir ],
	0, [qr/^Data encryption version:\s+0$/m], [],
	'status of an unencrypted cluster succeeds: data encryption version 0');
command_exit_is([ 'pg_datakey', 'verify', '-D', $plaindir ], 2, 'verify: not encrypted is exit 2');
mkdir "$plaindir/pg_encryption", 0700 or die;
copy($key, "$plaindir/pg_encryption/key.bin") or die;
copy("$pgdata/pg_encryption/key.check", "$plaindir/pg_encryption/key.check") or die;
command_checks_all(
	[ 'pg_datakey', 'status', '-D', $plaindir ],
	13,
	[qr/^Encrypted:\s+no$/m],
	[qr/^pg_datakey: error: data directory holds a data encryption key, but pg_control says the cluster is not encrypted$/m],
	'status: key files in an unencrypted cluster are exit 13, says not encrypted, with a clear error');
command_exit_is([ 'pg_datakey', 'verify', '-D', $plaindir, '--key-unwrap-command=' . openssl_unwrap($pass) ],
	13, 'verify: exit 13, even with a command that opens the file');
command_exit_is(
	[ 'pg_datakey', 'rewrap', '-D', $plaindir, '--key-unwrap-command=' . openssl_unwrap($pass), @rewrap ],
	13, 'rewrap: exit 13');

# A damaged pg_control is an error, not "not encrypted".
copy("$pgdata/global/pg_control", "$dir/pg_control.saved") or die;
open my $fh, '+<', "$pgdata/global/pg_control" or die;
binmode $fh;
seek $fh, 20, 0;
print $fh "\xff\xff";
close $fh;
command_checks_all(
	[ 'pg_datakey', 'status', '-D', $pgdata ],
	9, [],
	[qr/invalid control file .*\n.*detail: The CRC of the control file does not match/],
	'status: a pg_control with a wrong CRC is an I/O error, saying so');
copy("$dir/pg_control.saved", "$pgdata/global/pg_control") or die;
command_ok([ 'pg_datakey', 'status', '-D', $pgdata ], 'status with the intact pg_control');

done_testing();
