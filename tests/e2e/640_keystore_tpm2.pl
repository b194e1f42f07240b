# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# The TPM 2.0 recipe of docs/key-stores.md, run as written against a software TPM (swtpm
# on 127.0.0.1, the TCTI swtpm:host=127.0.0.1,port=N in place of the
# recipe's device:/dev/tpmrm0): initdb -y and a server with the key sealed
# to the TPM; rewrap from a passphrase into the TPM, into a SoftHSM2 token
# and back, and to another TPM; the TPM stopped; another TPM (another
# machine) asked to unseal; another cluster's key caught by the key check;
# a TPM that accepts and never answers ended by pg_datakey --timeout.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::KeyStores;
use PostgreSQL::Test::Utils ();
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $tpm = tpm2_store($dir, 'tpm');
my $tpm2 = tpm2_store($dir, 'tpm2');    # another machine's

like($tpm->{unwrap}, qr/^TPM2TOOLS_TCTI=swtpm:host=127\.0\.0\.1,port=\d+ clevis decrypt < "%p"$/,
	'the unwrap command of docs/key-stores.md, with the software TPM for the device');

run_store_checks(
	name => 'TPM 2.0',
	dir => $dir,
	wrap => $tpm->{wrap},
	unwrap => $tpm->{unwrap},
	other => [ @{ softhsm_token($dir, 'hsm', '1234') }{qw(wrap unwrap)} ],
	rotate => [ @$tpm2{qw(wrap unwrap)} ],
	down => $tpm->{down},
	up => $tpm->{up},
	silent => sub { [ silent_listener($tpm->{port}), silent_listener($tpm->{port} + 1) ] },
	wrong => [ [ 'another TPM', $tpm2->{unwrap}, qr/integrity check failed/ ] ]);

done_testing();
