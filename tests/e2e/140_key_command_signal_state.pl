# A key command run by the real postmaster starts with every signal at its
# default disposition and an empty signal mask, although the postmaster
# ignores some signals and blocks others while it loads the key: the
# command records the SigIgn and SigBlk lines of its own /proc/self/status,
# and both are zero.  Also for a single-user backend.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::KeyCommands;
use FeDatakey::Run;
use PostgreSQL::Test::Utils qw(slurp_file);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'signal passphrase');
my $wrap = openssl_wrap($pass);
my $record = "$dir/status";
# grep, a program of the command, reads its own /proc/self/status.  (Not
# the shell's: bash ignores SIGQUIT for itself, whatever it inherited.)
my $unwrap = "grep -E '^Sig(Ign|Blk):' /proc/self/status > $record; " . openssl_unwrap($pass);

my $node = FeDatakey::Cluster->new('data');
my $pgdata = $node->data_dir;
ok($node->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap"), 'initdb -y');

sub clean_state
{
	my ($name) = @_;
	my $text = -e $record ? slurp_file($record) : '';
	like($text, qr/^SigIgn:\s+0{16}$/m, "$name: the command ignores no signal");
	like($text, qr/^SigBlk:\s+0{16}$/m, "$name: the command blocks no signal");
	unlink $record;
}

ok($node->start(fail_ok => 1), 'the postmaster starts');
clean_state('postmaster');
ok($node->stop('fast', fail_ok => 1), 'stop');

my ($rc, $out, $err) = run_command([ 'postgres', '--single', '-D', $pgdata, 'postgres' ], stdin => "select 1;\n");
is($rc, 0, 'a single-user backend runs') or diag $err;
clean_state('single-user backend');

done_testing();
