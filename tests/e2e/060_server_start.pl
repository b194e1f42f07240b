# The server of an encrypted cluster: pg_ctl start, a table written and read
# through psql, restart, read again; the log says the key was loaded and
# verified and nothing about the key or the command; the setting is for
# superusers only; a single-user backend loads the key too; an unwrap command
# with quotes, backslashes and % is read back exactly; an unencrypted cluster
# is left alone.
use strict;
use warnings;
use Test::More;
use FeDatakey::TestLib;
use Digest::MD5 qw(md5_hex);

my $dir = temp_dir();
my $pass = passphrase_file($dir, 'pass', 'server passphrase');
my $marker = "$dir/unwrap-count";
my $wrap = openssl_wrap($pass);
# The README's recipe, plus a trace of every run.
my $unwrap = "echo ran >> $marker; " . openssl_unwrap($pass);

my $pgdata = "$dir/data";
my ($rc, $out, $err) = init_cluster($pgdata, '-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
is($rc, 0, 'initdb -y') or diag $err;
ok(!-e $marker, 'initdb did not run the unwrap command');
my $key = unwrap_key_bytes($pgdata, openssl_unwrap($pass));
is(length $key, 64, 'the key unwraps by hand');

my $node = FeDatakey::TestLib::Cluster->new($pgdata);

# --- start, write, read, restart, read ------------------------------------------------------
($rc, $out, $err) = $node->start;
is($rc, 0, 'pg_ctl start') or diag $err . $node->log;
is(slurp_file($marker), "ran\n", 'the start ran the unwrap command once');
is($node->psql('create table t (id int, v text); insert into t select g, md5(g::text) from generate_series(1, 1000) g; select count(*) from t'),
	'1000', 'a table written through psql');
is($node->psql("select v from t where id = 500"), md5_hex('500'), 'and read');
is($node->psql('show data_encryption_key_unwrap_command'), $unwrap, 'a superuser sees the setting');
# Not in pg_settings for anyone (its reset_val would show the text to
# pg_read_all_settings): see 160.  The context shows in the refusal below.
is($node->psql("select 'NO_SHOW_ALL' = any(pg_settings_get_flags('data_encryption_key_unwrap_command'))"),
	't', 'the setting is left out of SHOW ALL and pg_settings');

# Non-superusers cannot see it.
$node->psql('create role alice login');
my ($prc, $pout, $perr) = $node->psql('show data_encryption_key_unwrap_command', env => { PGUSER => 'alice' });
isnt($prc, 0, 'a non-superuser cannot SHOW the setting');
# (PostgreSQL's own wording, which 16 changed.)
like($perr,
	pg_major() >= 16
	? qr/permission denied to examine "data_encryption_key_unwrap_command"/
	: qr/must be superuser or have privileges of pg_read_all_settings to examine "data_encryption_key_unwrap_command"/,
	'says why');
is(scalar $node->psql("select count(*) from pg_settings where name = 'data_encryption_key_unwrap_command' and setting <> ''",
		env => { PGUSER => 'alice' }),
	'0', 'nor read it in pg_settings');
($prc, $pout, $perr) = $node->psql("set data_encryption_key_unwrap_command = 'x %p'");
isnt($prc, 0, 'the setting cannot be changed while the server runs');
like($perr, qr/cannot be changed without restarting the server/, 'says why');

$node->mark_log;
ok($node->restart, 'restart') or diag $node->log;
is(slurp_file($marker), "ran\nran\n", 'the restart ran the unwrap command once more');
is($node->psql("select count(*), sum(id) from t"), '1000|500500', 'the table reads back after the restart');
my $log = $node->log_since_mark;
my @loaded = $log =~ /LOG:  data encryption key loaded and verified$/mg;
is(scalar @loaded, 1, 'the log says once per start that the key was loaded and verified');
like($log, qr/LOG:  data encryption key loaded and verified\n(?:.*\n)*.*LOG:  database system is ready to accept connections/,
	'before the server accepts connections');
ok($node->stop, 'stop');

$log = $node->log;
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
	my $d = "$dir/tricky";
	($rc, $out, $err) = init_cluster($d, '-y', '--key-wrap-command=cat > "%p"', "--key-unwrap-command=$tricky");
	is($rc, 0, 'initdb with an unwrap command full of quotes, backslashes and %') or diag $err;
	my $n = FeDatakey::TestLib::Cluster->new($d);
	my ($crc, $value) = $n->postgres_C('data_encryption_key_unwrap_command');
	is($crc, 0, 'postgres -C data_encryption_key_unwrap_command');
	is($value, $tricky, 'reads back exactly the command given to initdb');
	ok($n->start, 'the server starts with it') or diag $n->log;
	is($n->psql('show data_encryption_key_unwrap_command'), $tricky, 'SHOW gives it exactly too');
	ok($n->stop, 'stop');
}

# --- an unencrypted cluster: nothing runs, nothing is logged ------------------------------------
{
	unlink $marker;
	my $d = "$dir/plain";
	($rc, $out, $err) = init_cluster($d);
	is($rc, 0, 'initdb without -y') or diag $err;
	ok(!-e "$d/pg_encryption", 'no pg_encryption/');
	open my $fh, '>>', "$d/postgresql.conf" or die;
	print $fh "data_encryption_key_unwrap_command = 'echo ran >> $marker; cat \"%p\"'\n";
	close $fh;
	my $n = FeDatakey::TestLib::Cluster->new($d);
	ok($n->start, 'an unencrypted cluster starts, even with an unwrap command configured') or diag $n->log;
	is($n->psql('select 1'), '1', 'and answers');
	ok($n->stop, 'stop');
	ok(!-e $marker, 'the unwrap command did not run');
	unlike($n->log, qr/encryption/i, 'the log says nothing about encryption');
	($rc, $out, $err) = run_command([ 'postgres', '--single', '-D', $d, 'postgres' ], stdin => "select 1;\n");
	is($rc, 0, 'a single-user backend of the unencrypted cluster') or diag $err;
	ok(!-e $marker, 'did not run the unwrap command either');
}

done_testing();
