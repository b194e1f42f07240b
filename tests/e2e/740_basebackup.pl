# pg_basebackup alone of an encrypted primary: standbys from pg_basebackup -R
# in plain and in tar format carry the wrapped key and the configured unwrap
# command, start with the key and stream; pg_datakey on a tar-format backup
# before it is unpacked says that it needs a directory.
use strict;
use warnings;

use FeDatakey::Cluster;
use FeDatakey::Run ();    # run_command by its full name: upstream's Utils exports one too
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap unwrap_key_bytes);
use FeDatakey::Files qw(files_containing file_mode);

my $t0 = time;
my $C = 'FeDatakey::Cluster';
my $base = $C->base_dir;
my $pass = passphrase_file($base, 'datakey.pass', 'basebackup secret');
my ($wrap, $unwrap) = (openssl_wrap($pass), openssl_unwrap($pass));

my $primary = $C->new('primary');
$primary->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
$primary->start;
$primary->safe_psql('postgres', "CREATE TABLE t (id int PRIMARY KEY);
	INSERT INTO t SELECT generate_series(1, 1000)");
my $key = slurp_file($primary->data_dir . '/pg_encryption/key.bin');
my $check = slurp_file($primary->data_dir . '/pg_encryption/key.check');
my $plain = unwrap_key_bytes($primary->data_dir, $unwrap);

sub standby_streams
{
	my ($standby, $label, $rows) = @_;
	my $d = $standby->data_dir;
	is(slurp_file("$d/pg_encryption/key.bin"), $key, "$label: the standby has the wrapped key.bin");
	is(slurp_file("$d/pg_encryption/key.check"), $check, "$label: and the key check");
	is(file_mode("$d/pg_encryption/key.bin"), '0600', "$label: key.bin keeps mode 0600");
	is_deeply([ files_containing($d, $plain) ], [], "$label: no file of the backup holds the plaintext key");
	ok(-e "$d/standby.signal", "$label: -R wrote standby.signal");
	command_ok([ 'pg_datakey', 'verify', '-D', $d ],
		"$label: pg_datakey verify with the copied configuration succeeds");
	$standby->start;
	like(slurp_file($standby->logfile), qr/data encryption key loaded and verified/, "$label: the standby starts with the key");
	$primary->safe_psql('postgres', "INSERT INTO t SELECT generate_series($rows + 1, $rows + 100)");
	ok($standby->poll_query_until('postgres', 'SELECT count(*) FROM t', $rows + 100), "$label: the standby streams");
	is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', "$label: it is a standby");
	$standby->stop;
}

# --- plain format ------------------------------------------------------------------

my $plainsb = $primary->basebackup('plain', '-R', '-Fp');
standby_streams($plainsb, 'plain format', 1000);

# --- tar format -------------------------------------------------------------------

$primary->backup('tar', backup_options => [ '-X', 'stream', '-R', '-Ft' ]);
my $tardir = $primary->backup_dir . '/tar';
ok(-f "$tardir/base.tar" && -f "$tardir/pg_wal.tar", 'tar format: base.tar and pg_wal.tar');
my ($members) = run_command([ 'tar', '-tf', "$tardir/base.tar" ]);
like($members, qr{^pg_encryption/key\.bin$}m, 'tar format: base.tar holds pg_encryption/key.bin');

# pg_datakey works on data directories: on the tar file, and on the directory
# that holds the tar files, it says so and exits non-zero.
for my $target ("$tardir/base.tar", $tardir)
{
	my ($rc, $out, $err) = FeDatakey::Run::run_command([ 'pg_datakey', 'verify', '-D', $target ]);
	isnt($rc, 0, "pg_datakey verify on $target (not unpacked) fails");
	like($err, qr/is not a directory|is not a database cluster directory/,
		'with a message that it needs a data directory');
	diag("pg_datakey verify -D " . ($target =~ s{.*/}{}r) . ": status $rc: $err");
}

my $tarsb = $C->new('tarstandby');
$tarsb->init_from_backup($primary, 'tar', tar_program => 'tar');
standby_streams($tarsb, 'tar format, unpacked', 1100);

$primary->stop;
diag(sprintf('wall time: %.1fs', time - $t0));
done_testing();
