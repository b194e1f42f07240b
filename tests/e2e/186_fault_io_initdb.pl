# Versions: newest
# (initdb's key steps are the library's, the same on every version)
#
# Injected I/O faults (libfiu, FeDatakey::Fiu) at the key steps of initdb -y
# and initdb --copy-key-from: the cells of tests/faults/cells/io.tsv for
# those rows.  The wrap command arms the fault once it has written the
# wrapped key, so it reaches the first call of its kind after: the open,
# fsync and rename of key.bin.tmp, the removal of a stale key.check.tmp and
# the write of key.check.tmp, the read of postgresql.conf for the unwrap
# command.  initdb runs from a copy whose postgres drops the preload: the
# bootstrap is PostgreSQL's, and libfiu cannot run in postgres.
# - EIO and ENOSPC: initdb fails, naming the operation and the file, leaves
#   no data directory behind, and runs again without the fault; the new
#   cluster's key opens and the server starts;
# - EINTR and short counts: the call is retried and initdb succeeds.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Faults;
use FeDatakey::Fiu;
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use FeDatakey::Run qw(run_command);
use Test::More;

BAIL_OUT('fiu-utils is not installed (scripts/lib/common.sh installs it)') unless fiu_available();

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'a passphrase');
my $shadow = shadow_bin($dir);

my $source = FeDatakey::Cluster->new('source');
$source->init(encrypted => 1, wrap => openssl_wrap($pass), unwrap => openssl_unwrap($pass));
my $source_key = $source->data_dir . '/pg_encryption/key.bin';

my $EIO = qr/Input\/output error/;
my %error = (
	'open EIO' => qr/could not open data encryption key file "[^"]*key\.bin\.tmp": $EIO/,
	'fsync EIO' => qr/could not fsync file "[^"]*key\.bin\.tmp": $EIO/,
	'rename EIO' => qr/could not rename file "[^"]*key\.bin\.tmp" to "[^"]*key\.bin": $EIO/,
	'unlink EIO' => qr/could not remove file "[^"]*key\.check\.tmp": $EIO/,
	'write EIO' => qr/could not write file "[^"]*key\.check\.tmp": $EIO/,
	'write ENOSPC' => qr/could not write file "[^"]*key\.check\.tmp": No space left on device/,
	'read EIO' => qr/could not read (configuration )?file "[^"]*postgresql\.conf": $EIO/,);

sub starts
{
	my ($node) = @_;
	$node->start(fail_ok => 1) or return 0;
	$node->stop('fast');
	return 1;
}

sub key_opens
{
	my ($node) = @_;
	my ($rc, undef, $err) = run_command([ 'pg_datakey', 'verify', '-D', $node->data_dir ]);
	diag $err if $rc != 0;
	return $rc == 0;
}

my $n = 0;
for my $entry ('initdb -y', 'initdb --copy-key-from')
{
	my @copy = $entry =~ /copy/ ? ("--copy-key-from=$source_key") : ();
	for my $fault (sort keys %error, 'write EINTR', 'write short', 'read EINTR', 'read short')
	{
		my $node = FeDatakey::Cluster->new('n' . ++$n);
		my $pgdata = $node->data_dir;
		my @keys = ('--key-unwrap-command=' . openssl_unwrap($pass), @copy);
		my $cmd = $node->initdb_command('-y', '--key-wrap-command=' . openssl_wrap($pass) . arm_parent($dir, $fault), @keys);
		$cmd->[0] = $shadow;
		my ($rc, $out, $err) = run_command($cmd, env => fiu_env($dir));
		if (fault_is_retried($fault))
		{
			cell_is($entry, $fault, $rc, 0, 'the call is retried and initdb succeeds') or diag $err;
			$node->configure_server;
			cell_ok($entry, $fault, key_opens($node), 'the configured command opens the new key');
			cell_ok($entry, $fault, starts($node), 'the server starts');
			next;
		}
		cell_ok($entry, $fault, $rc != 0 && $rc < 128, "initdb fails (status $rc), not a crash");
		cell_like($entry, $fault, $err, $error{$fault}, 'the error names the operation and the file');
		cell_ok($entry, $fault, !-e $pgdata, 'no data directory is left behind') or diag `ls -la $pgdata`;
		my $again = $node->initdb('-y', '--key-wrap-command=' . openssl_wrap($pass), @keys);
		cell_ok($entry, $fault, $again, 'initdb without the fault succeeds');
		cell_ok($entry, $fault, key_opens($node), 'its key opens with the configured command');
		cell_ok($entry, $fault, starts($node), 'the server starts');
	}
}

done_testing();
