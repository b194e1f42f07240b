# FeDatakey::Datakey - running pg_datakey in the end-to-end tests: its exit
# status or the signal that ended it, and its status as JSON.
#
#   use FeDatakey::Datakey;
#   my ($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
#   my $kcv = datakey_json($pgdata)->{key_check_value};
#   my $sig = datakey_signal([ 'rewrap', ... ], FE_DATAKEY_CRASH_AT => 'renamed');
package FeDatakey::Datakey;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use JSON::PP ();
use FeDatakey::Run qw(run_command);

our @EXPORT = qw(run_datakey datakey_json datakey_signal);

# run_datakey(\@args, %opts) -> (status, stdout, stderr): pg_datakey's exit
# status, or -N when it was killed by signal N; dies when it runs past the
# timeout.  %opts: env => {...}, timeout => seconds (default 60).
sub run_datakey
{
	my ($args, %opts) = @_;
	my ($status, $out, $err, $how) =
	  run_command([ 'pg_datakey', @$args ], env => $opts{env}, timeout => $opts{timeout} // 60);
	croak "pg_datakey @$args: timed out\n$err" if $how->{timed_out};
	return ($how->{signal} ? -$how->{signal} : $status, $out, $err);
}

# pg_datakey status -D $pgdata --json @extra (e.g. --show-commands),
# decoded; dies unless it succeeds.
sub datakey_json
{
	my ($pgdata, @extra) = @_;
	my ($rc, $out, $err) = run_command([ 'pg_datakey', 'status', '-D', $pgdata, '--json', @extra ]);
	croak "status --json failed ($rc): $err" if $rc != 0;
	return JSON::PP::decode_json($out);
}

# The signal that ended pg_datakey @$args run with %env (0 when it exited,
# or ran past 60 seconds).
sub datakey_signal
{
	my ($args, %env) = @_;
	my (undef, undef, undef, $how) = run_command([ 'pg_datakey', @$args ], env => \%env, timeout => 60);
	return $how->{signal};
}

1;
