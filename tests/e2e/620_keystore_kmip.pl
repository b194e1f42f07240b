# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# The KMIP recipe of docs/key-stores.md, run as written against a PyKMIP server started
# here over TLS on 127.0.0.1 (certificates made by the test), with the
# project's client kmip-client/kmip-datakey: initdb -y and a server with a key
# in the KMIP server; rewrap from a passphrase into it, into a SoftHSM2
# token and back, and to a new key; the KMIP server stopped; a wrong key id,
# a certificate of another identity, a certificate the server does not
# trust; another cluster's key caught by the key check; a server that
# accepts and never answers ended by pg_datakey --timeout. Also the
# client's own errors.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Files qw(write_file);
use FeDatakey::KeyStores;
use FeDatakey::Run qw(run_command command_stdout);
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $kmip = kmip_store($dir);
my ($wrap, $unwrap, $key_id, $etc, $client) = @$kmip{qw(wrap unwrap key_id etc client)};
like($unwrap, qr{^\Q$client\E -c \Q$etc\E/kmip\.conf unwrap \Q$key_id\E < "%p"$},
	'the unwrap command of docs/key-stores.md, with the key its setup created');
like(slurp_file("$etc/kmip.conf"), qr/^port=$kmip->{port}$/m,
	'the configuration of docs/key-stores.md, with the test\'s port');

# A second key (rotation), and a configuration for another identity.
my $key2 = command_stdout([ $client, '-c', "$etc/kmip.conf", 'create', 'pg-datakey-master-2' ]);
chomp $key2;
isnt($key2, $key_id, 'a second key, another id');
my $conf = slurp_file("$etc/kmip.conf");
# Signed by the server's CA, another common name: another identity.
tls_certificates($etc, [ 'intruder', 'someone-else', 'clientAuth' ]);
write_file("$etc/kmip-intruder.conf", $conf =~ s/kmip-client\./intruder./gr);
# The right common name, signed by a CA the server does not trust.
mkdir "$dir/rogue";
tls_certificates("$dir/rogue", [ 'rogue', 'pg-datakey', 'clientAuth' ]);
write_file("$etc/kmip-rogue.conf",
	$conf =~ s{\Q$etc\E/kmip-client\.}{$dir/rogue/rogue.}gr =~ s{ca_certs=.*}{ca_certs=$etc/ca.pem}r);

# --- the client on its own: usage, input, a round trip (the key only on stdin and stdout) ---
{
	my ($rc, undef, $err) = run_command([ $client, '-c', "$etc/kmip.conf", 'wrap' ]);
	is($rc, 2, 'kmip-datakey wrap without a key id is a usage error');
	($rc, undef, $err) = run_command([ $client, '-c', "$etc/kmip.conf", 'wrap', $key_id ], stdin => '');
	is($rc, 1, 'kmip-datakey wrap of empty input fails');
	like($err, qr/^kmip-datakey: standard input is empty$/m, 'and says so');
	($rc, undef, $err) = run_command([ $client, '-c', "$etc/kmip.conf", 'unwrap', $key_id ], stdin => 'x' x 64);
	is($rc, 1, 'kmip-datakey unwrap of something it did not wrap fails');
	like($err, qr/not a key wrapped by kmip-datakey/, 'and says so');
	($rc, undef, $err) = run_command([ $client, '-c', "$dir/none.conf", 'unwrap', $key_id ], stdin => 'x');
	like($err, qr/configuration file .* does not exist/, 'a missing configuration file is named');
	my $k = join '', map { chr int rand 256 } 1 .. 96;
	my $w = command_stdout([ $client, '-c', "$etc/kmip.conf", 'wrap', $key_id ], stdin => $k);
	is(index($w, $k), -1, 'the wrapped key does not hold the key');
	is(command_stdout([ $client, '-c', "$etc/kmip.conf", 'unwrap', $key_id ], stdin => $w), $k,
		'wrap then unwrap gives back a 96-byte key');
}

run_store_checks(
	name => 'KMIP',
	dir => $dir,
	wrap => $wrap,
	unwrap => $unwrap,
	other => [ @{ softhsm_token($dir, 'hsm', '1234') }{qw(wrap unwrap)} ],
	rotate => [ map { s/(wrap) \Q$key_id\E /$1 $key2 /r } $wrap, $unwrap ],
	down => $kmip->{down},
	up => $kmip->{up},
	silent => sub { silent_listener($kmip->{port}) },
	wrong => [
		[ 'a wrong key id', $unwrap =~ s/unwrap \Q$key_id\E /unwrap 999999 /r, qr/unwrap failed: .*ITEM_NOT_FOUND/ ],
		[ 'a certificate of another identity', $unwrap =~ s/kmip\.conf/kmip-intruder.conf/r,
			qr/unwrap failed: .*(PERMISSION_DENIED|ITEM_NOT_FOUND)/ ],
		[ 'a certificate the server does not trust', $unwrap =~ s/kmip\.conf/kmip-rogue.conf/r,
			qr/unwrap failed: / ],
	]);

$kmip->{down}->();
unlike(slurp_file("$dir/kmip-server.log"), qr/BEGIN|PRIVATE/, 'the KMIP server log holds no key material');

done_testing();
