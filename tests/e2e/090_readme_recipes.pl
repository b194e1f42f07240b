# The passphrase recipes, read from the pages users read them in
# (FeDatakey::Recipes: docs/key-stores.md, and README.md for the one it
# keeps) so that the commands users copy are the commands that are tested:
#   - "A passphrase, typed at the terminal": initdb and a foreground server
#     on a pseudo-terminal, openssl prompting;
#   - "A passphrase from a file" (README.md): initdb -y with the two
#     variables, pg_ctl;
#   - "Rotating the passphrase or master key": pg_datakey rewrap while the
#     server runs, and the hand-typed pipeline the recipe explains it with.
# The PKCS#11, KMIP, Tang and TPM 2.0 recipes are run by 610-640 against
# real services, the AWS one by 650 against moto (a local KMS emulator); the
# Google Cloud, Azure and Vault recipes need the vendors' tools and accounts
# and are not run.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::KeyCommands qw(passphrase_file unwrap_key_bytes);
use FeDatakey::Recipes;
use FeDatakey::Run qw(run_command pty_start);
use PostgreSQL::Test::Utils ();
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $passphrase = 'correct horse battery staple';

# --- typed at the terminal --------------------------------------------------------------
{
	my $text = recipe_section('A passphrase, typed at the terminal');
	my $wrap = quoted_after($text, '--key-wrap-command');
	my $unwrap = quoted_after($text, '--key-unwrap-command');
	like($text, qr/^postgres -D data\b/m, 'the recipe starts the server in the foreground');

	my $node = FeDatakey::Cluster->new('interactive');
	my $pgdata = $node->data_dir;
	my $t = pty_start([ 'initdb', '-D', $pgdata, '-A', 'trust', '-N', '-y',
		"--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap" ]);
	ok(defined $t->expect(qr/enter [\w-]+ encryption password:/i), 'initdb: openssl asks for a passphrase')
	  or diag $t->output;
	$t->send("$passphrase\n");
	ok(defined $t->expect(qr/Verifying - enter [\w-]+ encryption password:/i), 'and to verify it')
	  or diag $t->output;
	$t->send("$passphrase\n");
	is($t->finish, 0, 'initdb with docs/key-stores.md\'s terminal recipe succeeds') or diag $t->output;

	# The node's port and socket directory, in its postgresql.conf.
	$node->configure_server;
	my $server = pty_start([ 'postgres', '-D', $pgdata ]);
	ok(defined $server->expect(qr/enter [\w-]+ decryption password:/i), 'the server asks for the passphrase')
	  or diag $server->output;
	$server->send("$passphrase\n");
	ok(defined $server->expect(qr/data encryption key loaded and verified/),
		'the key is loaded and verified') or diag $server->output;
	ok(defined $server->expect(qr/ready to accept connections/), 'the server accepts connections')
	  or diag $server->output;
	# Started by hand: the node learns its pid from postmaster.pid.
	$node->_update_pid(1);
	is($node->safe_psql('postgres', 'SELECT 6 * 7'), '42', 'a query runs');
	ok($node->stop('fast', fail_ok => 1), 'the foreground server stops');
	is($server->finish, 0, 'and exits normally');
	unlike($server->output, qr/\Q$passphrase\E/, 'the passphrase is not echoed');
}

# --- from a file, through the variables -----------------------------------------------
my $node = FeDatakey::Cluster->new('from_file');
my $pgdata = $node->data_dir;
my $file_unwrap;
{
	my $text = recipe_section('A passphrase from a file');
	my $place = '/etc/postgresql/datakey.pass';
	like($text, qr/install -m 600 \/dev\/null \Q$place\E/, 'the recipe makes the file 0600 first');
	my $pass = passphrase_file($dir, 'datakey.pass', $passphrase);
	my ($wrap, $unwrap) =
	  map { (my $c = quoted_after($text, "export $_")) =~ s/\Q$place\E/$pass/g; $c }
	  qw(PGDATAKEYWRAPCMD PGDATAKEYUNWRAPCMD);
	isnt($wrap, $unwrap, 'two different commands');
	$file_unwrap = $unwrap;

	my ($rc, $out, $err) =
	  $node->initdb('-y', { env => { PGDATAKEYWRAPCMD => $wrap, PGDATAKEYUNWRAPCMD => $unwrap } });
	is($rc, 0, 'initdb -y with the README\'s variables') or diag $err;
	($rc, $out) = $node->postgres_C('data_encryption_key_unwrap_command');
	is($out, $unwrap, 'postgresql.conf names the README\'s unwrap command');
	ok($node->start(fail_ok => 1), 'pg_ctl starts the server without a terminal');
	is($node->psql('postgres', "CREATE TABLE recipe AS SELECT 'kept'::text AS v"), 0, 'a table is written');
}

# --- rotation with pg_datakey, while the server runs ---------------------------------------------
{
	my $text = recipe_section('Rotating the passphrase or master key');
	my $place = '/etc/postgresql/datakey.new';
	my $new = passphrase_file($dir, 'datakey.new', 'a new passphrase');
	my ($wrap, $unwrap) =
	  map { (my $c = quoted_after($text, "--$_")) =~ s/\Q$place\E/$new/g; $c }
	  qw(new-key-wrap-command new-key-unwrap-command);
	my $before = unwrap_key_bytes($pgdata, $file_unwrap);

	my ($rc, $out, $err) = run_command([ 'pg_datakey', 'rewrap', '-D', $pgdata,
		"--new-key-wrap-command=$wrap", "--new-key-unwrap-command=$unwrap" ]);
	is($rc, 0, 'pg_datakey rewrap with docs/key-stores.md\'s commands') or diag $err;
	is($node->safe_psql('postgres', 'SELECT v FROM recipe'), 'kept', 'the running server is unaffected');
	$node->stop;
	ok($node->start(fail_ok => 1), 'the server restarts with the new passphrase');
	is($node->safe_psql('postgres', 'SELECT v FROM recipe'), 'kept', 'data intact');
	$node->stop;
	is(unwrap_key_bytes($pgdata, $unwrap), $before, 'the same data key under the new passphrase');
	# (Compared with the key, not by openssl's exit status: a wrong
	# passphrase decrypts without error about once in 256 salts.)
	my (undef, $plain) =
	  run_command([ 'bash', '-c', 'cd "$1" && ' . ($file_unwrap =~ s/%p/pg_encryption\/key.bin/r), '-', $pgdata ]);
	isnt($plain, $before, 'the old passphrase no longer opens key.bin');

	# The pipeline the recipe explains rotation with, OLD and NEW filled in.
	$text =~ /^cd "\$PGDATA"\n(openssl .*?\n\s*\| openssl .*?)\n/ms
	  or BAIL_OUT('docs/key-stores.md: no hand-typed rotation pipeline');
	my $pipeline = $1;
	my $third = passphrase_file($dir, 'third', 'a third passphrase');
	$pipeline =~ s/file:OLD/file:$new/;
	$pipeline =~ s/file:NEW/file:$third/;
	($rc, $out, $err) = run_command([ 'bash', '-o', 'pipefail', '-c', "cd \"\$1\" && $pipeline", '-', $pgdata ]);
	is($rc, 0, 'docs/key-stores.md\'s hand-typed pipeline runs') or diag $err;
	my $rewrapped = "$pgdata/pg_encryption/key.bin.new";
	ok(-s $rewrapped, 'and names its output file');
	($rc, $out) = run_command([ 'openssl', 'enc', '-d', '-aes-128-cbc', '-pbkdf2', "-pass", "file:$third",
		'-in', $rewrapped ]);
	is($out, $before, 'its output holds the same key under the third passphrase');
}

done_testing();
