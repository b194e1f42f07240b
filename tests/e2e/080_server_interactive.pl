# A cluster protected by the interactive recipe (openssl prompting on the
# terminal): a server started in the foreground on a terminal asks for the
# passphrase, accepts connections, and stops; a wrong passphrase at the
# prompt stops it with the reason. Under pg_ctl, which detaches the server
# from the terminal, it cannot prompt: the server does not start and its
# log says why, with the hint.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::KeyCommands;
use FeDatakey::Run;
use PostgreSQL::Test::Utils qw(command_ok slurp_file);
use Test::More;

my $wrap = 'openssl enc -e -aes-128-cbc -pbkdf2 -out "%p"';
my $unwrap = 'openssl enc -d -aes-128-cbc -pbkdf2 -in "%p"';
my $passphrase = 'foreground passphrase';

# The cluster, made on a terminal with the interactive recipe.
my $node = FeDatakey::Cluster->new('data');
my $pgdata = $node->data_dir;
{
	my $t = pty_start([ 'initdb', '-D', $pgdata, '-A', 'trust', '-N', '-y',
		"--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap" ]);
	$t->expect(qr/enter AES-128-CBC encryption password:/i);
	$t->send("$passphrase\n");
	$t->expect(qr/Verifying - enter AES-128-CBC encryption password:/i);
	$t->send("$passphrase\n");
	is($t->finish, 0, 'initdb with the interactive recipe') or diag $t->output;
}
$node->configure_server;

my @postgres = ('postgres', '-D', $pgdata);
my @stop = ('pg_ctl', '-w', '-D', $pgdata, '-m', 'fast', 'stop');

# --- in the foreground on a terminal: prompt, connect, stop -----------------------------------
{
	my $t = pty_start(\@postgres);
	ok(defined $t->expect(qr/enter AES-128-CBC decryption password:/i), 'the server prompts on its terminal')
	  or diag $t->output;
	$t->send("$passphrase\n");
	ok(defined $t->expect(qr/LOG:  data encryption key loaded and verified/), 'the key is loaded and verified')
	  or diag $t->output;
	ok(defined $t->expect(qr/database system is ready to accept connections/), 'the server accepts connections')
	  or diag $t->output;
	is($node->safe_psql('postgres', "create table t as select 'kept' as v; select v from t"),
		'kept', 'psql writes and reads a table');
	command_ok(\@stop, 'pg_ctl stop');
	is($t->finish, 0, 'the foreground server exits cleanly') or diag $t->output;
	unlike($t->output, qr/\Q$passphrase\E/, 'the passphrase was not echoed');
	my @prompts = $t->output =~ /password:/g;
	is(scalar @prompts, 1, 'one prompt');
}

# --- a wrong passphrase at the prompt ---------------------------------------------------------------
{
	my $t = pty_start(\@postgres);
	$t->expect(qr/enter AES-128-CBC decryption password:/i);
	$t->send(rejected_passphrase("$pgdata/pg_encryption/key.bin") . "\n");
	my $rc = $t->finish;
	isnt($rc, 0, 'a wrong passphrase stops the server');
	my $screen = $t->output;
	like($screen, qr/bad decrypt/, "openssl's message");
	like($screen, qr/FATAL:  key unwrap command failed/, 'the FATAL says the unwrap command failed');
	unlike($screen, qr/no controlling terminal/, 'on a terminal, no hint about pg_ctl');
	unlike($screen, qr/ready to accept connections/, 'it never accepted connections');
	ok(!-e "$pgdata/postmaster.pid", 'no server left');
}

# --- under pg_ctl: no terminal, the clear failure ----------------------------------------------------
{
	# Even started from a terminal, pg_ctl detaches the server from it.
	my $log = $node->logfile;
	my $t = pty_start([ 'pg_ctl', '-w', '-t', '30', '-D', $pgdata, '-l', $log, 'start' ]);
	my $rc = $t->finish(60);
	isnt($rc, 0, 'pg_ctl start fails');
	like($t->output, qr/could not start server/, 'pg_ctl says the server did not start');
	unlike($t->output, qr/decryption password:/, 'no prompt reached the terminal');
	my $server_log = slurp_file($log);
	like($server_log, qr/FATAL:  key unwrap command failed/, 'the log says the unwrap command failed');
	like($server_log,
		qr/HINT:  .*The server has no controlling terminal, as when it is started by pg_ctl or a service manager such as systemd: a key unwrap command that prompts for a passphrase cannot work there\./,
		'with the hint about pg_ctl and service managers');
	unlike($server_log, qr/openssl enc/, 'the command text is not in the log');
	ok(!-e "$pgdata/postmaster.pid", 'no server left');

	# And without any terminal at all.
	my $offset = -s $log;
	ok(!$node->start(fail_ok => 1), 'pg_ctl start without a terminal fails too');
	like(slurp_file($log, $offset), qr/no controlling terminal/, 'with the same hint');
}

# --- the data is intact: once more in the foreground -------------------------------------------------
{
	my $t = pty_start(\@postgres);
	$t->expect(qr/decryption password:/i);
	$t->send("$passphrase\n");
	ok(defined $t->expect(qr/ready to accept connections/), 'started again in the foreground') or diag $t->output;
	is($node->safe_psql('postgres', 'select v from t'), 'kept', 'the table is intact');
	PostgreSQL::Test::Utils::system_log(@stop);
	is($t->finish, 0, 'stopped');
}

done_testing();
