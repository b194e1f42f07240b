# Versions: newest
# Every benchmark of bench/ runs as bench/README.md says, with the fewest
# runs, and prints its ratios: a benchmark that can no longer run (a program
# looked for where it is not, a recipe it cannot read) fails here, not when
# someone next wants a figure. The figures themselves are not checked: they
# depend on the machine.
#   - bench/run-runner-bench: the runner against a bare posix_spawn (it
#     builds the default preset first; Google Benchmark's shortest time);
#   - bench/initdb-timing --runs 1 --no-sync, the patched initdb in PATH;
#   - bench/rewrap-overhead 2, pg_datakey from build/fe_datakey/bin, where
#     scripts/build installs it (INITDB: the version under test);
#   - bench/preflight-cost 1, PostgreSQL and pg_datakey in PATH;
#   - bench/keystore-cost --runs 1, the five key stores of the recipes.
use strict;
use warnings;
use FindBin;
use IPC::Run ();
use FeDatakey::Upstream;    # the programs under test first in PATH
use PostgreSQL::Test::Utils;
use Test::More;

my $repo = "$FindBin::Bin/../..";
my $bin = $ENV{FE_DATAKEY_PG_BIN} // "$repo/build/pg/bin";

# bench_ok([argv], qr/stdout/, name): the benchmark exits 0 and prints its
# figures; its standard error is shown when it does not.
sub bench_ok
{
	my ($cmd, $re, $name) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run($cmd, '<', \undef, '>', \$out, '2>', \$err);
	ok($ok, "$name: exit status 0") or diag "exit status $?; standard error:\n$err";
	like($out, $re, "$name: prints its figures") or diag "standard error:\n$err";
	return;
}

# The benchmarks are the executables of bench/; each one is run below, so
# one added without a run here fails this test.
my @found = sort map { s{.*/}{}r } grep { -f $_ && -x $_ } glob("$repo/bench/*");
my @run = qw(initdb-timing keystore-cost preflight-cost rewrap-overhead run-runner-bench);
is_deeply(\@found, \@run, 'the executables of bench/ are the five benchmarks run here');
my $readme = slurp_file("$repo/bench/README.md");
like($readme, qr/`bench\/\Q$_\E\b/, "bench/README.md says how to run bench/$_") for @run;

# A number with two decimals, as the scripts print their ratios.
my $ratio = qr/\d+\.\d\d/;

bench_ok(
	[ "$repo/bench/run-runner-bench", '--benchmark_min_time=0.01', '--benchmark_repetitions=2' ],
	qr/^ratio runner \/ bare posix_spawn:\n(?:\s+[\w ,]+:\s+$ratio\n){4}/m,
	'bench/run-runner-bench builds and prints the four ratios');

bench_ok(
	[ "$repo/bench/initdb-timing", '--runs', '1', '--no-sync' ],
	qr/^plain\s.*\n^dash\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\n^openssl\s.*\n^wrap\s/m,
	'bench/initdb-timing runs each variant of the patched initdb');

{
	local $ENV{INITDB} = "$bin/initdb";
	delete local $ENV{PG_DATAKEY};
	ok(-x "$repo/build/fe_datakey/bin/pg_datakey", 'pg_datakey is where bench/rewrap-overhead looks by default');
	bench_ok([ "$repo/bench/rewrap-overhead", '2' ],
		qr/^iterations:\s+2\n.*^ratio:\s+$ratio$/ms,
		'bench/rewrap-overhead rewraps with pg_datakey and prints the ratio');
}

bench_ok(
	[ "$repo/bench/preflight-cost", '1' ],
	qr/^1\s+pg_rewind\s.*%\n^1\s+pg_upgrade\s.*%\n^1\s+size\s/m,
	'bench/preflight-cost times a whole pg_rewind and pg_upgrade and their pre-flight');

bench_ok(
	[ "$repo/bench/keystore-cost", '--runs', '1' ],
	qr/^unencrypted\s.*\n(?:^(?:pkcs11|kmip|tang|tpm2|aws|passphrase)\s+[\d.]+\s+$ratio\s+[\d.]+\s+$ratio\s+[\d.]+\s+$ratio\n){6}/m,
	'bench/keystore-cost sets up the five stores from the recipes and prints their ratios');

done_testing();
