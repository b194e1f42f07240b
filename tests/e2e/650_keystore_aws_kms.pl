# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# The AWS KMS recipe of docs/key-stores.md, run as written with Debian's aws
# CLI against moto's server on 127.0.0.1 (a local KMS emulator, not AWS),
# reached through socat so that it can be made unreachable and brought back
# with its keys; --endpoint-url and the server's user's aws files added to
# the commands. The recipe's setup makes alias/pg-datakey-master-1 and -2.
# Tried: a 64-byte key through the wrap and unwrap pipeline; a wrong alias
# at initdb (nothing made); initdb -y, a server, pg_datakey verify, the
# KMS unreachable, a rewrap from a passphrase into KMS, into a SoftHSM2 token
# and back, to master-2, another cluster's key caught by the key check, a
# KMS that accepts and never answers ended by pg_datakey --timeout and the
# server's unwrap timeout (run_store_checks); wrong secret, unknown access
# key, a user without kms:Decrypt; the cluster rewrapped to master-2 and
# restarted under it; kms:Decrypt denied to the server's user while it is
# stopped; the CLI's own read timeout; a disabled key, one scheduled for
# deletion and enable-key-rotation, as far as moto implements them.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Files qw(files_containing write_file);
use FeDatakey::KeyCommands qw(unwrap_key_bytes);
use FeDatakey::KeyStores;
use FeDatakey::Run qw(run_command);
use PostgreSQL::Test::Utils qw(slurp_file command_checks_all);
use Test::More;
use Time::HiRes qw(time);

my $dir = PostgreSQL::Test::Utils::tempdir();
my $kms = aws_kms_store($dir);
my ($wrap, $unwrap, $endpoint) = @$kms{qw(wrap unwrap endpoint)};
my ($wrap2, $unwrap2) = @{ $kms->{rotate} };
my $decrypt = 'kms decrypt --key-id alias/pg-datakey-master-1 --ciphertext-blob fileb://"%p" --output text --query Plaintext | base64 -d';
like($unwrap, qr{ aws --endpoint-url=\Q$endpoint\E \Q$decrypt\E$},
	'the unwrap command of docs/key-stores.md, with the test\'s endpoint');
like($wrap2, qr{kms encrypt --key-id alias/pg-datakey-master-2 }, 'and a second key, alias/pg-datakey-master-2');
isnt($kms->{key_id2}, $kms->{key_id}, 'the setup lines made two KMS keys');

# --- the pipeline alone: a 64-byte key in, the same key out, only ciphertext in the file ---
{
	my $w = "$dir/roundtrip";
	mkdir $w;
	my $k = join '', map { chr int rand 256 } 1 .. 64;
	my ($rc, undef, $err) = run_command([ 'bash', '-o', 'pipefail', '-c', $wrap =~ s/%p/key.bin/gr ], cwd => $w, stdin => $k);
	is($rc, 0, 'the recipe\'s wrap command wraps a 64-byte key') or diag $err;
	my $wrapped = slurp_file("$w/key.bin");
	cmp_ok(length $wrapped, '>', 64, 'into a blob longer than the key');
	is(index($wrapped, $k), -1, 'which does not hold the key');
	is(unwrap_key_bytes($w, $unwrap, key_file => 'key.bin'), $k, 'the recipe\'s unwrap command gives the key back');
}

# --- a wrong alias at initdb: the wrap fails, nothing is made ---
command_checks_all(
	[
		'initdb', '-D', "$dir/bad-alias", '-A', 'trust', '-N', '--no-instructions', '-y',
		'--key-wrap-command=' . ($wrap =~ s/master-1/master-9/r),
		'--key-unwrap-command=' . ($unwrap =~ s/master-1/master-9/r)
	],
	1, [],
	[ qr/key wrap command failed/, qr/NotFoundException/ ],
	'initdb -y with an alias KMS does not have fails, saying the wrap command failed, with the CLI\'s reason');
ok(!-e "$dir/bad-alias", 'and leaves no data directory');

# Credentials that are wrong, and a user that may encrypt but not decrypt.
my $creds = "$dir/pg-datakey/credentials";
my $wrong_secret = "$dir/wrong-secret";
mkdir $wrong_secret;
(my $c = slurp_file($creds)) =~ s/^(aws_secret_access_key = ).*$/${1}not-the-secret/m;
write_file("$wrong_secret/credentials", $c, 0600);
my $unknown = "$dir/unknown-key";
mkdir $unknown;
write_file("$unknown/credentials",
	"[default]\naws_access_key_id = AKIAUNKNOWNUNKNOWN00\naws_secret_access_key = whatever\n", 0600);
my $encrypt_only = $kms->{user}->('encrypt-only', 'kms:Encrypt');
my $closed = service_port();    # nothing listens there
my $with_creds = sub { $unwrap =~ s/AWS_SHARED_CREDENTIALS_FILE=\S+/AWS_SHARED_CREDENTIALS_FILE=$_[0]/r };

my ($node, $pnode, $key) = run_store_checks(
	name => 'AWS KMS',
	dir => $dir,
	wrap => $wrap,
	unwrap => $unwrap,
	other => [ @{ softhsm_token($dir, 'hsm', '1234') }{qw(wrap unwrap)} ],
	rotate => [ $wrap2, $unwrap2 ],
	down => $kms->{down},
	up => $kms->{up},
	silent => sub { silent_listener($kms->{port}) },
	wrong => [
		[ 'a wrong secret access key', $with_creds->("$wrong_secret/credentials"), qr/SignatureDoesNotMatch/ ],
		[ 'an access key KMS does not know', $with_creds->("$unknown/credentials"), qr/InvalidClientTokenId/ ],
		[ 'a user without kms:Decrypt', $with_creds->($encrypt_only), qr/not authorized to perform: kms:Decrypt/ ],
		[ 'an endpoint nothing listens on', $unwrap =~ s/127\.0\.0\.1:\Q$kms->{port}\E/127.0.0.1:$closed/r,
			qr/Could not connect to the endpoint URL/ ],
	]);
my $pgdata = $node->data_dir;
my $keybin = "$pgdata/pg_encryption/key.bin";

sub verify
{
	my (@args) = @_;
	return run_command([ 'pg_datakey', 'verify', '-D', $pgdata, @args ], timeout => 300);
}

# --- the cluster moves to master-2 and restarts under it ---
{
	my $old = slurp_file($keybin);
	ok($node->start(fail_ok => 1), 'the cluster made with master-1 starts');
	my ($rc, $out, $err) = verify();
	is($rc, 0, 'pg_datakey verify: master-1 unwraps the key that key.check describes') or diag $err;
	my ($kcv) = $out =~ /key check value (\S+)/;
	ok(defined $kcv, 'and it prints the key check value');
	($rc, $out, $err) = run_command(
		[ 'pg_datakey', 'rewrap', '-D', $pgdata, "--new-key-wrap-command=$wrap2", "--new-key-unwrap-command=$unwrap2" ],
		timeout => 300);
	is($rc, 0, 'pg_datakey rewrap to alias/pg-datakey-master-2, the server running') or diag $err;
	like($out, qr/key check value \Q$kcv\E/, 'the same data key, wrapped under master-2');
	my $new = slurp_file($keybin);
	isnt($new, $old, 'key.bin is another ciphertext');
	is(index($new, $key), -1, 'which does not hold the key either');
	is(($node->postgres_C('data_encryption_key_unwrap_command'))[1], $unwrap2,
		'postgresql.conf names the unwrap command with master-2');
	ok($node->restart(fail_ok => 1), 'the server restarts, unwrapping with master-2');
	is($node->safe_psql('postgres', 'SELECT v FROM kept'), 'written with AWS KMS', 'its data intact');
	is(unwrap_key_bytes($pgdata, $unwrap2), $key, 'master-2 gives back the key the server verified before');
	($rc, undef, $err) = verify("--key-unwrap-command=$unwrap");
	is($rc, 0, 'moto decrypts by the key named in the ciphertext, whatever --key-id says (AWS would refuse)')
	  or diag $err;
	$node->stop;
}

# --- kms:Decrypt taken from the server's user: the server does not start, nothing changes ---
{
	$kms->{deny}->('pg-datakey', 'kms:Decrypt');
	my $before = tree_digest($pgdata);
	my $mark = -s $node->logfile;
	ok(!$node->start(fail_ok => 1), 'kms:Decrypt denied to the server\'s user: the server does not start');
	my $log = slurp_file($node->logfile, $mark);
	like($log, qr/FATAL:  key unwrap command failed/, 'its log says the unwrap command failed');
	like($log, qr/not authorized to perform: kms:Decrypt/, 'with KMS\'s reason');
	my ($rc, undef, $err) = verify();
	is($rc, 4, 'pg_datakey verify: the unwrap command failed (4)') or diag $err;
	is(tree_digest($pgdata), $before, 'nothing in the data directory changed');
	$kms->{undeny}->('pg-datakey');
	ok($node->start(fail_ok => 1), 'kms:Decrypt allowed again: the server starts');
	$node->stop;
}

# --- the CLI's own bound: --cli-read-timeout and one attempt, against a KMS that never answers ---
{
	$kms->{down}->();
	my $guard = silent_listener($kms->{port});
	my $bounded = ($unwrap2 =~ s/^/AWS_MAX_ATTEMPTS=1 /r) =~ s/ kms decrypt / --cli-read-timeout 2 kms decrypt /r;
	my $t0 = time;
	my ($rc, undef, $err) = verify("--key-unwrap-command=$bounded", '--timeout=60');
	my $took = time - $t0;
	is($rc, 4, 'a KMS that never answers, the CLI bounded: its unwrap fails by itself (4, not a timeout)')
	  or diag $err;
	like($err, qr/Read timeout on endpoint URL/, 'the CLI says it timed out reading');
	cmp_ok($took, '<', 30, 'within the CLI\'s read timeout, not pg_datakey\'s');
	undef $guard;
	$kms->{up}->();
}

# --- what moto does with a disabled key and one scheduled for deletion ---
# AWS refuses both (DisabledException, KMSInvalidStateException); moto 5.1
# records the state and still decrypts. Asserted as it is, so that a moto
# that refuses makes this fail and the case becomes a refusal check.
{
	my $id = $kms->{key_id2};
	$kms->{admin}->(qw(kms disable-key --key-id), $id);
	is($kms->{admin}->(qw(kms describe-key --output text --query KeyMetadata.KeyState --key-id), $id), "Disabled\n",
		'master-2 disabled');
	my ($rc, undef, $err) = verify();
	is($rc, 0, 'moto still decrypts with a disabled key (AWS: DisabledException)') or diag $err;
	$kms->{admin}->(qw(kms enable-key --key-id), $id);
	$kms->{admin}->(qw(kms schedule-key-deletion --pending-window-in-days 7 --key-id), $id);
	is($kms->{admin}->(qw(kms describe-key --output text --query KeyMetadata.KeyState --key-id), $id),
		"PendingDeletion\n", 'master-2 scheduled for deletion');
	($rc, undef, $err) = verify();
	is($rc, 0, 'moto still decrypts with a key pending deletion (AWS: KMSInvalidStateException)') or diag $err;
	$kms->{admin}->(qw(kms cancel-key-deletion --key-id), $id);
	$kms->{admin}->(qw(kms enable-key --key-id), $id);
}

# --- enable-key-rotation: the wrapped key keeps unwrapping, no rewrap ---
{
	my $id = $kms->{key_id2};
	my $before = slurp_file($keybin);
	$kms->{admin}->(qw(kms enable-key-rotation --key-id), $id);
	is($kms->{admin}->(qw(kms get-key-rotation-status --output text --query KeyRotationEnabled --key-id), $id),
		"True\n", 'automatic rotation enabled on master-2');
	my ($rc, undef, $err) = verify();
	is($rc, 0, 'key.bin still unwraps and verifies (moto records the setting only: no new key material)')
	  or diag $err;
	ok($node->start(fail_ok => 1), 'and the server starts');
	$node->stop;
	is(slurp_file($keybin), $before, 'key.bin is the one wrapped before: nothing was rewrapped');
}

# --- where the key went ---
is(join(',', files_containing($dir, $key), files_containing($node->basedir, $key)), '',
	'the plaintext key is in no file of the test, the cluster or its logs');

done_testing();
