# pg_combinebackup (17 and later) on an encrypted cluster, with PostgreSQL's
# own PostgreSQL::Test::Cluster: a full backup and two incremental ones are
# combined; the result holds the key of the last backup, starts with it,
# says encrypted in pg_control and has every row. The passphrase is rotated
# (pg_datakey rewrap --edit-auto-conf) between the first and the second
# incremental backup: the combined cluster must carry the new wrapping and
# the new command together, not a mix of the two. Without its key.bin the
# combined cluster refuses to start.
# Versions: 17 18
use strict;
use warnings;

use FeDatakey::Upstream;
use FeDatakey::Run ();    # run_command by its full name: upstream's Utils exports one too
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap unwrap_key_bytes);
use FeDatakey::Files qw(files_containing);

my $secrets = PostgreSQL::Test::Utils::tempdir();
my $old_pass = passphrase_file($secrets, 'old.pass', 'combinebackup old secret');
my $new_pass = passphrase_file($secrets, 'new.pass', 'combinebackup new secret');

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(
	allows_streaming => 1,
	extra => [
		'-y', '--key-wrap-command=' . openssl_wrap($old_pass),
		'--key-unwrap-command=' . openssl_unwrap($old_pass)
	]);
$primary->append_conf('postgresql.conf', "summarize_wal = on\n");
$primary->start;
like(slurp_file($primary->logfile), qr/data encryption key loaded and verified/,
	'the primary starts with its key');
my $plain = unwrap_key_bytes($primary->data_dir, openssl_unwrap($old_pass));

$primary->safe_psql('postgres',
	"CREATE TABLE t (id int PRIMARY KEY, v text);
	 INSERT INTO t SELECT g, 'full ' || g FROM generate_series(1, 1000) g");
$primary->backup('full');

$primary->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'incr1 ' || g FROM generate_series(1001, 2000) g;
	 UPDATE t SET v = 'updated' WHERE id <= 100");
$primary->backup('incr1',
	backup_options => [ '--incremental', $primary->backup_dir . '/full/backup_manifest' ]);

# Rotate the passphrase while the primary runs.
command_ok(
	[
		'pg_datakey', 'rewrap', '-D', $primary->data_dir, '--edit-auto-conf',
		'--new-key-wrap-command=' . openssl_wrap($new_pass),
		'--new-key-unwrap-command=' . openssl_unwrap($new_pass)
	],
	'pg_datakey rewrap to the new passphrase while the primary runs');
$primary->reload;
my $key_bin = slurp_file($primary->data_dir . '/pg_encryption/key.bin');
my $key_check = slurp_file($primary->data_dir . '/pg_encryption/key.check');

$primary->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'incr2 ' || g FROM generate_series(2001, 3000) g;
	 DELETE FROM t WHERE id BETWEEN 500 AND 599");
$primary->backup('incr2',
	backup_options => [ '--incremental', $primary->backup_dir . '/incr1/backup_manifest' ]);
my $expected = $primary->safe_psql('postgres', 'SELECT count(*), sum(id), md5(string_agg(v, \',\' ORDER BY id)) FROM t');

isnt(slurp_file($primary->backup_dir . '/full/pg_encryption/key.bin'),
	$key_bin, 'the full backup holds the key wrapped under the old passphrase');

my $combined = PostgreSQL::Test::Cluster->new('combined');
$combined->init_from_backup($primary, 'incr2', combine_with_prior => [ 'full', 'incr1' ]);
my $d = $combined->data_dir;
ok(-f "$d/pg_encryption/key.bin", 'pg_combinebackup wrote pg_encryption/key.bin');
is(slurp_file("$d/pg_encryption/key.bin"), $key_bin, 'it is the last backup\'s key.bin (new passphrase)');
is(slurp_file("$d/pg_encryption/key.check"), $key_check, 'and its key check');
is(sprintf('%04o', (stat "$d/pg_encryption/key.bin")[2] & 07777), '0600', 'key.bin has mode 0600');
is_deeply([ files_containing($d, $plain) ], [], 'no file of the combined cluster holds the plaintext key');

my $control = run_command_out([ 'pg_controldata', $d ]);
my ($version) = $control =~ /^Data encryption version:\s+(\d+)$/m;
my ($bits) = $control =~ /^Data encryption key length:\s+(\d+)$/m;
ok(defined $version && $version > 0, 'pg_controldata of the combined cluster: encrypted')
  or diag($control);
is($bits, 128, 'pg_controldata: a 128-bit key');

command_ok([ 'pg_datakey', 'verify', '-D', $d ],
	'pg_datakey verify of the combined cluster with its configured command');

# Without key.bin the combined cluster must not start (encrypted in
# pg_control): fail closed, then put the file back.
rename("$d/pg_encryption/key.bin", "$d/key.bin.away") or die "rename: $!";
ok(!$combined->start(fail_ok => 1), 'without key.bin the combined cluster does not start');
like(slurp_file($combined->logfile), qr/FATAL:  data encryption key file ".*key\.bin" is missing/,
	'the log says the key file is missing');
rename("$d/key.bin.away", "$d/pg_encryption/key.bin") or die "rename: $!";

my $offset = -s $combined->logfile;
$combined->start;
like(slurp_file($combined->logfile, $offset), qr/LOG:  data encryption key loaded and verified/,
	'the combined cluster starts with the key under the new passphrase');
is($combined->safe_psql('postgres', 'SELECT count(*), sum(id), md5(string_agg(v, \',\' ORDER BY id)) FROM t'),
	$expected, 'every row is there, as on the primary');
is($combined->safe_psql('postgres', "SELECT count(*) FROM t WHERE v = 'updated'"), '100',
	'with the update of the first incremental backup');
is($combined->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id BETWEEN 500 AND 599'), '0',
	'and the delete of the second');

$combined->stop;
$primary->stop;
done_testing();

sub run_command_out
{
	my ($cmd) = @_;
	my ($rc, $out, $err) = FeDatakey::Run::run_command($cmd);
	die "@$cmd failed: $err" if $rc != 0;
	return $out;
}
