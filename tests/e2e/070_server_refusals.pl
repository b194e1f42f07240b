# The server refuses to start an encrypted cluster whose key it cannot
# unwrap and verify, says why in its log (message, detail, hint), exits
# before accepting connections, and starts again once the cause is fixed,
# with the data written before intact: wrong passphrase, unwrap printing
# garbage, too little, too much or nothing, a command that fails or is
# killed, the setting removed from the configuration or empty, a missing
# key check.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::Run;
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'the right passphrase');
my $wrap = openssl_wrap($pass);
my $unwrap = openssl_unwrap($pass);

my $node = FeDatakey::Cluster->new('data');
my $pgdata = $node->data_dir;
my ($rc, $out, $err) = $node->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
is($rc, 0, 'initdb -y') or diag $err;
ok($node->start(fail_ok => 1), 'the server starts');
$node->safe_psql('postgres', "create table kept (v text); insert into kept values ('written before')");
ok($node->stop('fast', fail_ok => 1), 'and stops');

sub conf_quote
{
	my ($v) = @_;
	$v =~ s/\\/\\\\/g;
	$v =~ s/'/''/g;
	return "'$v'";
}

# Sets (or with undef removes) the unwrap command in postgresql.conf.
sub set_unwrap
{
	my ($command) = @_;
	my $conf = slurp_file("$pgdata/postgresql.conf");
	$conf =~ s/^data_encryption_key_unwrap_command\b.*\n//mg;
	$conf .= "data_encryption_key_unwrap_command = " . conf_quote($command) . "\n" if defined $command;
	write_file("$pgdata/postgresql.conf", $conf);
}

# refused(name, qr/FATAL message/, qr/detail/hint/): the start fails, the
# log says why, no server is left running; then the right configuration
# starts again with the data intact.
sub refused
{
	my ($name, $fatal, $more) = @_;
	my $offset = -s $node->logfile;
	ok(!$node->start(fail_ok => 1), "$name: pg_ctl start fails");
	my $log = slurp_file($node->logfile, $offset);
	like($log, $fatal, "$name: the log says why");
	like($log, $more, "$name: with detail and hint") if $more;
	unlike($log, qr/database system is ready to accept connections|listening on/,
		"$name: the server never accepted connections");
	ok(!-e "$pgdata/postmaster.pid", "$name: no server left running");
	my @s = glob($node->host . '/.s.PGSQL.' . $node->port . '*');
	is(scalar @s, 0, "$name: no socket left");
	return $log;
}

sub starts_again
{
	my ($name) = @_;
	set_unwrap($unwrap);
	ok($node->start(fail_ok => 1), "$name: fixed, the server starts again");
	is($node->safe_psql('postgres', 'select v from kept'), 'written before', "$name: the data written before is intact");
	ok($node->stop('fast', fail_ok => 1), "$name: stop");

}

my $no_tty_hint = qr/HINT:  .*no controlling terminal, as when it is started by pg_ctl or a service manager/;

# --- wrong passphrase -----------------------------------------------------------------------------
{
	my $good = slurp_file($pass);
	write_file($pass, rejected_passphrase("$pgdata/pg_encryption/key.bin") . "\n", 0600);
	my $log = refused('wrong passphrase', qr/FATAL:  key unwrap command failed/,
		qr/DETAIL:  The command exited with status 1\./);
	like($log, qr/bad decrypt/, "wrong passphrase: openssl's own message is in the log");
	like($log, $no_tty_hint, 'wrong passphrase: the hint says a prompting command cannot work under pg_ctl');
	unlike($log, qr/openssl enc|\Q$pass\E/, 'wrong passphrase: the command text is not in the log');
	write_file($pass, $good, 0600);
	starts_again('wrong passphrase');
}

# --- the unwrap command's output --------------------------------------------------------------------
my @cases = (
	[ 'garbage of the right length', 'head -c 64 /dev/urandom # %p',
		qr/FATAL:  data encryption key from key unwrap command does not match the key check\n.*DETAIL:  .*\n.*HINT:  The passphrase or master key used to unwrap the key is probably wrong/ ],
	[ 'garbage text', 'echo "this is not a key" # %p',
		qr/FATAL:  data encryption key from key unwrap command is too short\n.*DETAIL:  Expected 64 bytes, got 18\./ ],
	[ 'too little', "$unwrap | head -c 63",
		qr/FATAL:  data encryption key from key unwrap command is too short\n.*DETAIL:  Expected 64 bytes, got 63\./ ],
	[ 'too much', "$unwrap; echo",
		qr/FATAL:  data encryption key from key unwrap command is too long\n.*DETAIL:  Expected 64 bytes, got 65\./ ],
	[ 'nothing', ': "%p"',
		qr/FATAL:  key unwrap command produced no output/ ],
	[ 'non-zero exit', "$unwrap; exit 7",
		qr/FATAL:  key unwrap command failed\n.*DETAIL:  The command exited with status 7\./ ],
	[ 'first stage of a pipeline fails', "false | $unwrap",
		qr/FATAL:  key unwrap command failed/ ],
	[ 'killed by a signal', 'kill -KILL $$ # %p',
		qr/FATAL:  key unwrap command failed\n.*DETAIL:  The command was terminated by signal 9/ ],
	[ 'program not found', 'no-such-unwrap-program "%p"',
		qr/FATAL:  key unwrap command failed\n.*DETAIL:  The command exited with status 127\./ ],
	[ 'no %p', 'cat pg_encryption/key.bin',
		qr/FATAL:  key unwrap command does not contain %p\n.*DETAIL:  The value given by data_encryption_key_unwrap_command has no %p/ ],
	[ 'only %%p', 'cat %%p',
		qr/FATAL:  key unwrap command does not contain %p/ ],
);
for my $case (@cases)
{
	my ($name, $command, $fatal) = @$case;
	set_unwrap($command);
	refused($name, $fatal);
	starts_again($name);
}

# --- the setting removed from the configuration, or empty ----------------------------------------------
{
	set_unwrap(undef);
	my ($crc, $value) = $node->postgres_C('data_encryption_key_unwrap_command');
	is($value, '', 'removed: postgres -C shows the setting empty');
	refused('removed', qr/FATAL:  data encryption key unwrap command not configured/,
		qr/DETAIL:  pg_control says the cluster is encrypted, but neither data_encryption_key_unwrap_command nor the environment variable PGDATAKEYUNWRAPCMD is set\.\n.*HINT:  Set data_encryption_key_unwrap_command in postgresql\.conf/);
	starts_again('removed');

	set_unwrap('');
	refused('empty', qr/unwrap command not configured/, qr/HINT:  Set data_encryption_key_unwrap_command/);
	starts_again('empty');
}

# --- a missing key check -----------------------------------------------------------------------------
{
	my $check = slurp_file("$pgdata/pg_encryption/key.check");
	unlink "$pgdata/pg_encryption/key.check";
	refused('missing key check', qr/FATAL:  key check file .* is missing/);
	write_file("$pgdata/pg_encryption/key.check", $check, 0600);
	starts_again('missing key check');
}

# --- a single-user backend refuses the same way ----------------------------------------------------
{
	write_file("$dir/wrong", "wrong\n", 0600);
	($rc, $out, $err) = run_command(
		[ 'postgres', '--single', '-D', $pgdata, '-c',
			'data_encryption_key_unwrap_command=' . openssl_unwrap("$dir/wrong"), 'postgres' ],
		stdin => "select 1;\n");
	isnt($rc, 0, 'single-user with a wrong passphrase exits');
	like($err, qr/FATAL:  key unwrap command failed/, 'says why');
}

done_testing();
