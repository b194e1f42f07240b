# FeDatakey::Upstream - PostgreSQL's own test modules, PostgreSQL::Test::Cluster
# and PostgreSQL::Test::Utils, taken from the installation under test (its
# pgxs directory, where --enable-tap-tests / -Dtap_tests installs them), so
# that a test of ours uses the harness of the very version it runs against.
#
#   use FeDatakey::Upstream;      # first: finds the modules, sets their environment
#   use PostgreSQL::Test::Cluster;
#   use PostgreSQL::Test::Utils;
#
# Nodes and logs live in build/e2e/pg-N/TEST/ (log/ keeps the server logs and
# regress_log_TEST; the nodes are removed when every test passed).
package FeDatakey::Upstream;

use strict;
use warnings;

use Carp;
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
# Loaded first: it clears PG* from the environment and puts the programs
# under test first in PATH, which PostgreSQL::Test::Cluster then uses.
use FeDatakey::Run ();

my $bin = FeDatakey::Run::pg_bin_dir();
my $major = FeDatakey::Run::pg_major($bin);
my ($rc, $pgxs, $err) = FeDatakey::Run::run_command([ "$bin/pg_config", '--pgxs' ]);
croak "$bin/pg_config --pgxs failed: $err" if $rc != 0;
chomp $pgxs;
# .../pgxs/src/makefiles/pgxs.mk -> .../pgxs
my $pgxsdir = dirname(dirname(dirname($pgxs)));
croak "PostgreSQL's test modules are not installed in $pgxsdir/src/test/perl "
  . '(build with --enable-tap-tests or -Dtap_tests=enabled)'
  unless -f "$pgxsdir/src/test/perl/PostgreSQL/Test/Cluster.pm";
unshift @INC, "$pgxsdir/src/test/perl";

# What PostgreSQL's Makefiles and meson set for a TAP test: pg_regress (for
# --config-auth) and the output directories (TESTDIR up to 16, TESTDATADIR
# and TESTLOGDIR from 17).
$ENV{PG_REGRESS} = "$pgxsdir/src/test/regress/pg_regress";
my $dir = "$FeDatakey::Run::REPO/build/e2e/pg-$major/" . basename($0, '.pl');
remove_tree($dir);
make_path($dir);
$ENV{TESTDIR} = $dir;
$ENV{TESTDATADIR} = "$dir/tmp_check";
$ENV{TESTLOGDIR} = "$dir/log";
make_path($ENV{TESTDATADIR}, $ENV{TESTLOGDIR});
# One port lock directory for every test (prove -j runs several at once),
# as PostgreSQL's build tree has one for all its suites.
$ENV{PG_TEST_PORT_DIR} = "$FeDatakey::Run::REPO/build/e2e/portlock";
make_path($ENV{PG_TEST_PORT_DIR});

sub major { return $major }

1;
