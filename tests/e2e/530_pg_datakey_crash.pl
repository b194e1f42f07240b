# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# kill -9 of pg_datakey at every step of the rewrap protocol (and of repair),
# key.bin.prev's steps included:
# status reports the state, the cluster stays startable or repairable, and
# after repair the server starts with the data intact.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Datakey qw(datakey_json datakey_signal);
use FeDatakey::Run qw(run_command);
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use PostgreSQL::Test::Utils qw(command_ok command_fails command_exit_is command_checks_all);
use Test::More;


# A new encrypted node of the version under test.
sub new_node
{
	my ($name, $wrap, $unwrap) = @_;
	my $node = FeDatakey::Cluster->new($name);
	$node->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	return $node;
}

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

my $dir = PostgreSQL::Test::Utils::tempdir();
my $old = passphrase_file($dir, 'old.pass', 'old secret');
my $new = passphrase_file($dir, 'new.pass', 'new secret');

for my $case (@cases)
{
	my ($point, $state, $is_new, $startable, $outcome) = @$case;
	(my $name = $point) =~ tr/-/_/;
	my $node = new_node($name, openssl_wrap($old), openssl_unwrap($old));
	my $pgdata = $node->data_dir;
	my $kcv = datakey_json($pgdata)->{key_check_value};
	{
		$node->start;
		$node->safe_psql('postgres', "CREATE TABLE t AS SELECT 'kept'::text AS v");
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
	is( datakey_signal(
			[
				'rewrap', '-D', $pgdata, "--new-key-wrap-command=$wrap",
				'--new-key-unwrap-command=' . openssl_unwrap($new)
			],
			%env),
		9,
		"$point: pg_datakey was killed");

	my $status = datakey_json($pgdata);
	is($status->{rewrap}{state}, $state, "$point: status reports \"$state\"");
	is(-e "$pgdata/pg_encryption/key.bin.prev" ? 1 : 0, $keeps_previous{$point} ? 1 : 0,
		"$point: the previous key file is " . ($keeps_previous{$point} ? 'kept' : 'absent'));
	is($status->{key_check_value}, $kcv, "$point: key check unchanged");
	if ($state eq 'committed')
	{
		is($status->{rewrap}{key_file_is_new} ? 1 : 0, $is_new,
			"$point: status knows whether key.bin is the new file");
		my (undef, undef, $serr) = run_command([ 'pg_datakey', 'status', '-D', $pgdata ]);
		like($serr, qr/run "pg_datakey repair" before starting the server/,
			"$point: status tells to repair");
	}
	my @verify = ('pg_datakey', 'verify', '-D', $pgdata);
	my $opens = "$point: the configured command " . ($startable ? 'opens' : 'does not open') . ' key.bin';
	if ($startable) { command_ok(\@verify, $opens) }
	else { command_fails(\@verify, $opens) }
	command_ok([ @verify, '--key-unwrap-command=' . openssl_unwrap($is_new ? $new : $old) ],
		"$point: key.bin opens with the " . ($is_new ? 'new' : 'old') . ' passphrase');

	if ($state eq 'committed')
	{
		command_checks_all(
			[ 'pg_datakey', 'rewrap', '-D', $pgdata, '--new-key-wrap-command=-', '--new-key-unwrap-command=-' ],
			10, [],
			[qr/hint: Run "pg_datakey repair"/],
			"$point: a new rewrap is refused until repaired, with a hint");
	}
	if ($startable)
	{
		ok($node->start(fail_ok => 1), "$point: server starts before repair");
		$node->stop;
	}

	my %says = (
		'none' => qr/No interrupted rewrap/,
		'rolled back' => qr/rolled back/,
		'completed' => qr/completed/);
	command_checks_all([ 'pg_datakey', 'repair', '-D', $pgdata ],
		0, [ $says{$outcome} ], [], "$point: repair succeeds: $outcome");

	$status = datakey_json($pgdata);
	is($status->{rewrap}{state}, 'none', "$point: consistent after repair");
	is_deeply([ sort map { $_->{path} } @{ $status->{files} } ],
		[ 'pg_encryption', 'pg_encryption/key.bin', 'pg_encryption/key.check',
			'pg_encryption/rewrap.lock' ], "$point: no debris, no journal");
	command_ok(\@verify, "$point: the configured command opens key.bin after repair");
	my $now_new = $outcome eq 'completed';
	command_fails([ @verify, '--key-unwrap-command=' . openssl_unwrap($now_new ? $old : $new) ],
		"$point: the " . ($now_new ? 'old' : 'unused new') . ' passphrase opens nothing');
	{
		ok($node->start(fail_ok => 1), "$point: server starts after repair");
		is($node->safe_psql('postgres', 'SELECT v FROM t'), 'kept', "$point: data intact");
		$node->stop;
	}
	command_ok(
		[ 'pg_datakey', 'rewrap', '-D', $pgdata, '--new-key-wrap-command=-', '--new-key-unwrap-command=-' ],
		"$point: a later rewrap works");
}

# The previous key file kept by the crash opens with the old passphrase.
{
	my $pgdata = new_node('previous', openssl_wrap($old), openssl_unwrap($old))->data_dir;
	is( datakey_signal(
			[
				'rewrap', '-D', $pgdata, '--new-key-wrap-command=' . openssl_wrap($new),
				'--new-key-unwrap-command=' . openssl_unwrap($new)
			],
			FE_DATAKEY_CRASH_AT => 'after-rename'),
		9,
		'previous: rewrap killed after the rename');
	command_ok(
		[
			'openssl', 'enc', '-d', '-aes-128-cbc', '-pbkdf2', '-pass', "file:$old",
			'-in', "$pgdata/pg_encryption/key.bin.prev", '-out', '/dev/null'
		],
		'previous: key.bin.prev opens with the old passphrase');
	command_ok([ 'pg_datakey', 'repair', '-D', $pgdata ], 'previous: repair completes');
	ok(!-e "$pgdata/pg_encryption/key.bin.prev", 'previous: dropped once the verified rewrap is complete');
}

# A crash inside repair is repaired by running it again.
{
	my $pgdata = new_node('repair_crash', '-', '-')->data_dir;
	is( datakey_signal(
			[
				'rewrap', '-D', $pgdata, '--new-key-wrap-command=' . openssl_wrap($new),
				'--new-key-unwrap-command=' . openssl_unwrap($new)
			],
			FE_DATAKEY_CRASH_AT => 'after-journal'),
		9,
		'repair crash: rewrap killed after the commit');
	is(datakey_signal([ 'repair', '-D', $pgdata ], FE_DATAKEY_CRASH_AT => 'after-rename'),
		9, 'repair killed after its rename');
	is(datakey_json($pgdata)->{rewrap}{state}, 'committed', 'still committed');
	is(datakey_signal([ 'repair', '-D', $pgdata ], FE_DATAKEY_CRASH_AT => 'after-conf'),
		9, 'repair killed after the configuration');
	command_ok([ 'pg_datakey', 'repair', '-D', $pgdata ], 'third repair finishes');
	is(datakey_json($pgdata)->{rewrap}{state}, 'none', 'consistent');
	command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], 'the configured command opens the key');
}

done_testing();
