# A wrap command that fails in any way fails initdb cleanly: non-zero exit,
# a pipeline whose first stage fails, a command that writes nothing or an
# empty file, one killed by a signal, one that does not read the key. The
# data directory is removed (kept without a key file under --no-clean),
# and the wrap command runs exactly once while the unwrap command never
# runs, not even in initdb's bootstrap and post-bootstrap backends.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Files;
use PostgreSQL::Test::Utils qw(command_ok slurp_file);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $unwrap_marker = "$dir/unwrap-ran";
my $wrap_count = "$dir/wrap-count";
# An unwrap command that leaves a trace each time it runs.
my $unwrap = "echo ran >> $unwrap_marker; cat \"%p\"";

sub wrap_fails
{
	my ($name, $wrap, $message, $more) = @_;
	my $node = FeDatakey::Cluster->new($name);
	my $pgdata = $node->data_dir;
	my ($rc, $out, $err) = $node->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
	is($rc, 1, "$name: initdb fails");
	like($out, qr/^performing post-bootstrap initialization \.\.\. ok\nwriting data encryption key \.\.\. $/m,
		"$name: the wrap command runs at the end, after initdb's backends");
	like($err, $message, "$name: says why");
	like($err, $more, "$name: with detail") if $more;
	like($err, qr/removing data directory/, "$name: initdb removes the data directory");
	ok(!-e $pgdata, "$name: nothing left behind");
	unlike($err, qr/\Q$wrap\E/, "$name: the command text is not shown");
	ok(!-e $unwrap_marker, "$name: the unwrap command never ran");
	return $err;
}

wrap_fails('exit_status', "cat > \"%p\"; exit 3", qr/error: key wrap command failed/,
	qr/detail: The command exited with status 3\./);
wrap_fails('pipeline_first_stage', "false | cat > \"%p\"", qr/error: key wrap command failed/,
	qr/detail: The command exited with status 1\./);
wrap_fails('pipeline_first_stage_openssl', "openssl enc -e -aes-128-cbc -pbkdf2 -pass file:$dir/missing | cat > \"%p\"",
	qr/error: key wrap command failed/);
wrap_fails('writes_nothing', "cat > /dev/null # %p", qr/error: key wrap command did not write the key file/);
wrap_fails('writes_empty_file', "cat > /dev/null; : > \"%p\"", qr/error: key wrap command wrote an empty key file/);
wrap_fails('killed', "cat > \"%p\"; kill -KILL \$\$", qr/error: key wrap command failed/,
	qr/detail: The command was terminated by signal 9: Killed\./);
wrap_fails('killed_by_term', "kill -TERM \$\$; cat > \"%p\"", qr/error: key wrap command failed/,
	qr/signal 15/);
wrap_fails('reads_nothing', "echo not the key > \"%p\"", qr/error: key wrap command did not read the whole key/);
wrap_fails('not_found', "no-such-program-fe-datakey > \"%p\"", qr/error: key wrap command failed/,
	qr/status 127/);

# --no-clean keeps the data directory, but never a partial key file.
{
	my $node = FeDatakey::Cluster->new('no_clean');
	my $pgdata = $node->data_dir;
	my ($rc, $out, $err) = $node->initdb('--no-clean', '-y',
		"--key-wrap-command=head -c 10 > \"%p\"; exit 1", "--key-unwrap-command=$unwrap");
	is($rc, 1, '--no-clean: initdb fails');
	like($err, qr/data directory ".*" not removed at user's request/, '--no-clean: keeps the directory');
	ok(-f "$pgdata/PG_VERSION", '--no-clean: the cluster files are there');
	ok(!-e "$pgdata/pg_encryption/key.bin", '--no-clean: but no key.bin');
	is_deeply([ grep { m{^pg_encryption/.*key\.bin} } list_tree($pgdata) ], [],
		'--no-clean: nor any partial or temporary key file');
	unlike(slurp_file("$pgdata/postgresql.conf"), qr/^data_encryption_key_unwrap_command/m,
		'--no-clean: postgresql.conf does not set the unwrap command');
}

# A successful initdb runs the wrap command once and the unwrap command never;
# postgres -C does not run it either, and neither does --describe-config.
{
	my $node = FeDatakey::Cluster->new('counted');
	my $pgdata = $node->data_dir;
	my $wrap = "echo ran >> $wrap_count; cat > \"%p\"";
	my ($rc, $out, $err) = $node->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
	is($rc, 0, 'initdb with counting commands') or diag $err;
	is(slurp_file($wrap_count), "ran\n", 'the wrap command ran exactly once');
	ok(!-e $unwrap_marker, 'the unwrap command did not run during initdb');

	my ($crc, $value) = $node->postgres_C('data_encryption_key_unwrap_command');
	is($crc, 0, 'postgres -C works on the encrypted cluster');
	is($value, $unwrap, 'and shows the unwrap command');
	($crc) = $node->postgres_C('shared_buffers');
	is($crc, 0, 'postgres -C of another setting');
	ok(!-e $unwrap_marker, 'postgres -C never ran the unwrap command');
	command_ok([ 'postgres', '--describe-config', '-D', $pgdata ], 'postgres --describe-config');

	ok(!-e $unwrap_marker, 'postgres --describe-config never ran the unwrap command');

	# Only an actual start does.
	ok($node->start(fail_ok => 1), 'the server starts');
	is(slurp_file($unwrap_marker), "ran\n", 'the server start ran the unwrap command once');
	ok($node->stop('fast', fail_ok => 1), 'the server stops');
}

done_testing();
