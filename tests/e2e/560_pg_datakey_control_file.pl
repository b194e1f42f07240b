# pg_datakey decides "encrypted or not" from pg_control, never from whether
# key.bin exists: a missing, unreadable or wrong key file in an encrypted
# cluster, and a key file in an unencrypted one, are errors with their own
# exit status (13) from status, verify and rewrap.
use strict;
use warnings;
use Test::More;
use File::Copy qw(copy move);
use FeDatakey::TestLib;
use FeDatakey::Datakey;

my $dir = temp_dir();
my $pass = passphrase_file($dir, 'pass', 'secret');
my ($node, $pgdata) = new_cluster($dir, openssl_wrap($pass), openssl_unwrap($pass));
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};
my $key = "$pgdata/pg_encryption/key.bin";
my @rewrap = ('--new-key-wrap-command=-', '--new-key-unwrap-command=-');

my ($rc, $out, $err) = run_command([ 'pg_controldata', $pgdata ]);
like($out, qr/^Data encryption version:\s+1$/m, 'pg_controldata: initdb -y recorded encryption');
my $status = datakey_json($pgdata);
# The series' pg_control version: stock + 1 (1300 since PostgreSQL 13).
my $control_version = { 15 => 1301, 17 => 1701, 18 => 1801 }->{ pg_major() };
is($status->{pg_control_version}, $control_version, 'status --json: pg_control version');
is($status->{data_encryption_version}, 1, 'status --json: data_encryption_version');
is($status->{data_encryption_key_length}, 128, 'status --json: data_encryption_key_length');
($rc, $out) = run_datakey([ 'status', '-D', $pgdata ]);
like($out, qr/^Data encryption version:\s+1$/m, 'status: data encryption version');
like($out, qr/^Data encryption key length:\s+128$/m, 'status: key length from pg_control');

# key.bin missing
move($key, "$dir/key.bin.saved") or die;
($rc, $out, $err) = run_datakey([ 'status', '-D', $pgdata ]);
is($rc, 13, 'status: encrypted without key.bin is exit 13');
like($out, qr/^Encrypted:\s+yes$/m, 'status still says encrypted');
like($err, qr/^pg_datakey: error: data encryption key file "pg_encryption\/key.bin" is missing$/m,
	'with a clear error');
($rc, $out, $err) = run_datakey([ 'status', '-D', $pgdata, '--json' ]);
is($rc, 13, 'status --json: exit 13 too');
like($out, qr/"key_files_disagree":"data encryption key file \\"pg_encryption\/key.bin\\" is missing"/,
	'and the JSON says why');
($rc, undef, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 13, 'verify: exit 13');
($rc, undef, $err) = run_datakey([ 'rewrap', '-D', $pgdata, @rewrap ]);
is($rc, 13, 'rewrap: exit 13');
ok(!-e $key, 'rewrap created no key file');

# key.bin unreadable (a directory in its place)
mkdir $key or die;
($rc, undef, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 13, 'verify: unreadable key.bin is exit 13');
like($err, qr/is unreadable: it is not a regular file/, 'saying why');
rmdir $key or die;
move("$dir/key.bin.saved", $key) or die;

# key.bin wrong: the key of another cluster
my ($other) = new_cluster("$dir/other", openssl_wrap($pass), openssl_unwrap($pass));
copy($key, "$dir/key.bin.saved") or die;
copy($other->data_dir . '/pg_encryption/key.bin', $key) or die;
($rc, undef, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 6, 'verify: another cluster\'s key file is a wrong key');
($rc, undef, $err) = run_datakey([ 'rewrap', '-D', $pgdata, @rewrap ]);
is($rc, 6, 'rewrap refuses it too');
copy("$dir/key.bin.saved", $key) or die;
($rc) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 0, 'the right key file verifies again');

# A key file in a cluster whose pg_control says "not encrypted".
my $plain = FeDatakey::TestLib::Cluster->new("$dir/plain");
($rc, undef, $err) = $plain->initdb;
is($rc, 0, 'an unencrypted cluster') or diag $err;
my $plaindir = $plain->data_dir;
($rc, $out, $err) = run_datakey([ 'status', '-D', $plaindir ]);
is($rc, 0, 'status of an unencrypted cluster succeeds');
like($out, qr/^Data encryption version:\s+0$/m, 'data encryption version 0');
($rc, undef, $err) = run_datakey([ 'verify', '-D', $plaindir ]);
is($rc, 2, 'verify: not encrypted is exit 2');
mkdir "$plaindir/pg_encryption", 0700 or die;
copy($key, "$plaindir/pg_encryption/key.bin") or die;
copy("$pgdata/pg_encryption/key.check", "$plaindir/pg_encryption/key.check") or die;
($rc, $out, $err) = run_datakey([ 'status', '-D', $plaindir ]);
is($rc, 13, 'status: key files in an unencrypted cluster are exit 13');
like($out, qr/^Encrypted:\s+no$/m, 'status says not encrypted');
like($err,
	qr/^pg_datakey: error: data directory holds a data encryption key, but pg_control says the cluster is not encrypted$/m,
	'with a clear error');
($rc, undef, $err) = run_datakey([ 'verify', '-D', $plaindir, '--key-unwrap-command=' . openssl_unwrap($pass) ]);
is($rc, 13, 'verify: exit 13, even with a command that opens the file');
($rc, undef, $err) = run_datakey([ 'rewrap', '-D', $plaindir,
	'--key-unwrap-command=' . openssl_unwrap($pass), @rewrap ]);
is($rc, 13, 'rewrap: exit 13');

# A damaged pg_control is an error, not "not encrypted".
copy("$pgdata/global/pg_control", "$dir/pg_control.saved") or die;
open my $fh, '+<', "$pgdata/global/pg_control" or die;
binmode $fh;
seek $fh, 20, 0;
print $fh "\xff\xff";
close $fh;
($rc, undef, $err) = run_datakey([ 'status', '-D', $pgdata ]);
is($rc, 9, 'status: a pg_control with a wrong CRC is an I/O error');
like($err, qr/invalid control file .*\n.*detail: The CRC of the control file does not match/,
	'saying so');
copy("$dir/pg_control.saved", "$pgdata/global/pg_control") or die;
($rc) = run_datakey([ 'status', '-D', $pgdata ]);
is($rc, 0, 'status with the intact pg_control');

done_testing();
