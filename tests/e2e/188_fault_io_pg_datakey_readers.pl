# Versions: newest
# (pg_datakey's reads are the same on every version)
#
# Injected I/O faults at what pg_datakey status and verify read: the first
# open or read of key.check or key.bin fails (strace -e inject, one file's
# calls), or reads are shortened: every read with an even chance (libfiu)
# for status, the first read of key.check (gdb) for verify, which runs the
# unwrap command, whose shell libfiu would crash.  EIO:
# the verb fails at once, naming the operation and the file, and works
# again without the fault; EINTR and short reads are retried and the
# output is that of a run without the fault.
use strict;
use warnings;
use Cwd ();
use FeDatakey::Cluster;
use FeDatakey::Faults;
use FeDatakey::Fiu;
use FeDatakey::Gdb;
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use FeDatakey::Run qw(run_command);
use PostgreSQL::Test::Utils qw(slurp_file);
use FeDatakey::Strace;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'a passphrase');
my $node = FeDatakey::Cluster->new('readers');
$node->init(encrypted => 1, wrap => openssl_wrap($pass), unwrap => openssl_unwrap($pass));
my $pgdata = $node->data_dir;

sub paths
{
	my ($name) = @_;
	return [ "$pgdata/pg_encryption/$name", Cwd::abs_path($pgdata) . "/pg_encryption/$name" ];
}

my $E = qr/Input\/output error/;
my %clean;
for my $verb ('status', 'verify')
{
	my ($rc, $out) = run_command([ 'pg_datakey', $verb, '-D', $pgdata ]);
	die "pg_datakey $verb fails without a fault" if $rc != 0;
	$clean{$verb} = $out;
}

my @cases = (
	[ 'open EIO', 'key.check', 'openat', 'EIO', qr/could not open key check file "[^"]*key\.check": $E/ ],
	[ 'read EIO', 'key.check', 'read', 'EIO', qr/could not read file "[^"]*key\.check": $E/ ],
	[ 'read EINTR', 'key.check', 'read', 'EINTR', undef ],);
for my $verb ('status', 'verify')
{
	my $entry = "pg_datakey $verb";
	for my $case (@cases)
	{
		my ($fault, $file, $call, $errno, $error) = @$case;
		my ($rc, $out, $err) =
		  run_command([ strace_prefix(paths($file), $call, $errno), 'pg_datakey', $verb, '-D', $pgdata ], timeout => 60);
		if (!defined $error)
		{
			cell_is($entry, $fault, $rc, 0, "$file: the read is retried and $verb succeeds") or diag $err;
			cell_is($entry, $fault, $out, $clean{$verb}, "$file: it says what it says without the fault");
			next;
		}
		cell_ok($entry, $fault, $rc != 0 && $rc < 128, "$file: $verb fails (status $rc), not a crash");
		cell_like($entry, $fault, $err . $out, $error, "$file: it names the operation and the file");
		($rc, $out) = run_command([ 'pg_datakey', $verb, '-D', $pgdata ]);
		cell_ok($entry, $fault, $rc == 0 && $out eq $clean{$verb}, "$file: without the fault it works again");
	}
}

{
	my ($rc, $out, $err) =
	  run_command([ 'pg_datakey', 'status', '-D', $pgdata ], env => fiu_env($dir, fiu_rule('read short', 0.5)));
	cell_is('pg_datakey status', 'read short', $rc, 0, 'every read shortened with an even chance: status succeeds')
	  or diag $err;
	cell_is('pg_datakey status', 'read short', $out, $clean{status}, 'and says what it says without the fault');
}

# verify runs the unwrap command, whose shell libfiu's rule would reach too:
# gdb shortens its first read of key.check instead.
{
	my ($prefix, $env, $done) = short_read($dir, "$pgdata/pg_encryption/key.check");
	my ($rc, $out, $err) = run_command([ @$prefix, 'pg_datakey', 'verify', '-D', $pgdata ], env => $env, timeout => 60);
	cell_ok('pg_datakey verify', 'read short', -s $done, 'its read of key.check was shortened') or diag $err;
	cell_is('pg_datakey verify', 'read short', $rc, 0, 'the read is followed by another and verify succeeds');
	cell_is('pg_datakey verify', 'read short', strip_gdb($out), $clean{verify}, 'and says what it says without the fault');
}

# verify removes the previous key file that a rewrap --no-verify keeps, once
# the key file is proven: the unlink of key.bin.prev, and the fsync of
# pg_encryption/ after it, each fail once.  The key is still verified; the
# removal is finished by the next verify.
my $keydir = "$pgdata/pg_encryption";
for my $case ([ 'unlink EIO', 'unlink', paths('key.bin.prev'), qr/could not remove file "[^"]*key\.bin\.prev": $E/ ],
	[ 'fsync EIO', 'fsync', [ $keydir, Cwd::abs_path($keydir) ], qr/could not fsync [^\n]*pg_encryption[^\n]*: $E/ ])
{
	my ($fault, $call, $traced, $error) = @$case;
	my ($rc, undef, $err) = run_command(
		[
			'pg_datakey', 'rewrap', '-D', $pgdata, '--no-verify',
			'--new-key-wrap-command=' . openssl_wrap($pass),
			'--new-key-unwrap-command=' . openssl_unwrap($pass)
		]);
	die "rewrap --no-verify failed: $err" if $rc != 0;
	die "no key.bin.prev after rewrap --no-verify" unless -e "$keydir/key.bin.prev";
	my $key = slurp_file("$keydir/key.bin");
	my $out;
	($rc, $out, $err) =
	  run_command([ strace_prefix($traced, $call, 'EIO'), 'pg_datakey', 'verify', '-D', $pgdata ], timeout => 60);
	cell_ok('pg_datakey verify', $fault, $rc != 0 && $rc < 128, "verify fails (status $rc), not a crash");
	cell_like('pg_datakey verify', $fault, $err, $error, 'it names the operation and the file');
	cell_is('pg_datakey verify', $fault, slurp_file("$keydir/key.bin"), $key, 'key.bin is as it was');
	($rc, $out, $err) = run_command([ 'pg_datakey', 'verify', '-D', $pgdata ]);
	cell_is('pg_datakey verify', $fault, $rc, 0, 'without the fault verify succeeds') or diag $err;
	cell_ok('pg_datakey verify', $fault, !-e "$keydir/key.bin.prev", 'and the previous key file is gone');
}

done_testing();
