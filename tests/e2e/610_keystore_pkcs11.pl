# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# The PKCS#11 recipe of docs/key-stores.md, both forms, run as written against SoftHSM2
# tokens made by the recipe's own setup lines (paths moved into the test's
# directory):
#   - the token reached over a socket, served by p11-kit server: initdb -y
#     and a server; rewrap from a passphrase into the token, into another
#     token (the direct form) and back, and to a new key pair; the p11-kit
#     server stopped; a wrong PIN, key id, token label and key pair;
#     another cluster's key caught by the key check; a p11-kit socket that
#     accepts and never answers ended by pg_datakey --timeout;
#   - the token's module loaded directly: its files gone, the server does
#     not start and nothing changes; back, it starts.
use strict;
use warnings;
use IO::Socket::UNIX;
use FeDatakey::Cluster;
use FeDatakey::KeyStores;
use FeDatakey::Recipes;
use PostgreSQL::Test::Utils qw(slurp_file command_ok);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $text = recipe_section('PKCS#11: a key pair in an HSM (SoftHSM2 here)');
my $setup = recipe_block($text, 0);
my $commands = recipe_block($text, 1);
my $remote = recipe_block($text, 2);

like($setup, qr{^install -m 600 /dev/null /etc/postgresql/hsm\.pin}m, 'the recipe makes the PIN file 0600 first');
unlike($commands . $remote, qr/--(?:so-)?pin [^e]/, 'the recipe never puts a PIN in pkcs11-tool\'s arguments');

my $hsm = softhsm_token($dir, 'hsm', '1234');
my $hsm2 = softhsm_token($dir, 'hsm2', '98765');
my ($wrap, $unwrap) = @$hsm{qw(wrap unwrap)};
ok(-s "$dir/hsm/pg-datakey-master-1.pem", 'the setup of docs/key-stores.md exported the public key');

# A second key pair in the first token: the setup's key-pair lines with id 02.
my @pair = grep { /--keypairgen|--read-object|^openssl pkey|^export/ } split /\n/,
  fill_placeholders($setup, $hsm->{map});
my $pair2 = join "\n", map { s/--id 01/--id 02/r =~ s/master-1/master-2/gr } @pair;
command_ok([ 'bash', '-e', '-o', 'pipefail', '-c', $pair2 ],
	'a second key pair in the token, made with the recipe\'s lines');

# --- the token served by p11-kit over a socket ---
my $sock = "$dir/p11.sock";
my $map = { %{ $hsm->{map} }, '/run/pg-datakey/pkcs11.sock' => $sock, '-u postgres ' => '' };
my ($serve) = $remote =~ /^(p11-kit server .*)$/m or BAIL_OUT('docs/key-stores.md: no p11-kit server line');
my $remote_unwrap = fill_placeholders(quoted_after($remote, 'export PGDATAKEYUNWRAPCMD'), $map);
my $p11;
my $p11_up = sub {
	unlink $sock;
	$p11 = start_service('p11-kit server', [ 'bash', '-c', 'exec ' . fill_placeholders($serve, $map) ],
		env => { SOFTHSM2_CONF => "$dir/hsm/softhsm2.conf" }, log => "$dir/p11-kit.log");
	for (1 .. 300) { last if -S $sock; select undef, undef, undef, 0.1 }
	-S $sock or die "p11-kit server made no socket\n" . slurp_file("$dir/p11-kit.log");
};
my $p11_down = sub { stop_service($p11); unlink $sock };
$p11_up->();
my ($wrap_k2, $unwrap_k2) = map { s/--id 01/--id 02/r =~ s/master-1/master-2/gr } ($wrap, $remote_unwrap);

my ($store) = run_store_checks(
	name => 'PKCS#11',
	dir => $dir,
	wrap => $wrap,
	unwrap => $remote_unwrap,
	other => [ @$hsm2{qw(wrap unwrap)} ],
	rotate => [ $wrap_k2, $unwrap_k2 ],
	down => $p11_down,
	up => $p11_up,
	silent => sub {
		unlink $sock;
		IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $sock, Listen => 16)
		  or die "could not listen on $sock: $!";
	},
	wrong => [
		[ 'a wrong PIN', $remote_unwrap =~ s/hsm\.pin/hsm.wrong-pin/r, qr/CKR_PIN_INCORRECT/ ],
		[ 'a wrong key id', $remote_unwrap =~ s/--id 01/--id 09/r, qr/key not found/ ],
		[ 'a wrong token label', $remote_unwrap =~ s/--token-label pg-datakey/--token-label pg-datakey-9/r,
			qr/No slot with token named "pg-datakey-9"/ ],
		[ 'another key pair', $unwrap_k2, qr/C_Decrypt\w* failed/ ],
	]);

# --- the token's module loaded directly: its files gone, then back ---
{
	# initdb by hand, so that it is checked; then the node's own port and
	# socket directory, as upstream's init writes them.
	my $node = FeDatakey::Cluster->new('direct');
	command_ok(
		[
			'initdb', '-D', $node->data_dir, '-A', 'trust', '-N', '--no-instructions',
			'-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap"
		],
		'initdb -y with the direct form');
	$node->append_conf('postgresql.conf',
		'port = ' . $node->port . "\nunix_socket_directories = '" . $node->host . "'\nlisten_addresses = ''");
	my $tokens = "$dir/hsm/tokens";
	rename $tokens, "$tokens.away" or die "rename: $!";
	my $before = tree_digest($node->data_dir);
	ok(!$node->start(fail_ok => 1), 'the token\'s files gone: the server does not start');
	like(slurp_file($node->logfile), qr/FATAL:  key unwrap command failed/,
		'and its log says the unwrap command failed');
	is(tree_digest($node->data_dir), $before, 'nothing in the data directory changed');
	rename "$tokens.away", $tokens or die "rename: $!";
	ok($node->start(fail_ok => 1), 'the token back, the server starts');
	$node->stop;
}

unlike(slurp_file($store->data_dir . '/postgresql.conf'), qr/1234/, 'the PIN is not in postgresql.conf');

done_testing();
