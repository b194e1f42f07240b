# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# status is for monitoring: polled in a tight loop, it never makes a rewrap or
# repair fail. 20 rewraps back and forth while status runs without pause.
use strict;
use warnings;
use IPC::Run qw(start finish);
use FeDatakey::Cluster;
use FeDatakey::Run qw(run_command);
use PostgreSQL::Test::Utils qw(command_ok);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $node = FeDatakey::Cluster->new('main');
$node->init(encrypted => 1, wrap => '-', unwrap => '-');
my $pgdata = $node->data_dir;
local $ENV{PGDATAKEYUNWRAPCMD};
delete $ENV{PGDATAKEYUNWRAPCMD};
my $stop = "$dir/stop";

# At most 3000 status runs or until told to stop.
my $loop = "n=0; while [ ! -e '$stop' ] && [ \$n -lt 3000 ]; do "
  . "pg_datakey status -D '$pgdata' --json > /dev/null 2>&1; n=\$((n+1)); done; echo \$n";
my $polls = '';
my $poller = start [ 'bash', '-c', $loop ], '>', \$polls;

my $ok = 0;
my @cmds = ([ 'cat > "%p"', 'cat "%p"' ], [ '-', '-' ]);
for my $i (1 .. 20)
{
	my ($wrap, $unwrap) = @{ $cmds[ $i % 2 ] };
	my ($rc, undef, $err) = run_command([ 'pg_datakey', 'rewrap', '-D', $pgdata,
		"--new-key-wrap-command=$wrap", "--new-key-unwrap-command=$unwrap" ]);
	$ok++ if $rc == 0;
	diag "rewrap $i: status $rc: $err" if $rc != 0;
	($rc, undef, $err) = run_command([ 'pg_datakey', 'repair', '-D', $pgdata ]);
	$ok++ if $rc == 0;
	diag "repair $i: status $rc: $err" if $rc != 0;
}
open my $fh, '>', $stop or die;
close $fh;
finish $poller;
chomp $polls;
is($ok, 40, 'all 20 rewraps and 20 repairs succeed while status polls');
cmp_ok($polls, '>', 20, "status ran all along ($polls times)");
command_ok([ 'pg_datakey', 'verify', '-D', $pgdata ], 'the key verifies afterwards');

done_testing();
