# Versions: newest
# (the pre-flight key checks are the library's, the same on every version)
#
# Injected I/O faults at what the key checks of pg_rewind and pg_upgrade
# read: strace -e inject fails the first open or read of the target's (the
# old cluster's) key.check by the program itself, not by a server it
# starts.  EIO: the program fails at once, naming the operation and the
# file, and the target's key files are unchanged; EINTR: the read is
# retried and the check passes; a short read (gdb): it reads on and passes.
# Without the fault the check passes again.  pg_rewind runs as a dry run
# (-n), which checks the keys and changes nothing; pg_upgrade as --check.
use strict;
use warnings;
use Cwd ();
use FeDatakey::Cluster;
use FeDatakey::Faults;
use FeDatakey::Gdb;
use FeDatakey::Run ();    # run_command by its full name: upstream's Utils exports one too
use FeDatakey::Strace;
use PostgreSQL::Test::Utils;
use Test::More;

my $C = 'FeDatakey::Cluster';
my $dir = PostgreSQL::Test::Utils::tempdir();
# pg_upgrade needs a working directory it may write (its logs), which the
# clone's top need not be for the test user.
chdir $dir or die "chdir $dir: $!";
my ($wrap, $unwrap) = key_commands('faults');

sub paths
{
	my ($pgdata) = @_;
	return [ "$pgdata/pg_encryption/key.check", Cwd::abs_path($pgdata) . '/pg_encryption/key.check' ];
}

my $EIO = qr/Input\/output error/;
my @cases = (
	[ 'open EIO', 'openat', 'EIO', qr/could not open key check file "[^"]*key\.check": $EIO/ ],
	[ 'read EIO', 'read', 'EIO', qr/could not read file "[^"]*key\.check": $EIO/ ],
	[ 'read EINTR', 'read', 'EINTR', undef ],);

# run_cells(ENTRY, TARGET, ARGV, OK): each case on ARGV, whose success OK
# recognizes from (status, stdout).
sub run_cells
{
	my ($entry, $target, $argv, $ok) = @_;
	for my $case (@cases)
	{
		my ($fault, $call, $errno, $error) = @$case;
		my $before = $target->snapshot;
		my ($rc, $out, $err) =
		  FeDatakey::Run::run_command([ strace_prefix(paths($target->data_dir), $call, $errno, 1), @$argv ]);
		if (!defined $error)
		{
			cell_ok($entry, $fault, $ok->($rc, $out), 'the read is retried and the key check passes')
			  or diag "$out\n$err";
			next;
		}
		cell_ok($entry, $fault, !$ok->($rc, $out) && $rc != 0 && $rc < 128, "it fails (status $rc), not a crash");
		cell_like($entry, $fault, $err . $out, $error, 'it names the operation and the file');
		cell_is($entry, $fault, join(' ', grep { m{^pg_encryption/} } diff_paths($before, $target->snapshot)), '',
			"the target's key files are unchanged");
		($rc, $out, $err) = FeDatakey::Run::run_command($argv);
		cell_ok($entry, $fault, $ok->($rc, $out), 'without the fault the key check passes') or diag "$out\n$err";
	}
}

# A short read (gdb lowers the count of the program's first read of the
# target's key.check): the check reads on and passes.
sub short_read_cell
{
	my ($entry, $target, $argv, $ok) = @_;
	my ($prefix, $env, $done) = short_read($dir, $target->data_dir . '/pg_encryption/key.check');
	my ($rc, $out, $err) = FeDatakey::Run::run_command([ @$prefix, @$argv ], env => $env, timeout => 120);
	cell_ok($entry, 'read short', -s $done, 'its read of key.check was shortened') or diag "$out\n$err";
	cell_ok($entry, 'read short', $ok->($rc, strip_gdb($out)), 'it reads on and the key check passes');
}

# The paths whose content differs between two snapshots.
sub diff_paths
{
	my ($a, $b) = @_;
	my %all = (%$a, %$b);
	return grep { ($a->{$_} // '') ne ($b->{$_} // '') } sort keys %all;
}

# pg_rewind: an old primary and the standby promoted in its place, both stopped.
{
	my $primary = $C->new('primary');
	$primary->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	$primary->start;
	$primary->safe_psql('postgres', 'CREATE TABLE t AS SELECT 1 AS v');
	my $standby = $primary->basebackup('standby', '-R');
	$standby->start;
	$standby->promote;
	$standby->safe_psql('postgres', 'INSERT INTO t VALUES (2); CHECKPOINT');
	$primary->safe_psql('postgres', 'INSERT INTO t VALUES (3)');
	$primary->stop;
	$standby->stop;
	my @argv = ('pg_rewind', '-n', '-D', $primary->data_dir, '--source-pgdata=' . $standby->data_dir,
		"--key-unwrap-command=$unwrap");
	run_cells('pg_rewind', $primary, \@argv, sub { $_[0] == 0 });
	short_read_cell('pg_rewind', $primary, \@argv, sub { $_[0] == 0 });
}

# pg_upgrade: a cluster and a new one made with its key.
{
	my $old = $C->new('old');
	$old->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	my $new = $C->new('new');
	$new->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap,
		copy_key_from => $old->data_dir . '/pg_encryption/key.bin');
	my $argv = pg_upgrade_command($old, $new, '--check', "--key-unwrap-command=$unwrap");
	my $ok = sub { $_[0] == 0 && $_[1] =~ /Checking data encryption keys\s+ok/ };
	run_cells('pg_upgrade', $old, $argv, $ok);
	short_read_cell('pg_upgrade', $old, $argv, $ok);
}

done_testing();
