# Versions: newest
# (pg_datakey's steps are the same on every version; the server only reads the result)
#
# Injected I/O faults (libfiu, FeDatakey::Fiu; strace for the configuration
# file's own open, reads and removal) at the steps of pg_datakey rewrap,
# repair and the configuration update: the cells of
# tests/faults/cells/io.tsv for those rows.  One call fails once; then
# - EIO and ENOSPC: the run fails with an error naming the operation and the
#   file; the key check is unchanged; the configured command still opens
#   key.bin and the server starts (or, past the rename of the new key.bin,
#   the new passphrase opens it and the server waits for repair, as after a
#   crash there); key.bin, key.check and postgresql*.conf are each the old
#   file or the new one, whole; a repair and, where the rewrap had not
#   committed, a second rewrap finish the job, and the server starts with
#   the new passphrase;
# - EINTR and short counts: the call is retried and the run succeeds.
# The same rule, with EIO, shows which call it reaches: the retried faults
# are delivered to that same call.
use strict;
use warnings;
use Cwd ();
use File::Path qw(rmtree);
use FeDatakey::Cluster;
use FeDatakey::Datakey qw(datakey_json datakey_signal);
use FeDatakey::Faults;
use FeDatakey::Fiu;
use FeDatakey::Strace;
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use FeDatakey::Run qw(run_command);
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;

BAIL_OUT('fiu-utils is not installed (scripts/lib/common.sh installs it)') unless fiu_available();

my $dir = PostgreSQL::Test::Utils::tempdir();
my $old = passphrase_file($dir, 'old.pass', 'old secret');
my $new = passphrase_file($dir, 'new.pass', 'new secret');

# One node; each cell starts from a copy of its stopped data directory.
my $node = FeDatakey::Cluster->new('faults');
$node->init(encrypted => 1, wrap => openssl_wrap($old), unwrap => openssl_unwrap($old));
my $pgdata = $node->data_dir;
$node->start;
$node->safe_psql('postgres', "CREATE TABLE t AS SELECT 'kept'::text AS v");
$node->stop;
my $kcv = datakey_json($pgdata)->{key_check_value};
my $pristine = "$dir/pristine";
system('cp', '-a', $pgdata, $pristine) == 0 or die "cp: $?";
# Left by the last start; without it, repair's first open and read are its own files'.
unlink "$pristine/postmaster.opts" or die "unlink: $!";

sub restore
{
	rmtree($pgdata);
	system('cp', '-a', $pristine, $pgdata) == 0 or die "cp: $?";
}

# The files under a final name whose content the steps replace.
my @finals = qw(pg_encryption/key.bin pg_encryption/key.check postgresql.conf postgresql.auto.conf);

sub finals
{
	return { map { $_ => (-e "$pgdata/$_" ? slurp_file("$pgdata/$_") : undef) } @finals };
}

sub configured_opens
{
	my ($rc) = run_command([ 'pg_datakey', 'verify', '-D', $pgdata ]);
	return $rc == 0;
}

sub verify_with
{
	my ($pass) = @_;
	my ($rc) = run_command([ 'pg_datakey', 'verify', '-D', $pgdata, '--key-unwrap-command=' . openssl_unwrap($pass) ]);
	return $rc == 0;
}

sub starts
{
	$node->start(fail_ok => 1) or return 0;
	my $v = $node->safe_psql('postgres', 'SELECT v FROM t');
	$node->stop('fast');
	return $v eq 'kept';
}

sub same
{
	my ($x, $y) = @_;
	return defined $x ? defined $y && $x eq $y : !defined $y;
}

sub rewrap_args
{
	my ($arm) = @_;
	return [
		'pg_datakey', 'rewrap', '-D', $pgdata,
		'--new-key-wrap-command=' . openssl_wrap($new) . ($arm // ''),
		'--new-key-unwrap-command=' . openssl_unwrap($new)
	];
}

# The same, as datakey_signal takes them.
sub datakey_rewrap_args
{
	my $args = rewrap_args();
	return [ @{$args}[ 1 .. $#$args ] ];
}

# A cell: $run->() runs the step under the fault and returns run_command's
# list; $error is what its error must say.  $committed: the fault comes after
# the rewrap's commit (then repair alone completes it).
sub cell
{
	my ($entry, $fault, $run, $error, %opt) = @_;
	my $before = finals();
	my ($rc, $out, $err) = $run->();
	my $during = finals();
	if (fault_is_retried($fault))
	{
		cell_is($entry, $fault, $rc, 0, 'the call is retried and the run succeeds') or diag $err;
		cell_ok($entry, $fault, verify_with($new), 'key.bin opens with the new passphrase');
		cell_ok($entry, $fault, configured_opens(),
			'the configured command opens key.bin');
		cell_is($entry, $fault, datakey_json($pgdata)->{rewrap}{state}, 'none', 'no interrupted rewrap left');
		cell_ok($entry, $fault, starts(), 'the server starts, the data intact');
		return;
	}
	cell_ok($entry, $fault, $rc != 0 && $rc < 128, "the run fails (status $rc), not a crash");
	cell_like($entry, $fault, $err, $error, 'the error names the operation and the file');
	my $status = datakey_json($pgdata);
	cell_is($entry, $fault, $status->{key_check_value}, $kcv, 'the key check is unchanged');
	if ($status->{rewrap}{key_file_is_new})
	{
		# Past the rename, before the configuration: as a crash there (530),
		# the new key.bin opens with the new passphrase and the server waits
		# for repair.
		cell_ok($entry, $fault, verify_with($new), 'key.bin, already renamed, opens with the new passphrase');
		cell_ok($entry, $fault, !starts(), 'the server does not start with the old command on the new key.bin');
	}
	else
	{
		cell_ok($entry, $fault, configured_opens(), 'the configured command still opens key.bin');
		cell_ok($entry, $fault, starts(), 'the server starts, the data intact');
	}

	# Once the fault is gone: repair, then a rewrap if it had not committed.
	my ($rrc, undef, $rerr) = run_command([ 'pg_datakey', 'repair', '-D', $pgdata ]);
	cell_is($entry, $fault, $rrc, 0, 'repair succeeds once the fault is gone') or diag $rerr;
	unless ($opt{committed})
	{
		my ($wrc, undef, $werr) = run_command(rewrap_args());
		cell_is($entry, $fault, $wrc, 0, 'a rewrap without the fault succeeds') or diag $werr;
	}
	cell_ok($entry, $fault, verify_with($new) && configured_opens(),
		'then key.bin and the configured command are the new ones');
	my $after = finals();
	my @torn = grep { !same($during->{$_}, $before->{$_}) && !same($during->{$_}, $after->{$_}) } @finals;
	cell_is($entry, $fault, "@torn", '', 'every file under a final name was the old or the new one, whole');
	cell_ok($entry, $fault, starts(), 'the server starts with the new passphrase');
	return;
}

my $EIO = qr/Input\/output error/;

# pg_datakey rewrap: the wrap command arms the fault, so it reaches the first
# call of its kind after the new wrapping is written: the checks of
# key.bin.new.tmp (open, fsync, rename), the key check read before the
# verification, the removal of a stale journal temporary file and the
# journal write (the commit).
my %rewrap_error = (
	'open EIO' => [ qr/could not open data encryption key file "[^"]*key\.bin\.new\.tmp": $EIO/, 0 ],
	'fsync EIO' => [ qr/could not fsync file "[^"]*key\.bin\.new\.tmp": $EIO/, 0 ],
	'rename EIO' => [ qr/could not rename file "[^"]*key\.bin\.new\.tmp" to "[^"]*key\.bin\.new": $EIO/, 0 ],
	'read EIO' => [ qr/could not read file "[^"]*key\.check": $EIO/, 0 ],
	'write EIO' => [ qr/could not write file "[^"]*rewrap\.state\.tmp": $EIO/, 0 ],
	'write ENOSPC' => [ qr/could not write file "[^"]*rewrap\.state\.tmp": No space left on device/, 0 ],
	'unlink EIO' => [ qr/could not remove file "[^"]*rewrap\.state\.tmp": $EIO/, 0 ],);
for my $fault (sort keys %rewrap_error, 'write EINTR', 'write short', 'read EINTR', 'read short')
{
	restore();
	my ($error, $committed) = @{ $rewrap_error{$fault} // [] };
	cell('pg_datakey rewrap', $fault,
		sub { run_command(rewrap_args(arm_parent($dir, $fault)), env => fiu_env($dir)) },
		$error, committed => $committed);
}

# pg_datakey repair of a rewrap killed after its commit: repair runs no
# command, so the fault is active from its start and reaches repair's first
# call of its kind: the lock file's open, the journal's read, the removal of
# a stale key.bin.prev, the directory's fsync after keeping key.bin.prev,
# the rename of key.bin.new to key.bin, the write of postgresql.conf.
# (pg_datakey stops at a file it cannot read: the journal's "could not read
# rewrap journal".)
my %repair_error = (
	'open EIO' => qr/could not open lock file "[^"]*rewrap\.lock": $EIO/,
	'read EIO' => qr/could not read rewrap journal "[^"]*rewrap\.state": $EIO/,
	'unlink EIO' => qr/could not remove file "[^"]*key\.bin\.prev": $EIO/,
	'fsync EIO' => qr/could not fsync file "[^"]*pg_encryption": $EIO/,
	'rename EIO' => qr/could not rename file "[^"]*key\.bin\.new" to "[^"]*key\.bin": $EIO/,
	'write EIO' => qr/could not write file "[^"]*postgresql\.conf[^"]*": $EIO/,
	'write ENOSPC' => qr/could not write file "[^"]*postgresql\.conf[^"]*": No space left on device/,);
for my $fault (sort keys %repair_error, 'write EINTR', 'write short', 'read EINTR', 'read short')
{
	restore();
	is(datakey_signal(datakey_rewrap_args(), FE_DATAKEY_CRASH_AT => 'after-journal'), 9, "repair | $fault: a rewrap killed after its commit");
	cell('pg_datakey repair', $fault,
		sub { run_command([ 'pg_datakey', 'repair', '-D', $pgdata ], env => fiu_env($dir, $fault)) },
		$repair_error{$fault}, committed => 1);
}

# The configuration update (roll_forward's, which rewrap and repair share):
# after a rewrap killed once key.bin is the new file, repair's first write,
# fsync and rename are postgresql.conf's.
my %conf_error = (
	'fsync EIO' => qr/could not fsync file "[^"]*postgresql\.conf[^"]*": $EIO/,
	'rename EIO' => qr/could not rename file "[^"]*postgresql\.conf[^"]*" to "[^"]*postgresql\.conf": $EIO/,
	'write EIO' => qr/could not write file "[^"]*postgresql\.conf[^"]*": $EIO/,
	'write ENOSPC' => qr/could not write file "[^"]*postgresql\.conf[^"]*": No space left on device/,);

sub killed_after_rename
{
	my ($fault) = @_;
	restore();
	is(datakey_signal(datakey_rewrap_args(), FE_DATAKEY_CRASH_AT => 'after-rename'),
		9, "config | $fault: a rewrap killed after its rename");
}

for my $fault (sort keys %conf_error, 'write EINTR', 'write short')
{
	killed_after_rename($fault);
	cell('pg_datakey config update', $fault,
		sub { run_command([ 'pg_datakey', 'repair', '-D', $pgdata ], env => fiu_env($dir, $fault)) },
		$conf_error{$fault}, committed => 1);
}

# Its open and reads of postgresql.conf come after other opens and reads of
# the same repair (the lock, the journal, key.bin), which libfiu's "first
# call" rules would hit instead: strace fails the first call on that file.
for my $case ([ 'open EIO', 'openat', 'EIO', qr/could not open (configuration )?file "[^"]*postgresql\.conf": $EIO/ ],
	[ 'read EIO', 'read', 'EIO', qr/could not read (configuration )?file "[^"]*postgresql\.conf": $EIO/ ],
	[ 'read EINTR', 'read', 'EINTR', undef ],
	# the removal of a stale temporary file before the new one is written
	[ 'unlink EIO', 'unlink,unlinkat', 'EIO', qr/could not remove file "[^"]*postgresql\.conf\.fe_datakey\.tmp": $EIO/, '.fe_datakey.tmp' ])
{
	my ($fault, $call, $errno, $error, $suffix) = @$case;
	killed_after_rename($fault);
	# strace matches an fd by its real path, a path argument as given.
	my $file = 'postgresql.conf' . ($suffix // '');
	my @conf = ("$pgdata/$file", Cwd::abs_path($pgdata) . "/$file");
	cell('pg_datakey config update', $fault,
		sub { run_command([ strace_prefix(\@conf, $call, $errno), 'pg_datakey', 'repair', '-D', $pgdata ]) },
		$error, committed => 1);
}

# Short reads, on every read with an even chance: repair must succeed
# whichever reads (postgresql.conf's 8 among them) they shorten.
{
	killed_after_rename('read short');
	cell('pg_datakey config update', 'read short',
		sub { run_command([ 'pg_datakey', 'repair', '-D', $pgdata ], env => fiu_env($dir, fiu_rule('read short', 0.5))) },
		undef, committed => 1);
}

done_testing();
