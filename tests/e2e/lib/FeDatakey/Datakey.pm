# Helpers for pg_datakey's end-to-end tests, on top of FeDatakey::TestLib:
# an encrypted cluster, running pg_datakey and reading its status as JSON.
#
#   use FeDatakey::TestLib;
#   use FeDatakey::Datakey;
#   my ($node, $pgdata) = new_cluster(temp_dir(), openssl_wrap($pass), openssl_unwrap($pass));
#   my ($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
package FeDatakey::Datakey;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use FeDatakey::TestLib;

our @EXPORT = qw(new_cluster run_datakey datakey_json);

# A new encrypted cluster in $dir/data, made by the patched initdb -y: a
# FeDatakey::TestLib::Cluster (in list context: it and its data directory).
sub new_cluster
{
	my ($dir, $wrap, $unwrap) = @_;
	my $node = FeDatakey::TestLib::Cluster->new("$dir/data");
	my ($rc, undef, $err) = $node->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap");
	croak "initdb -y failed: $err" if $rc != 0;
	return wantarray ? ($node, $node->data_dir) : $node;
}

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

sub datakey_json
{
	my ($pgdata) = @_;
	require JSON::PP;
	my ($rc, $out, $err) = run_datakey([ 'status', '-D', $pgdata, '--json' ]);
	croak "status --json failed ($rc): $err" if $rc != 0;
	return JSON::PP::decode_json($out);
}

1;
