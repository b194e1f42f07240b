# initdb -y with the passphrase recipe (openssl enc -aes-128-cbc -pbkdf2,
# passphrase from a 0600 file) given by options and by the two variables;
# option beats variable; --no-key-wrap and explicit "-"; -y and
# --data-encryption=256; file modes (and -g); --help; the variables alone
# without -y; the plaintext key nowhere on disk except in "-" mode.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::Run;
use PostgreSQL::Test::Utils qw(command_ok slurp_file);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'correct horse battery staple');
my $other = passphrase_file($dir, 'other', 'a different passphrase');
my $wrap = openssl_wrap($pass);
my $unwrap = openssl_unwrap($pass);

sub key_check
{
	my ($pgdata) = @_;
	my $text = slurp_file("$pgdata/pg_encryption/key.check");
	my ($bits) = $text =~ /^bits (\d+)$/m;
	my ($kcv) = $text =~ /^kcv ([0-9a-f]{32})$/m;
	return ($bits, $kcv);
}

sub configured_unwrap
{
	my ($node) = @_;
	my ($rc, $out, $err) = $node->postgres_C('data_encryption_key_unwrap_command');
	is($rc, 0, 'postgres -C reads the setting of ' . $node->data_dir) or diag $err;
	return $out;
}

# A node, initdb run by hand with @args: (node, data directory, rc, stdout,
# stderr).
sub cluster
{
	my ($name, @args) = @_;
	my $node = FeDatakey::Cluster->new($name);
	return ($node, $node->data_dir, $node->initdb(@args));
}

# --- --help ------------------------------------------------------------------
{
	my ($rc, $help) = run_command([ 'initdb', '--help' ]);
	is($rc, 0, 'initdb --help');
	for my $opt ('-y, --data-encryption[=128|256]', '--key-wrap-command=COMMAND',
		'--key-unwrap-command=COMMAND', '--no-key-wrap', '--copy-key-from=FILE')
	{
		like($help, qr/^\s+\Q$opt\E/m, "initdb --help lists $opt");
	}
}

# --- the passphrase recipe by options -------------------------------------------
my ($node, $pgdata, $rc, $out, $err) =
  cluster('by_options', '-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
{
	is($rc, 0, 'initdb -y with the openssl recipe by options') or diag $err;
	like($out, qr/^Data encryption is enabled with a new 128-bit key\.$/m,
		'initdb says the cluster is encrypted');
	like($out, qr/^writing data encryption key \.\.\. ok$/m, 'initdb writes the key at the end');
	unlike($out . $err, qr/\Q$pass\E|openssl/, 'initdb prints neither the commands nor the passphrase file');

	is(file_mode("$pgdata/pg_encryption"), '0700', 'pg_encryption/ is 0700');
	is(file_mode("$pgdata/pg_encryption/key.bin"), '0600', 'key.bin is 0600');
	is(file_mode("$pgdata/pg_encryption/key.check"), '0600', 'key.check is 0600');
	is_deeply([ grep { m{^pg_encryption/.} } list_tree($pgdata) ],
		[ 'pg_encryption/key.bin', 'pg_encryption/key.check' ],
		'pg_encryption/ holds key.bin and key.check only');
	like(slurp_file("$pgdata/pg_encryption/key.bin"), qr/^Salted__/,
		'key.bin is what openssl enc wrote');

	my ($bits, $kcv) = key_check($pgdata);
	is($bits, 128, 'the key check says 128 bits');
	is(configured_unwrap($node), $unwrap, 'postgresql.conf has the unwrap command');

	my $key = unwrap_key_bytes($pgdata, $unwrap);
	is(length $key, 64, 'the unwrapped 128-bit key has 64 bytes (two AES keys, an HMAC key)');
	is_deeply([ files_containing($pgdata, $key) ], [],
		'the plaintext key is in no file of the data directory');
	is_deeply([ files_containing($pgdata, substr($key, 0, 16)) ], [],
		'not even its first sub-key');
}

# --- the same recipe by the two variables ---------------------------------------
{
	my ($n, $d, $rc, $out, $err) = cluster('by_variables', '-y',
		{ env => { PGDATAKEYWRAPCMD => $wrap, PGDATAKEYUNWRAPCMD => $unwrap } });
	is($rc, 0, 'initdb -y with PGDATAKEYWRAPCMD and PGDATAKEYUNWRAPCMD') or diag $err;
	is(configured_unwrap($n), $unwrap, 'postgresql.conf has the variable\'s unwrap command');
	is(length unwrap_key_bytes($d, $unwrap), 64, 'the key unwraps with the passphrase');
	my (undef, $kcv1) = key_check($pgdata);
	my (undef, $kcv2) = key_check($d);
	isnt($kcv1, $kcv2, 'every cluster gets a new key');
}

# --- an option beats its variable ------------------------------------------------
{
	my ($n, $d, $rc, $out, $err) = cluster(
		'option_beats_variable', '-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap",
		{
			env => {
				PGDATAKEYWRAPCMD => openssl_wrap($other),
				PGDATAKEYUNWRAPCMD => openssl_unwrap($other)
			}
		});
	is($rc, 0, 'initdb -y with options and variables') or diag $err;
	is(configured_unwrap($n), $unwrap, 'the unwrap option beats PGDATAKEYUNWRAPCMD');
	is(length unwrap_key_bytes($d, $unwrap), 64, 'the wrap option beats PGDATAKEYWRAPCMD');

	# One option and the other variable mix as they are.
	(my $n2, undef, $rc, $out, $err) = cluster('option_and_variable', '-y', "--key-wrap-command=$wrap",
		{ env => { PGDATAKEYUNWRAPCMD => $unwrap } });
	is($rc, 0, 'wrap option with the unwrap variable') or diag $err;
	is(configured_unwrap($n2), $unwrap, 'the unwrap command comes from the variable');
}

# --- no wrapping: --no-key-wrap and explicit "-" ------------------------------
for my $case ([ 'no_key_wrap', [ '--no-key-wrap' ] ],
	[ 'dash', [ '--key-wrap-command=-', '--key-unwrap-command=-' ] ],
	[ 'dash_variables', [], { PGDATAKEYWRAPCMD => '-', PGDATAKEYUNWRAPCMD => '-' } ],
	[ 'no_key_wrap_beats_variables', [ '--no-key-wrap' ],
		{ PGDATAKEYWRAPCMD => $wrap, PGDATAKEYUNWRAPCMD => $unwrap } ])
{
	my ($name, $args, $env) = @$case;
	my ($n, $d, $rc, $out, $err) = cluster($name, '-y', @$args, { env => $env // {} });
	is($rc, 0, "initdb -y @$args ($name)") or diag $err;
	like($err, qr/warning: the data encryption key is stored without wrapping/,
		"$name: initdb warns that the key is not wrapped");
	is(configured_unwrap($n), '-', "$name: the unwrap command is \"-\"");
	my $key = slurp_file("$d/pg_encryption/key.bin");
	is(length $key, 64, "$name: key.bin holds the 64-byte plaintext key");
	is_deeply([ files_containing($d, $key) ], ['pg_encryption/key.bin'],
		"$name: the plaintext key is in key.bin only");
}

# --- key lengths ----------------------------------------------------------------
for my $case ([ '-y', 128, 64 ], [ '--data-encryption', 128, 64 ],
	[ '--data-encryption=128', 128, 64 ], [ '--data-encryption=256', 256, 96 ],
	[ '-y --data-encryption=256', 256, 96 ], [ '--data-encryption=256 -y', 256, 96 ])
{
	my ($opts, $bits, $len) = @$case;
	(my $name = "bits_$opts") =~ s/\W+/_/g;
	my (undef, $d, $rc, $out, $err) = cluster($name, split(/ /, $opts), '--no-key-wrap');
	is($rc, 0, "initdb $opts") or diag $err;
	like($out, qr/with a new $bits-bit key/, "$opts: initdb says $bits bits");
	my ($b) = key_check($d);
	is($b, $bits, "$opts: the key check says $bits bits");
	is(length slurp_file("$d/pg_encryption/key.bin"), $len, "$opts: the key has $len bytes");
}
{
	my (undef, $d, $rc, $out, $err) = cluster('aes256', '--data-encryption=256',
		"--key-wrap-command=" . openssl_wrap($pass, 'aes-256-cbc'),
		"--key-unwrap-command=" . openssl_unwrap($pass, 'aes-256-cbc'));
	is($rc, 0, 'initdb --data-encryption=256 with openssl aes-256-cbc') or diag $err;
	is(length unwrap_key_bytes($d, openssl_unwrap($pass, 'aes-256-cbc')), 96,
		'the 256-bit key unwraps to 96 bytes');
}

# --- group access ----------------------------------------------------------------
{
	my (undef, $d, $rc, $out, $err) =
	  cluster('group', '-g', '-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
	is($rc, 0, 'initdb -g -y') or diag $err;
	is(file_mode($d), '0750', 'the data directory is 0750');
	is(file_mode("$d/pg_encryption"), '0750', 'pg_encryption/ is 0750 under -g');
	is(file_mode("$d/pg_encryption/key.bin"), '0640', 'key.bin is 0640 under -g');
	is(file_mode("$d/pg_encryption/key.check"), '0640', 'key.check is 0640 under -g');
}

# --- the variables alone, without -y: ignored ---------------------------------------
{
	my ($n, $d, $rc, $out, $err) = cluster('variables_without_y',
		{ env => { PGDATAKEYWRAPCMD => $wrap, PGDATAKEYUNWRAPCMD => $unwrap } });
	is($rc, 0, 'initdb without -y ignores the variables') or diag $err;
	ok(!-e "$d/pg_encryption", 'no pg_encryption/ without -y');
	unlike($out, qr/encryption/i, 'initdb says nothing about encryption');
	is(configured_unwrap($n), '', 'the unwrap command is not set');
	unlike(slurp_file("$d/postgresql.conf"), qr/^data_encryption_key_unwrap_command/m,
		'postgresql.conf does not set it');

	# Even invalid ones.
	(undef, undef, $rc, $out, $err) = cluster('bad_variables_without_y',
		{ env => { PGDATAKEYWRAPCMD => '', PGDATAKEYUNWRAPCMD => 'no placeholder' } });
	is($rc, 0, 'initdb without -y ignores invalid variables too') or diag $err;
}

# --- a value of initdb's own options that looks like ours stays initdb's --------------
{
	my $d = "$dir/--no-key-wrap";
	command_ok([ 'initdb', '-A', 'trust', '-N', '--no-instructions', '-D', $d ],
		'a data directory named --no-key-wrap given to -D');

	ok(-f "$d/PG_VERSION", 'the cluster is in that directory');
	ok(!-e "$d/pg_encryption", 'and is not encrypted');
}

done_testing();
