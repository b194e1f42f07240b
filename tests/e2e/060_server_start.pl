# The server of an encrypted cluster: pg_ctl start, a table written and read
# through psql, restart, read again; the log says the key was loaded and
# verified and nothing about the key or the command; the setting is for
# superusers only; a single-user backend loads the key too; an unwrap command
# with quotes, backslashes and % is read back exactly; an unencrypted cluster
# is left alone.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);
use FeDatakey::Cluster;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::Run;
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'server passphrase');
my $marker = "$dir/unwrap-count";
my $wrap = openssl_wrap($pass);
# The README's recipe, plus a trace of every run.
my $unwrap = "echo ran >> $marker; " . openssl_unwrap($pass);

my $node = FeDatakey::Cluster->new('data');
my $pgdata = $node->data_dir;
my ($rc, $out, $err) = $node->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
is($rc, 0, 'initdb -y') or diag $err;
ok(!-e $marker, 'initdb did not run the unwrap command');
my $key = unwrap_key_bytes($pgdata, openssl_unwrap($pass));
is(length $key, 64, 'the key unwraps by hand');


# --- start, write, read, restart, read ------------------------------------------------------
ok($node->start(fail_ok => 1), 'pg_ctl start');
is(slurp_file($marker), "ran\n", 'the start ran the unwrap command once');
is($node->safe_psql('postgres', 'create table t (id int, v text); insert into t select g, md5(g::text) from generate_series(1, 1000) g; select count(*) from t'),
	'1000', 'a table written through psql');
is($node->safe_psql('postgres', "select v from t where id = 500"), md5_hex('500'), 'and read');
is($node->safe_psql('postgres', 'show data_encryption_key_unwrap_command'), $unwrap, 'a superuser sees the setting');
# Not in pg_settings for anyone (its reset_val would show the text to
# pg_read_all_settings): see 160.  The context shows in the refusal below.
is($node->safe_psql('postgres', "select 'NO_SHOW_ALL' = any(pg_settings_get_flags('data_encryption_key_unwrap_command'))"),
	't', 'the setting is left out of SHOW ALL and pg_settings');

# Non-superusers cannot see it.
$node->safe_psql('postgres', 'create role alice login');
my @alice = (extra_params => [ '-U', 'alice' ]);
my ($pout, $perr);
my $prc = $node->psql('postgres', 'show data_encryption_key_unwrap_command',
	stdout => \$pout, stderr => \$perr, @alice);
isnt($prc, 0, 'a non-superuser cannot SHOW the setting');
# (PostgreSQL's own wording, which 16 changed.)
like($perr,
	$node->pg_version >= 16
	? qr/permission denied to examine "data_encryption_key_unwrap_command"/
	: qr/must be superuser or have privileges of pg_read_all_settings to examine "data_encryption_key_unwrap_command"/,
	'says why');
is($node->safe_psql('postgres',
		"select count(*) from pg_settings where name = 'data_encryption_key_unwrap_command' and setting <> ''",
		@alice),
	'0', 'nor read it in pg_settings');
$prc = $node->psql('postgres', "set data_encryption_key_unwrap_command = 'x %p'",
	stdout => \$pout, stderr => \$perr);
isnt($prc, 0, 'the setting cannot be changed while the server runs');
like($perr, qr/cannot be changed without restarting the server/, 'says why');

my $offset = -s $node->logfile;
ok($node->stop('fast', fail_ok => 1) && $node->start(fail_ok => 1), 'restart');
is(slurp_file($marker), "ran\nran\n", 'the restart ran the unwrap command once more');
is($node->safe_psql('postgres', "select count(*), sum(id) from t"), '1000|500500', 'the table reads back after the restart');
my $log = slurp_file($node->logfile, $offset);
my @loaded = $log =~ /LOG:  data encryption key loaded and verified$/mg;
is(scalar @loaded, 1, 'the log says once per start that the key was loaded and verified');
like($log, qr/LOG:  data encryption key loaded and verified\n(?:.*\n)*.*LOG:  database system is ready to accept connections/,
	'before the server accepts connections');
ok($node->stop('fast', fail_ok => 1), 'stop');

$log = slurp_file($node->logfile);
unlike($log, qr/openssl|\Q$pass\E|\Q$marker\E/, 'the log shows neither the command nor the passphrase file');
is(index($log, $key), -1, 'nor the key');
is_deeply([ files_containing($pgdata, $key) ], [], 'the plaintext key is in no file of the data directory after the runs');
is_deeply([ files_containing($pgdata, unpack('H*', $key)) ], [], 'nor in hex');

# --- single-user mode -------------------------------------------------------------------------
{
	unlink $marker;
	($rc, $out, $err) = run_command([ 'postgres', '--single', '-D', $pgdata, 'postgres' ],
		stdin => "select count(*) from t;\n");
	is($rc, 0, 'a single-user backend of the encrypted cluster') or diag $err;
	like($out, qr/count = "1000"/, 'reads the table');
	is(slurp_file($marker), "ran\n", 'and ran the unwrap command once');

	# And refuses to run without the key.
	($rc, $out, $err) = run_command([ 'postgres', '--single', '-D', $pgdata, '-c', 'data_encryption_key_unwrap_command=exit 1 # %p', 'postgres' ],
		stdin => "select 1;\n");
	isnt($rc, 0, 'a single-user backend whose unwrap command fails exits');
	like($err, qr/FATAL:  key unwrap command failed/, 'says why');
	unlike($out, qr/\?column\?/, 'before running any query');
}

# --- quotes, backslashes and % in the unwrap command ------------------------------------------
{
	my $tricky = "cat \"%p\" # it's \"quoted\", a back\\slash, \\\\two, 100%% and %x, tab\there";
	my $n = FeDatakey::Cluster->new('tricky');
	($rc, $out, $err) = $n->initdb('-y', '--key-wrap-command=cat > "%p"', "--key-unwrap-command=$tricky");
	is($rc, 0, 'initdb with an unwrap command full of quotes, backslashes and %') or diag $err;
	my ($crc, $value) = $n->postgres_C('data_encryption_key_unwrap_command');
	is($crc, 0, 'postgres -C data_encryption_key_unwrap_command');
	is($value, $tricky, 'reads back exactly the command given to initdb');
	ok($n->start(fail_ok => 1), 'the server starts with it');
	is($n->safe_psql('postgres', 'show data_encryption_key_unwrap_command'), $tricky, 'SHOW gives it exactly too');
	ok($n->stop('fast', fail_ok => 1), 'stop');
}

# --- an unencrypted cluster: nothing runs, nothing is logged ------------------------------------
{
	unlink $marker;
	my $n = FeDatakey::Cluster->new('plain');
	my $d = $n->data_dir;
	($rc, $out, $err) = $n->initdb;
	is($rc, 0, 'initdb without -y') or diag $err;
	ok(!-e "$d/pg_encryption", 'no pg_encryption/');
	$n->append_conf('postgresql.conf', "data_encryption_key_unwrap_command = 'echo ran >> $marker; cat \"%p\"'");
	ok($n->start(fail_ok => 1), 'an unencrypted cluster starts, even with an unwrap command configured');
	is($n->safe_psql('postgres', 'select 1'), '1', 'and answers');
	ok($n->stop('fast', fail_ok => 1), 'stop');
	ok(!-e $marker, 'the unwrap command did not run');
	unlike(slurp_file($n->logfile), qr/encryption/i, 'the log says nothing about encryption');

	($rc, $out, $err) = run_command([ 'postgres', '--single', '-D', $d, 'postgres' ], stdin => "select 1;\n");
	is($rc, 0, 'a single-user backend of the unencrypted cluster') or diag $err;
	ok(!-e $marker, 'did not run the unwrap command either');
}

done_testing();
