# FeDatakey::Gdb - a short read where neither libfiu nor strace gives one:
# gdb runs the program and, at the entry of its first read() of one file,
# lowers the count it asks for (gdb/short_read.py); the kernel then returns
# fewer bytes than asked, as a short read does.  libfiu's read/reduce
# cannot be loaded into postgres and would reach the shells a program
# starts (FeDatakey::Fiu); strace injects no counts.
#
#   my ($prefix, $env, $done) = short_read($dir, "$pgdata/pg_encryption/key.check");
#   run_command([ @$prefix, 'pg_datakey', 'verify', ... ], env => $env);
#   ok(-s $done, 'the read was shortened');
#   is(strip_gdb($out), $expected);
package FeDatakey::Gdb;

use strict;
use warnings;

use Cwd ();
use Exporter 'import';
use File::Basename qw(dirname);
use FeDatakey::Run ();

our @EXPORT = qw(short_read short_read_postgres strip_gdb);

my $SCRIPT = Cwd::abs_path(dirname(__FILE__) . '/gdb/short_read.py');
my $n = 0;

# (argv prefix, run_command env, the file that says the read was shortened).
sub short_read
{
	my ($dir, $path) = @_;
	my $done = "$dir/short-read-" . ++$n;
	unlink $done;
	return (
		[ 'gdb', '-q', '-batch', '-nx', '-x', $SCRIPT, '--args' ],
		{ FE_DATAKEY_SHORT_READ => Cwd::abs_path($path), FE_DATAKEY_SHORT_READ_DONE => $done },
		$done);
}

# A script that runs the real postgres so, for a start in the background:
# (the script, the file that says the read was shortened).
sub short_read_postgres
{
	my ($dir, $path) = @_;
	my ($prefix, $env, $done) = short_read($dir, $path);
	my $real = FeDatakey::Run::pg_bin_dir() . '/postgres';
	my $script = "$dir/postgres-short-read-$n";
	open(my $fh, '>', $script) or die "$script: $!";
	print $fh "#!/bin/sh\n", (map { "$_='$env->{$_}'; export $_\n" } sort keys %$env),
	  'exec ', join(' ', map { "'$_'" } @$prefix, $real), " \"\$@\"\n";
	close($fh);
	chmod 0755, $script;
	return ($script, $done);
}

# The program's output without the lines gdb adds to it.
sub strip_gdb
{
	my ($out) = @_;
	$out =~ s/^(\[(Thread debugging|Inferior \d|Detaching|New Thread)[^\n]*|Using host libthread_db[^\n]*)\n//mg;
	return $out;
}

1;
