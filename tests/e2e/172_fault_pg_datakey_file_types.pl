# Versions: newest
# (pg_datakey is the same on every version)
#
# The fault matrix, key files of the wrong type, for pg_datakey status,
# verify, rewrap and repair: pg_encryption/key.bin or key.check replaced by
# a FIFO, a directory, a socket or a symbolic link to a regular copy, and
# each file pg_datakey itself keeps there (the rewrap journal, the new key
# file of an interrupted rewrap, the previous key, the lock) made a FIFO.
# Each verb refuses at once, naming the file and its type, before any
# command runs (the commands would touch a marker), with pg_encryption/
# unchanged; with the file put back (or the stray FIFO removed) the verb
# works.  A FIFO as key.check used to block status for good.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::BoundedRun;
use FeDatakey::Faults;
use FeDatakey::OddFiles;
use Test::More;

# Seconds within which a refusal counts as "at once" (on a busy machine).
my $bound = 10;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'pg_datakey file types');
my $marker = "$dir/command-ran";
my $wrap = "touch $marker && " . openssl_wrap($pass);
my $unwrap = "touch $marker && " . openssl_unwrap($pass);

my $node = FeDatakey::Cluster->new('types');
$node->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
my $pgdata = $node->data_dir;
my $keydir = "$pgdata/pg_encryption";

my %args = (
	status => [],
	verify => [],
	rewrap => [ "--new-key-wrap-command=$wrap", "--new-key-unwrap-command=$unwrap" ],
	repair => []);
my @verbs = qw(status verify rewrap repair);
# The verbs that run a command when they get that far.
my %runs_command = (verify => 1, rewrap => 1);

my %what = ('key.bin' => 'data encryption key file', 'key.check' => 'key check file');

for my $verb (@verbs)
{
	unlink $marker;
	my $r = run_bounded([ 'pg_datakey', $verb, '-D', $pgdata, @{ $args{$verb} } ], timeout => 60);
	is($r->{rc}, 0, "pg_datakey $verb works on the cluster as made") or diag $r->{err};
	is(-e $marker ? 1 : 0, $runs_command{$verb} ? 1 : 0,
		"pg_datakey $verb " . ($runs_command{$verb} ? 'runs a command (the marker is touched)' : 'runs no command'));
}

# refused($verb, $fault, $rel, $type, $what_re): the verb on the cluster
# whose pg_encryption/ file $rel is now a $type.
sub refused
{
	my ($verb, $fault, $rel, $type, $what_re) = @_;
	my $row = "pg_datakey $verb";
	my $before = dir_state($keydir);
	unlink $marker;
	my $r = run_bounded([ 'pg_datakey', $verb, '-D', $pgdata, @{ $args{$verb} } ], timeout => 30);
	note sprintf('%s, %s (%s): exit %d after %.2f s', $row, $fault, $rel, $r->{rc}, $r->{secs});
	cell_ok($row, $fault, $r->{rc} != 0 && !$r->{timed_out}, "$rel: refused") or diag $r->{out} . $r->{err};
	cell_ok($row, $fault, $r->{secs} < $bound, sprintf('%s: at once: %.1f s', $rel, $r->{secs}));
	cell_like($row, $fault, $r->{err},
		qr/pg_datakey: error: $what_re "[^"\n]*pg_encryption\/\Q$rel\E" is not a regular file\n(?:.*\n)*?pg_datakey: detail: \Q${\ odd_detail($type)}\E/,
		"$rel: the error names the file and its type");
	cell_ok($row, $fault, !-e $marker, "$rel: no command ran") if $runs_command{$verb};
	cell_is($row, $fault, dir_state($keydir), $before, "$rel: pg_encryption/ is unchanged");
}

sub works_again
{
	my ($verb, $fault, $rel) = @_;
	my $r = run_bounded([ 'pg_datakey', $verb, '-D', $pgdata, @{ $args{$verb} } ], timeout => 60);
	cell_is("pg_datakey $verb", $fault, $r->{rc}, 0, "$rel put back: pg_datakey $verb works")
	  or diag $r->{out} . $r->{err};
}

for my $verb (@verbs)
{
	for my $file ('key.bin', 'key.check')
	{
		for my $type (odd_types())
		{
			my $fault = "$file: $type";
			my $odd = make_odd("$keydir/$file", $type, $dir);
			refused($verb, $fault, $file, $type, qr/\Q$what{$file}\E/);
			put_back($odd);
			works_again($verb, $fault, $file);
		}
	}
	# The files of pg_datakey's own, normally absent (the lock may stay); each
	# named by what it is ("rewrap journal", "lock file", ...).
	for my $rel ('rewrap.state', 'key.bin.new', 'key.bin.prev', 'rewrap.lock')
	{
		my $fault = 'other file: FIFO';
		my $odd = make_odd("$keydir/$rel", 'FIFO', $dir);
		refused($verb, $fault, $rel, 'FIFO', qr/[a-z][a-z ]*/);
		put_back($odd);
		works_again($verb, $fault, $rel);
	}
}

# After all that, the key still opens with the commands the cluster has.
my $r = run_bounded([ 'pg_datakey', 'verify', '-D', $pgdata ], timeout => 60);
is($r->{rc}, 0, 'at the end pg_datakey verify passes') or diag $r->{err};
ok($node->start(fail_ok => 1), 'and the server starts');
$node->stop('fast');

done_testing();
