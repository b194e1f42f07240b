# initdb --copy-key-from=FILE: the new cluster gets the key of another one
# (the same key check), unwrapped with the unwrap command in that cluster's
# data directory and wrapped with the new wrap command. Refused, with
# nothing created, when the key does not unwrap, does not match its key
# check, or contradicts --data-encryption=N.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::Run;
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'old passphrase');
my $wrap = openssl_wrap($pass);
my $unwrap = openssl_unwrap($pass);

sub kcv
{
	my ($pgdata) = @_;
	return slurp_file("$pgdata/pg_encryption/key.check");
}

# Each cluster is a node: initdb by hand, its data directory ("pgdata") in a
# directory of its own.
sub cluster
{
	my ($name, @args) = @_;
	my $node = FeDatakey::Cluster->new($name);
	return ($node, $node->data_dir, $node->initdb(@args));
}

my ($old_node, $old, $rc, $out, $err) = cluster('old', '-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
is($rc, 0, 'the cluster to copy from') or diag $err;
my $key = unwrap_key_bytes($old, $unwrap);

# Copy, wrapping with the same commands.
{
	(my $node, my $new, $rc, $out, $err) = cluster('new', '-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap",
		"--copy-key-from=$old/pg_encryption/key.bin");
	is($rc, 0, 'initdb --copy-key-from') or diag $err;
	like($out, qr/Data encryption is enabled with the 128-bit key of another cluster\./, 'says the key is copied');
	is(kcv($new), kcv($old), 'the new cluster has the same key check');
	is(unwrap_key_bytes($new, $unwrap), $key, 'and the same key');
	isnt(slurp_file("$new/pg_encryption/key.bin"), slurp_file("$old/pg_encryption/key.bin"),
		'wrapped anew (openssl salts every encryption)');
	ok($node->start(fail_ok => 1), 'the new cluster starts');
	ok($node->stop('fast', fail_ok => 1), 'and stops');
}

# Copy with a relative path, wrapping with a new passphrase by the variables.
{
	my $pass2 = passphrase_file($dir, 'pass2', 'new passphrase');
	my $node = FeDatakey::Cluster->new('new_passphrase');
	my $new = $node->data_dir;
	# The unwrap command serves for the old cluster's key and then goes into
	# the new cluster's postgresql.conf: a command that works for both reads
	# the passphrase file named by the directory it runs in.
	my $either = 'openssl enc -d -aes-128-cbc -pbkdf2 -pass file:"$(cat ../passfile)" -in "%p"';
	write_file($_->basedir . '/passfile', $pass) for $old_node, $node;
	($rc, $out, $err) = $node->initdb('-y', '--copy-key-from=pgdata/pg_encryption/key.bin',
		{
			cwd => $old_node->basedir,
			env => { PGDATAKEYWRAPCMD => openssl_wrap($pass2), PGDATAKEYUNWRAPCMD => $either }
		});
	is($rc, 0, 'initdb --copy-key-from with a relative path and the variables') or diag $err;
	is(kcv($new), kcv($old), 'same key check');
	is(unwrap_key_bytes($new, openssl_unwrap($pass2)), $key, 'the key is wrapped with the new passphrase');
	# (Compared with the key, not by openssl's exit status: a wrong
	# passphrase decrypts without error about once in 256 salts.)
	($rc, $out) = run_command([ 'openssl', 'enc', '-d', '-aes-128-cbc', '-pbkdf2', '-pass', "file:$pass",
		'-in', "$new/pg_encryption/key.bin" ]);
	isnt($out, $key, 'the old passphrase does not open the new key file');
}

# Copy a key stored without wrapping, and wrap it.
{
	(undef, my $plain, $rc, $out, $err) = cluster('plain', '-y', '--no-key-wrap');
	is($rc, 0, 'a cluster without wrapping') or diag $err;
	(undef, my $new, $rc, $out, $err) = cluster('from_plain', '-y', '--key-wrap-command=-', '--key-unwrap-command=-',
		"--copy-key-from=$plain/pg_encryption/key.bin");
	is($rc, 0, 'copy from it in "-" mode') or diag $err;
	is(kcv($new), kcv($plain), 'same key check');
}

# A 256-bit key: its length is kept; --data-encryption=256 agrees, 128 does not.
{
	(undef, my $big, $rc, $out, $err) = cluster('big', '--data-encryption=256', '--no-key-wrap');
	is($rc, 0, 'a cluster with a 256-bit key') or diag $err;
	for my $opt ('-y', '--data-encryption=256')
	{
		(my $name = "copy256$opt") =~ s/\W+/_/g;
		(undef, my $new, $rc, $out, $err) = cluster($name, $opt, '--no-key-wrap', "--copy-key-from=$big/pg_encryption/key.bin");
		is($rc, 0, "$opt --copy-key-from a 256-bit key") or diag $err;
		like($out, qr/256-bit key of another cluster/, "$opt: keeps 256 bits");
		is(kcv($new), kcv($big), "$opt: same key check");
	}
	(undef, my $new, $rc, $out, $err) = cluster('copy256_as_128', '--data-encryption=128', '--no-key-wrap',
		"--copy-key-from=$big/pg_encryption/key.bin");
	is($rc, 1, '--data-encryption=128 with a 256-bit key to copy is refused');
	like($err, qr/error: key length of the copied key does not match --data-encryption/, 'says why');
	like($err, qr/detail: .* is a 256-bit key, but --data-encryption=128 was given\./, 'with the lengths');
	ok(!-e $new, 'nothing created');
}

# Refusals: wrong passphrase, a key that does not match its key check, a
# file without a key check that is not a key.
{
	my $node = FeDatakey::Cluster->new('refused');
	my $new = $node->data_dir;
	($rc, $out, $err) = $node->initdb('-y', "--key-wrap-command=$wrap",
		'--key-unwrap-command=' . openssl_unwrap(rejected_passphrase("$old/pg_encryption/key.bin", $dir, 'wrong')),
		"--copy-key-from=$old/pg_encryption/key.bin");
	is($rc, 1, 'wrong passphrase for the key to copy: refused');
	like($err, qr/error: key unwrap command failed/, 'says the unwrap command failed');
	like($err, qr/bad decrypt/, "openssl's own message reaches the user");
	ok(!-e $new, 'nothing created');

	# A copy of the old cluster's pg_encryption/ with another key's check.
	(undef, my $other) = cluster('other', '-y', '--no-key-wrap');
	mkdir "$dir/mixed";
	mkdir "$dir/mixed/pg_encryption";
	write_file("$dir/mixed/pg_encryption/key.bin", slurp_file("$old/pg_encryption/key.bin"), 0600);
	write_file("$dir/mixed/pg_encryption/key.check", slurp_file("$other/pg_encryption/key.check"), 0600);
	($rc, $out, $err) = $node->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap",
		"--copy-key-from=$dir/mixed/pg_encryption/key.bin");
	is($rc, 1, 'a key that does not match its key check: refused');
	like($err, qr/error: .*does not match/, 'says it does not match');
	ok(!-e $new, 'nothing created');

	# A lone file that is not a key (no key check beside it: length checked).
	write_file("$dir/notakey.bin", 'short', 0600);
	($rc, $out, $err) = $node->initdb('-y', '--no-key-wrap', "--copy-key-from=$dir/notakey.bin");
	is($rc, 1, 'a lone file of the wrong length: refused');
	like($err, qr/error: data encryption key from key file .* has an invalid length\n.*detail: Expected 64 bytes or 96 bytes, got 5\./, "says it has the wrong length");
	ok(!-e $new, 'nothing created');
}

done_testing();
