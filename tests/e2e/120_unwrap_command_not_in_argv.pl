# The unwrap command given to pg_upgrade or pg_rewind reaches their servers
# through the environment (PGDATAKEYUNWRAPCMD), never through a command
# line: no argv of any program they run, however short-lived (every execve
# of the run is traced with strace -f), holds a marker carried by the
# command, and afterwards neither does any postmaster.opts, server log or
# pg_upgrade log.  The only exception is the
# shell that runs the command itself (bash -c COMMAND), which is the
# command.  pg_ctl restart from the postmaster.opts pg_upgrade left behind
# evaluates nothing.  The server started with an empty setting takes the
# variable and logs where it took the command from, never its text.
use strict;
use warnings;

use FeDatakey::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy qw(copy);
use IPC::Run ();
use FeDatakey::Files qw(files_containing);
use FeDatakey::Run ();

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;
my $base = $C->base_dir;

my ($wrap, $unwrap) = key_commands('argv');
my $marker = 'FeMarker' . join('', map { int(rand(10)) } 1 .. 12);
my $evaluated = "$base/evaluated";
# The same key, unwrapped by a command that carries the marker, double
# quotes, and text that a shell would evaluate if the command went through
# one more round of parsing (it is single-quoted for the command's shell).
my $marked = ": $marker '\$(touch $evaluated)' '`touch $evaluated`'; $unwrap";

# The shell running the key command: its own argv is the command.
sub is_key_command_shell
{
	my (@argv) = @_;
	return @argv >= 3 && $argv[0] =~ m{(^|/)(ba)?sh$} && $argv[-2] eq '-c'
	  && index($argv[-1], ": $marker ") == 0;
}

# Runs @cmd under strace -f, which records the argv of every execve of it
# and of every process it starts (bounded by $limit seconds).  Returns ($rc,
# $output, \@hits, $execs, $shells): hits as "pid: argv" for each execve
# whose argv holds the marker, but for the key command's own shell and, when
# allowed, the program given the command as its option; $execs counts the
# execve calls traced, $shells those of the key command's shell.
my $traces = 0;

sub run_traced
{
	my ($cmd, %opts) = @_;
	my $trace = "$base/execve." . ++$traces;
	my ($in, $out, $err) = ('', '', '');
	local %ENV = (%ENV, %{ $opts{env} // {} });
	my $h = IPC::Run::start(
		[
			'strace', '-f', '-qq', '--seccomp-bpf', '-e', 'trace=execve',
			'-s', '1048576', '-o', $trace, '--', @$cmd
		],
		'<', \$in, '>', \$out, '2>', \$err,
		IPC::Run::timeout($opts{limit} // 300));
	my $finished = eval { $h->finish; 1 };
	if (!$finished)
	{
		$h->kill_kill;
		return (124, $err . "\n[killed after the time limit]", [], 0, 0);
	}
	my (@hits, $execs, $shells);
	for my $line (split /\n/, slurp_file($trace))
	{
		next unless $line =~ /^(\d+)\s+execve\("(?:[^"\\]|\\.)*", \[(.*?)\](?:, |\.\.\.)/;
		my ($pid, $array) = ($1, $2);
		$execs++;
		my @argv = map { s/\\(.)/$1/gr } $array =~ /"((?:[^"\\]|\\.)*)"/g;
		next if index(join("\0", @argv), $marker) < 0;
		if (is_key_command_shell(@argv)) { $shells++; next }
		next if $opts{allow_self} && $argv[0] =~ m{(^|/)\Q$opts{allow_self}\E$};
		push @hits, "$pid: " . join(' ', @argv);
	}
	return ($h->result(0), $out . $err, \@hits, $execs // 0, $shells // 0);
}

# Every file below the given directories, or given itself, that holds the
# marker.
sub leaks
{
	my @hits;
	for my $path (@_)
	{
		if (-d $path) { push @hits, map { "$path/$_" } files_containing($path, $marker) }
		elsif (-e $path && index(slurp_file($path), $marker) >= 0) { push @hits, $path }
	}
	return @hits;
}

# --- the trace itself: a program that lives a millisecond is seen ------------------------------------
{
	my ($rc, $out, $hits) = run_traced([ 'bash', '-c', "/bin/true $marker; exit 0" ]);
	is($rc, 0, 'a traced run');
	# The shell that got it as its -c, and the program that shell ran.
	is(scalar(@$hits), 2, 'the trace reports each execve that holds the marker')
	  or diag explain $hits;
	is(scalar(grep { /: \/bin\/true \Q$marker\E$/ } @$hits), 1,
		'a short-lived program with the marker in its argv is caught');
}

# --- the server: empty setting, command from the environment ------------------------------------------
my $old = $C->new('old');
$old->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
{
	# A copy with the setting emptied: the environment supplies the command.
	$old->append_conf('postgresql.conf', "data_encryption_key_unwrap_command = ''");
	{
		local $ENV{PGDATAKEYUNWRAPCMD} = $marked;
		$old->start;
	}
	like(slurp_file($old->logfile),
		qr/LOG:  running data encryption key unwrap command from environment variable "PGDATAKEYUNWRAPCMD"/,
		'a server with an empty setting takes the command from PGDATAKEYUNWRAPCMD and says so');
	unlike(slurp_file($old->logfile), qr/\Q$marker\E/, 'the log does not hold the command');
	ok(!-e $evaluated, 'nothing was evaluated');
	$old->safe_psql('postgres', "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g");
	$old->stop;

	my $offset = -s $old->logfile;
	ok(!$old->start(fail_ok => 1), 'without the variable that server does not start');
	like(slurp_file($old->logfile, $offset), qr/FATAL:  data encryption key unwrap command not configured/,
		'and says why');

	# Back to the configured command.
	$old->append_conf('postgresql.conf',
		"data_encryption_key_unwrap_command = '" . ($unwrap =~ s/'/''/gr) . "'");
}

# --- pg_upgrade with the command in the environment ----------------------------------------------
{
	my $new = $C->new('new');
	$new->init(
		encrypted => 1,
		wrap => $wrap,
		unwrap => $unwrap,
		copy_key_from => $old->data_dir . '/pg_encryption/key.bin');
	my ($rc, $out, $hits, $execs, $shells) =
	  run_traced(pg_upgrade_command($old, $new, '--retain'), env => { PGDATAKEYUNWRAPCMD => $marked });
	is($rc, 0, 'pg_upgrade with the command in PGDATAKEYUNWRAPCMD') or diag $out;
	cmp_ok($execs, '>', 10, "every program pg_upgrade ran was traced ($execs execve calls)");
	cmp_ok($shells, '>=', 2,
		"among them the key command's own shells ($shells)");
	is_deeply($hits, [], 'no program got the command on its command line');
	is_deeply([ leaks($old->data_dir, $new->data_dir, $new->host, $old->logfile, $new->logfile) ], [],
		'no postmaster.opts, server log or pg_upgrade log holds it');
	like(slurp_file($new->data_dir . '/postmaster.opts'), qr/"data_encryption_key_unwrap_command="/,
		'the servers were told to take the command from the environment');
	ok(!-e $evaluated, 'nothing was evaluated');

	# pg_ctl restart re-reads postmaster.opts through the shell.
	{
		local $ENV{PGDATAKEYUNWRAPCMD} = $marked;
		command_ok([ 'pg_ctl', '-w', '-t', '60', '-D', $new->data_dir, '-l', $new->logfile, 'restart' ],
			'pg_ctl restart from the postmaster.opts pg_upgrade left');
	}

	ok(!-e $evaluated, 'pg_ctl restart evaluated nothing');
	system_or_bail('pg_ctl', '-w', '-D', $new->data_dir, 'stop');
	is_deeply([ leaks($new->data_dir, $new->host, $new->logfile) ], [], 'still no file holds the command');
}

# --- pg_rewind with the command as its option, target crashed ---------------------------------------
{
	my $primary = $C->new('primary');
	$primary->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	$primary->start;
	$primary->safe_psql('postgres', "CREATE TABLE t (id int PRIMARY KEY, src text);
		INSERT INTO t SELECT g, 'base' FROM generate_series(1, 100) g;");
	my $standby = $primary->basebackup('standby', '-R');
	$standby->start;
	$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'streamed' FROM generate_series(101, 110) g");
	ok($standby->poll_query_until('postgres', "SELECT count(*) FROM t", '110'), 'the standby streams');
	$standby->promote;
	$standby->safe_psql('postgres', "INSERT INTO t SELECT g, 'new' FROM generate_series(201, 250) g; CHECKPOINT;");
	$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'old' FROM generate_series(301, 340) g");
	# Crashed: pg_rewind runs single-user recovery on it first.
	$primary->stop('immediate');
	# pg_rewind copies postgresql.conf from the source: the old primary
	# keeps its own, which names its port and socket directory.
	my $conf = $primary->data_dir . '/postgresql.conf';
	copy($conf, "$base/postgresql.conf.primary") or die "copy: $!";

	my ($rc, $out, $hits, $execs, $shells) = run_traced(
		[
			'pg_rewind', '-D', $primary->data_dir, '--source-server=' . $standby->connstr('postgres'),
			'-R', "--key-unwrap-command=$marked"
		],
		allow_self => 'pg_rewind');
	is($rc, 0, 'pg_rewind with --key-unwrap-command of a crashed target') or diag $out;
	cmp_ok($execs, '>', 3, "every program pg_rewind ran was traced ($execs execve calls)");
	cmp_ok($shells, '>=', 1, "among them the key command's own shell ($shells)");
	is_deeply($hits, [], "no program but pg_rewind itself got the command on its command line");
	unlike($out, qr/\Q$marker\E/, "pg_rewind's messages do not hold it");
	is_deeply([ leaks($primary->data_dir, $standby->data_dir, $primary->host, $primary->logfile, $standby->logfile) ],
		[], 'no postmaster.opts or log holds it');
	ok(!-e $evaluated, 'nothing was evaluated');

	copy("$base/postgresql.conf.primary", $conf) or die "copy: $!";
	$primary->start;
	ok($primary->poll_query_until('postgres', "SELECT count(*) FROM t WHERE src = 'new'", '50'),
		'the rewound node follows the new primary');
	$primary->stop;
	$standby->stop;
}

done_testing();
