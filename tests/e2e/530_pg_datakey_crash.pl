# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# kill -9 of pg_datakey at every step of the rewrap protocol (and of repair),
# key.bin.prev's steps included:
# status reports the state, the cluster stays startable or repairable, and
# after repair the server starts with the data intact.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use FeDatakey::TestLib;
use FeDatakey::Datakey;


# point => [state after the crash, key.bin is the new file, configured command
#           opens key.bin, outcome of repair]
my @cases = (
	[ 'after-unwrap', 'none', 0, 1, 'none' ],
	[ 'after-wrap', 'uncommitted', 0, 1, 'rolled back' ],
	[ 'after-verify', 'uncommitted', 0, 1, 'rolled back' ],
	[ 'killed-wrap-command', 'uncommitted', 0, 1, 'rolled back' ],
	[ 'after-journal', 'committed', 0, 1, 'completed' ],
	[ 'after-keep-previous', 'committed', 0, 1, 'completed' ],
	[ 'after-rename', 'committed', 1, 0, 'completed' ],
	[ 'after-conf', 'committed', 1, 1, 'completed' ],
	[ 'after-drop-previous', 'committed', 1, 1, 'completed' ],
);
# Where key.bin.prev, the last key file known to unwrap, exists after the crash.
my %keeps_previous = map { $_ => 1 } qw(after-keep-previous after-rename after-conf);

for my $case (@cases)
{
	my ($point, $state, $is_new, $startable, $outcome) = @$case;
	my $dir = temp_dir();
	my $old = passphrase_file($dir, 'old.pass', 'old secret');
	my $new = passphrase_file($dir, 'new.pass', 'new secret');
	my ($node, $pgdata) = new_cluster($dir, openssl_wrap($old), openssl_unwrap($old));
	my $kcv = datakey_json($pgdata)->{key_check_value};
	{
		$node->start or BAIL_OUT("server does not start");
		$node->psql("CREATE TABLE t AS SELECT 'kept'::text AS v");
		$node->stop;
	}

	my $wrap = openssl_wrap($new);
	my %env;
	if ($point eq 'killed-wrap-command')
	{
		# The wrap command's shell is a child of pg_datakey.
		$wrap .= '; kill -9 $PPID; sleep 5';
	}
	else
	{
		%env = (FE_DATAKEY_CRASH_AT => $point);
	}
	my ($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
		"--new-key-wrap-command=$wrap", '--new-key-unwrap-command=' . openssl_unwrap($new) ],
		env => \%env);
	is($rc, -9, "$point: pg_datakey was killed");

	my $status = datakey_json($pgdata);
	is($status->{rewrap}{state}, $state, "$point: status reports \"$state\"");
	is(-e "$pgdata/pg_encryption/key.bin.prev" ? 1 : 0, $keeps_previous{$point} ? 1 : 0,
		"$point: the previous key file is " . ($keeps_previous{$point} ? 'kept' : 'absent'));
	is($status->{key_check_value}, $kcv, "$point: key check unchanged");
	if ($state eq 'committed')
	{
		is($status->{rewrap}{key_file_is_new} ? 1 : 0, $is_new,
			"$point: status knows whether key.bin is the new file");
		my ($src, undef, $serr) = run_datakey([ 'status', '-D', $pgdata ]);
		like($serr, qr/run "pg_datakey repair" before starting the server/,
			"$point: status tells to repair");
	}
	my ($vrc, undef, $verr) = run_datakey([ 'verify', '-D', $pgdata ]);
	is($vrc == 0 ? 1 : 0, $startable,
		"$point: the configured command " . ($startable ? 'opens' : 'does not open') . ' key.bin');
	($vrc) = run_datakey([ 'verify', '-D', $pgdata,
		'--key-unwrap-command=' . openssl_unwrap($is_new ? $new : $old) ]);
	is($vrc, 0, "$point: key.bin opens with the " . ($is_new ? 'new' : 'old') . ' passphrase');

	if ($state eq 'committed')
	{
		($rc, $out, $err) = run_datakey([ 'rewrap', '-D', $pgdata,
			'--new-key-wrap-command=-', '--new-key-unwrap-command=-' ]);
		is($rc, 10, "$point: a new rewrap is refused until repaired");
		like($err, qr/hint: Run "pg_datakey repair"/, "$point: with a hint");
	}
	if ($startable)
	{
		ok($node->start, "$point: server starts before repair");
		$node->stop;
	}

	($rc, $out, $err) = run_datakey([ 'repair', '-D', $pgdata ]);
	is($rc, 0, "$point: repair succeeds") or diag $err;
	my %says = (
		'none' => qr/No interrupted rewrap/,
		'rolled back' => qr/rolled back/,
		'completed' => qr/completed/);
	like($out, $says{$outcome}, "$point: repair $outcome");

	$status = datakey_json($pgdata);
	is($status->{rewrap}{state}, 'none', "$point: consistent after repair");
	is_deeply([ sort map { $_->{path} } @{ $status->{files} } ],
		[ 'pg_encryption', 'pg_encryption/key.bin', 'pg_encryption/key.check',
			'pg_encryption/rewrap.lock' ], "$point: no debris, no journal");
	($vrc) = run_datakey([ 'verify', '-D', $pgdata ]);
	is($vrc, 0, "$point: the configured command opens key.bin after repair");
	my $now_new = $outcome eq 'completed';
	($vrc) = run_datakey([ 'verify', '-D', $pgdata,
		'--key-unwrap-command=' . openssl_unwrap($now_new ? $old : $new) ]);
	isnt($vrc, 0, "$point: the " . ($now_new ? 'old' : 'unused new') . ' passphrase opens nothing');
	{
		ok($node->start, "$point: server starts after repair");
		is($node->psql('SELECT v FROM t'), 'kept', "$point: data intact");
		$node->stop;
	}
	($rc) = run_datakey([ 'rewrap', '-D', $pgdata, '--new-key-wrap-command=-',
		'--new-key-unwrap-command=-' ]);
	is($rc, 0, "$point: a later rewrap works");
}

# The previous key file kept by the crash opens with the old passphrase.
{
	my $dir = temp_dir();
	my $old = passphrase_file($dir, 'old.pass', 'old secret');
	my $new = passphrase_file($dir, 'new.pass', 'new secret');
	my $pgdata = new_cluster($dir, openssl_wrap($old), openssl_unwrap($old))->data_dir;
	my ($rc) = run_datakey([ 'rewrap', '-D', $pgdata, '--new-key-wrap-command=' . openssl_wrap($new),
		'--new-key-unwrap-command=' . openssl_unwrap($new) ],
		env => { FE_DATAKEY_CRASH_AT => 'after-rename' });
	is($rc, -9, 'previous: rewrap killed after the rename');
	my ($orc) = run_command([ 'openssl', 'enc', '-d', '-aes-128-cbc', '-pbkdf2', '-pass',
		"file:$old", '-in', "$pgdata/pg_encryption/key.bin.prev", '-out', '/dev/null' ]);
	is($orc, 0, 'previous: key.bin.prev opens with the old passphrase');
	($rc) = run_datakey([ 'repair', '-D', $pgdata ]);
	is($rc, 0, 'previous: repair completes');
	ok(!-e "$pgdata/pg_encryption/key.bin.prev", 'previous: dropped once the verified rewrap is complete');
}

# A crash inside repair is repaired by running it again.
{
	my $dir = temp_dir();
	my $new = passphrase_file($dir, 'new.pass', 'new secret');
	my $pgdata = new_cluster($dir, '-', '-')->data_dir;
	my ($rc) = run_datakey([ 'rewrap', '-D', $pgdata, '--new-key-wrap-command=' . openssl_wrap($new),
		'--new-key-unwrap-command=' . openssl_unwrap($new) ],
		env => { FE_DATAKEY_CRASH_AT => 'after-journal' });
	is($rc, -9, 'repair crash: rewrap killed after the commit');
	($rc) = run_datakey([ 'repair', '-D', $pgdata ], env => { FE_DATAKEY_CRASH_AT => 'after-rename' });
	is($rc, -9, 'repair killed after its rename');
	is(datakey_json($pgdata)->{rewrap}{state}, 'committed', 'still committed');
	($rc) = run_datakey([ 'repair', '-D', $pgdata ], env => { FE_DATAKEY_CRASH_AT => 'after-conf' });
	is($rc, -9, 'repair killed after the configuration');
	my ($rc2, $out) = run_datakey([ 'repair', '-D', $pgdata ]);
	is($rc2, 0, 'third repair finishes');
	is(datakey_json($pgdata)->{rewrap}{state}, 'none', 'consistent');
	($rc) = run_datakey([ 'verify', '-D', $pgdata ]);
	is($rc, 0, 'the configured command opens the key');
}

done_testing();
