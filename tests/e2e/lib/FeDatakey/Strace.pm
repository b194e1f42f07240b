# FeDatakey::Strace - an I/O fault on the calls that name one file: strace's
# syscall tampering (-e inject), restricted by -P to the calls on the given
# paths.  For what libfiu cannot reach: postgres, into which libfiu 1.1
# cannot be loaded (FeDatakey::Fiu), and a call that is not the first of its
# kind in a run.
#
#   my @argv = (strace_prefix(['/abs/pgdata/postgresql.conf'], 'read', 'EIO'), 'pg_datakey', ...);
#   my $postgres = strace_postgres($dir, [$keycheck], 'openat', 'EIO');   # for pg_ctl -p
#
# when=1: only the first matching call fails; every later one is real.
# strace cannot shorten a count (its retval= skips the call): short counts
# come from libfiu, or gdb (FeDatakey::Gdb).
package FeDatakey::Strace;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use FeDatakey::Run ();

our @EXPORT = qw(strace_prefix strace_postgres);

# The argv prefix that runs a program under strace with the first $call
# ("read", "openat", ...) on one of @$paths (absolute) failing with $errno;
# in the program's children too unless $own_only (a program that starts a
# server which reads the same file).
sub strace_prefix
{
	my ($paths, $call, $errno, $own_only) = @_;
	croak 'strace_prefix: paths must be absolute' if grep { !m{^/} } @$paths;
	return ('strace', ($own_only ? () : '-f'), '-qq', '-o', '/dev/null', (map { ('-P', $_) } @$paths),
		'-e', "trace=$call", '-e', "inject=$call:error=$errno:when=1");
}

# A script that runs the real postgres so, for pg_ctl -p.
sub strace_postgres
{
	my ($dir, $paths, $call, $errno) = @_;
	my $real = FeDatakey::Run::pg_bin_dir() . '/postgres';
	my $script = "$dir/postgres-$call-$errno";
	open(my $fh, '>', $script) or croak "$script: $!";
	print $fh "#!/bin/sh\nexec " . join(' ', map { "'$_'" } strace_prefix($paths, $call, $errno), $real) . " \"\$@\"\n";
	close($fh);
	chmod 0755, $script;
	return $script;
}

1;
