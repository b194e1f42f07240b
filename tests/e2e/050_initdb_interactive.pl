# The interactive passphrase recipe exactly as in docs/key-stores.md, openssl
# prompting on the terminal, driven through a real pseudo-terminal:
#
#   initdb -D datadir -y \
#     --key-wrap-command='openssl enc -e -aes-128-cbc -pbkdf2 -out "%p"' \
#     --key-unwrap-command='openssl enc -d -aes-128-cbc -pbkdf2 -in "%p"'
#
# initdb asks for the passphrase exactly as openssl enc -e does (enter, then
# verify) and never for the unwrap; a mismatch fails initdb cleanly. With
# --copy-key-from, the old cluster's passphrase is asked once, then the new
# one twice.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::KeyCommands;
use FeDatakey::Run;
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $wrap = 'openssl enc -e -aes-128-cbc -pbkdf2 -out "%p"';
my $unwrap = 'openssl enc -d -aes-128-cbc -pbkdf2 -in "%p"';
my $passphrase = 'typed at the terminal';

# initdb on a terminal for a node's data directory (with its instructions:
# they say it succeeded).
sub initdb_on_terminal
{
	my ($node, @extra) = @_;
	return pty_start([ 'initdb', '-D', $node->data_dir, '-A', 'trust', '-N', '-y',
		"--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap", @extra ]);
}

# --- the recipe ----------------------------------------------------------------------------------
my $node = FeDatakey::Cluster->new('data');
my $pgdata = $node->data_dir;
{
	my $t = initdb_on_terminal($node);
	ok(defined $t->expect(qr/enter AES-128-CBC encryption password:/i), 'openssl prompts for the passphrase')
	  or diag $t->output;
	$t->send("$passphrase\n");
	ok(defined $t->expect(qr/Verifying - enter AES-128-CBC encryption password:/i), 'and asks to verify it')
	  or diag $t->output;
	$t->send("$passphrase\n");
	is($t->finish, 0, 'initdb succeeds') or diag $t->output;
	my $screen = $t->output;
	like($screen, qr/performing post-bootstrap initialization \.\.\. ok\r?\nwriting data encryption key \.\.\. .*enter AES-128-CBC encryption password:/s,
		'the prompt comes after initdb\'s own backends, while the key is written');
	like($screen, qr/ok\r?\n.*Success\. You can now start the database server using:/s, 'initdb reports success');
	my @prompts = $screen =~ /password:/g;
	is(scalar @prompts, 2, 'exactly two prompts: enter and verify');
	unlike($screen, qr/decryption password/i, 'never a prompt for the unwrap command');
	unlike($screen, qr/\Q$passphrase\E/, 'the passphrase is not echoed');

	my $pf = passphrase_file($dir, 'pf', $passphrase);
	is(length unwrap_key_bytes($pgdata, openssl_unwrap($pf)), 64, 'the key unwraps with the typed passphrase');
	my (undef, $value) = $node->postgres_C('data_encryption_key_unwrap_command');
	is($value, $unwrap, 'postgresql.conf has the interactive unwrap command');
}

# --- a mismatch at "Verifying" fails initdb cleanly ---------------------------------------------
{
	my $n = FeDatakey::Cluster->new('mismatch');
	my $d = $n->data_dir;
	my $t = initdb_on_terminal($n);
	$t->expect(qr/enter AES-128-CBC encryption password:/i);
	$t->send("one passphrase\n");
	$t->expect(qr/Verifying - enter AES-128-CBC encryption password:/i);
	$t->send("another passphrase\n");
	my $rc = $t->finish;
	is($rc, 1, 'initdb fails when the passphrases differ');
	like($t->output, qr/Verify failure/, "openssl's message reaches the terminal");
	like($t->output, qr/error: key wrap command failed/, 'initdb says the wrap command failed');
	like($t->output, qr/removing data directory/, 'and removes the data directory');
	ok(!-e $d, 'nothing left behind');
}

# --- --copy-key-from: the old passphrase once, then the new one twice ------------------------------
{
	my $n = FeDatakey::Cluster->new('copy');
	my $d = $n->data_dir;
	my $t = initdb_on_terminal($n, "--copy-key-from=$pgdata/pg_encryption/key.bin");

	ok(defined $t->expect(qr/enter AES-128-CBC decryption password:/i), 'the key to copy asks for its passphrase')
	  or diag $t->output;
	$t->send("$passphrase\n");
	ok(defined $t->expect(qr/Data encryption is enabled with the 128-bit key of another cluster/),
		'it is unwrapped before the data directory is created') or diag $t->output;
	ok(defined $t->expect(qr/enter AES-128-CBC encryption password:/i), 'then the new passphrase')
	  or diag $t->output;
	$t->send("new passphrase\n");
	$t->expect(qr/Verifying - enter AES-128-CBC encryption password:/i);
	$t->send("new passphrase\n");
	is($t->finish, 0, 'initdb --copy-key-from on the terminal succeeds') or diag $t->output;
	my @prompts = $t->output =~ /password:/g;
	is(scalar @prompts, 3, 'three prompts in all');
	is(slurp_file("$d/pg_encryption/key.check"), slurp_file("$pgdata/pg_encryption/key.check"), 'same key check');
	my $pf = passphrase_file($dir, 'newpf', 'new passphrase');
	is(length unwrap_key_bytes($d, openssl_unwrap($pf)), 64, 'wrapped with the new passphrase');
}

done_testing();
