# The fault matrix, key files of the wrong type, for the server's key load
# (pg_ctl start and postgres --single): pg_encryption/key.bin or key.check
# replaced by a FIFO, a directory, a socket, or a symbolic link to a regular
# copy of itself.  Each is refused at once (the unwrap timeout is its 300 s
# default: a refusal within seconds is not the timeout), with a FATAL that
# names the file and its type, before the unwrap command runs (it would
# touch a marker), with pg_encryption/ unchanged; with the file put back the
# server starts.  A FIFO used to block the start in open() for good.
use strict;
use warnings;
use Time::HiRes qw(time);
use FeDatakey::Cluster;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::Run ();    # by its full name: upstream's Utils exports a run_command too
use FeDatakey::BoundedRun;
use FeDatakey::Faults;
use FeDatakey::OddFiles;
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;

# Seconds within which a refusal counts as "at once" (on a busy machine).
my $bound = 10;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'file types');
my $marker = "$dir/unwrap-ran";
my $unwrap = "touch $marker && " . openssl_unwrap($pass);

my $node = FeDatakey::Cluster->new('types');
$node->init(encrypted => 1, wrap => openssl_wrap($pass), unwrap => $unwrap);
my $pgdata = $node->data_dir;
my $keydir = "$pgdata/pg_encryption";
write_file("$dir/select.sql", "select 1;\n");

is(scalar(($node->postgres_C('data_encryption_key_unwrap_timeout'))[1]), '300',
	'the unwrap timeout is its default, 300 s');
ok($node->start(fail_ok => 1), 'the cluster starts as made');
$node->stop('fast');
ok(-e $marker, 'the unwrap command touches its marker');

my %what = ('key.bin' => 'data encryption key file', 'key.check' => 'key check file');

# A postmaster left running (one that started, or hangs) is stopped, else
# killed; returns whether there was one.
sub kill_left_postmaster
{
	return 0 unless -e "$pgdata/postmaster.pid";
	my ($pid) = slurp_file("$pgdata/postmaster.pid") =~ /^(\d+)/;
	return 0 unless $pid && kill(0, $pid);
	run_bounded([ 'pg_ctl', '-D', $pgdata, '-m', 'immediate', '-t', '10', 'stop' ], timeout => 20);
	kill 'KILL', $pid if kill(0, $pid);
	wait_for(sub { !kill(0, $pid) }, 10);
	return 1;
}

for my $file ('key.bin', 'key.check')
{
	for my $type (odd_types())
	{
		my $fault = "$file: $type";
		my $fatal = qr/FATAL:  \Q$what{$file}\E "[^"\n]*pg_encryption\/\Q$file\E" is not a regular file\n.*DETAIL:  \Q${\ odd_detail($type)}\E/;

		# --- pg_ctl start ---
		{
			my $odd = make_odd("$keydir/$file", $type, $dir);
			my $before = dir_state($keydir);
			unlink $marker;
			my $offset = -s $node->logfile;
			my $r = run_bounded([ 'pg_ctl', '-w', '-t', '30', '-D', $pgdata, '-l', $node->logfile, 'start' ],
				timeout => 40);
			my $hung = kill_left_postmaster();
			note sprintf('server, %s: pg_ctl start returned %d after %.2f s', $fault, $r->{rc}, $r->{secs});
			cell_ok('server', $fault, $r->{rc} != 0 && !$hung, 'pg_ctl start fails, no server is left')
			  or diag $r->{out} . $r->{err};
			cell_ok('server', $fault, $r->{secs} < $bound,
				sprintf('at once: %.1f s, the unwrap timeout being 300 s', $r->{secs}));
			cell_like('server', $fault, slurp_file($node->logfile, $offset), $fatal,
				'the FATAL names the file and its type');
			cell_ok('server', $fault, !-e $marker, 'the unwrap command did not run');
			cell_is('server', $fault, dir_state($keydir), $before, 'pg_encryption/ is unchanged');
			put_back($odd);
			cell_ok('server', $fault, $node->start(fail_ok => 1), 'with the file put back the server starts');
			$node->stop('fast', fail_ok => 1);
		}

		# --- postgres --single ---
		{
			my $odd = make_odd("$keydir/$file", $type, $dir);
			my $before = dir_state($keydir);
			unlink $marker;
			my $r = run_bounded([ 'postgres', '--single', '-D', $pgdata, 'postgres' ], timeout => 30);
			note sprintf('server --single, %s: exit %d after %.2f s', $fault, $r->{rc}, $r->{secs});
			cell_ok('server --single', $fault, $r->{rc} != 0 && !$r->{timed_out}, 'postgres --single exits with an error')
			  or diag $r->{err};
			cell_ok('server --single', $fault, $r->{secs} < $bound, sprintf('at once: %.1f s', $r->{secs}));
			cell_like('server --single', $fault, $r->{err}, $fatal, 'the FATAL names the file and its type');
			cell_ok('server --single', $fault, !-e $marker, 'the unwrap command did not run');
			cell_is('server --single', $fault, dir_state($keydir), $before, 'pg_encryption/ is unchanged');
			put_back($odd);
			my $ok = run_bounded([ 'postgres', '--single', '-D', $pgdata, 'postgres' ],
				stdin => "select 1;\n", timeout => 60);
			cell_is('server --single', $fault, $ok->{rc}, 0, 'with the file put back postgres --single runs a query')
			  or diag $ok->{err};
		}
	}
}

ok($node->start(fail_ok => 1), 'at the end the cluster starts');
$node->stop('fast');

done_testing();
