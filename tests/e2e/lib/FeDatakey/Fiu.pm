# FeDatakey::Fiu - injected I/O faults with libfiu (Debian's fiu-utils): the
# columns of tests/faults/cells/io.tsv as libfiu failure points, and two ways
# to make exactly one call of a frontend fail.
#
#   use FeDatakey::Fiu;
#   # from the start: the first call of the kind fails (repair runs no command)
#   run_command([...], env => fiu_env($dir, 'rename EIO'));
#   # from a key command, once it has done its work: the next call of the
#   # kind in the program that runs the command fails
#   my $wrap = openssl_wrap($pass) . arm_parent($dir, 'fsync EIO');
#   run_command([...], env => fiu_env($dir));
#
# Every rule is "onetime": libfiu disables the point after its first failure,
# so one step fails and the rest of the run sees a healthy system.  failinfo
# is the errno the wrapper sets (libfiu 1.1's posix/io wrappers take it from
# there); the ".../reduce" points shorten the count a read or write asks for.
#
# libfiu 1.1 cannot be loaded into postgres (nor bash): it calls its own
# exported hash_create(), which the executable's hash_create() interposes,
# and the first failure point check crashes.  So the preload never reaches a
# server (shadow_bin gives initdb a postgres without it), and fiu-ctrl runs
# without it.
package FeDatakey::Fiu;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use File::Copy qw(copy);
use FeDatakey::Run ();

our @EXPORT = qw(fiu_available fiu_rule fiu_env arm_parent shadow_bin fault_is_retried);

my $LIB = '/usr/lib/fiu';

# Column => [failure point, errno]; errno 0 for a short count.
my %POINTS = (
	'write EIO' => [ 'posix/io/rw/write', 5 ],
	'write ENOSPC' => [ 'posix/io/rw/write', 28 ],
	'write EINTR' => [ 'posix/io/rw/write', 4 ],
	'write short' => [ 'posix/io/rw/write/reduce', 0 ],
	'fsync EIO' => [ 'posix/io/sync/fsync', 5 ],
	'rename EIO' => [ 'posix/io/dir/rename', 5 ],
	'unlink EIO' => [ 'posix/io/dir/unlink', 5 ],
	'open EIO' => [ 'posix/io/oc/open', 5 ],
	'read EIO' => [ 'posix/io/rw/read', 5 ],
	'read EINTR' => [ 'posix/io/rw/read', 4 ],
	'read short' => [ 'posix/io/rw/read/reduce', 0 ],);

# Whether fiu-utils is installed (scripts/lib/common.sh's DEPS has it).
sub fiu_available
{
	return -r "$LIB/fiu_posix_preload.so" && -r "$LIB/fiu_run_preload.so";
}

# The libfiu control command that makes the next call of $fault's kind fail
# once, or, given a probability, each call with that probability (to reach a
# call that no first call of its kind is: see the caller).
sub fiu_rule
{
	my ($fault, $probability) = @_;
	my $p = $POINTS{$fault} or croak "no failure point for \"$fault\"";
	my ($point, $errno) = @$p;
	my $rule =
	  defined $probability
	  ? "enable_random name=$point,probability=$probability"
	  : "enable name=$point,onetime=1";
	return $rule . ($errno ? ",failinfo=$errno" : '');
}

# EINTR and short counts are no failure: the caller retries and must succeed.
sub fault_is_retried
{
	my ($fault) = @_;
	return $fault =~ /EINTR|short/;
}

# run_command's env for a program under libfiu's POSIX preload, with the
# rules of @faults (column names, or fiu_rule's rules) active from its start.
# $dir holds the control FIFOs.
sub fiu_env
{
	my ($dir, @faults) = @_;
	return {
		LD_PRELOAD => "$LIB/fiu_run_preload.so $LIB/fiu_posix_preload.so",
		FIU_CTRL_FIFO => "$dir/fiu",
		FIU_ENABLE => join("\n", map { /name=/ ? $_ : fiu_rule($_) } @faults),
	};
}

# Shell text to append to a key command: once the command has done its
# work, it arms $fault in its parent (the program running the command, under
# fiu_env), which fiu-ctrl does before it returns.  fiu-ctrl exits 0 even
# when the rule is refused, and says so: the command fails if it says
# anything.
sub arm_parent
{
	my ($dir, $fault) = @_;
	return " && ! env -u LD_PRELOAD fiu-ctrl -f $dir/fiu -c '" . fiu_rule($fault) . q(' "$PPID" 2>&1 | grep . >&2);
}

# A directory with bin/initdb (a copy of the real one), bin/postgres (the real
# postgres, started without the preload: initdb runs it for the bootstrap,
# which is PostgreSQL's and not under test) and share (the real one), for
# initdb under fiu_env.
sub shadow_bin
{
	my ($dir) = @_;
	my $real = FeDatakey::Run::pg_bin_dir();
	my $root = "$dir/shadow";
	return "$root/bin/initdb" if -x "$root/bin/initdb";
	mkdir $root;
	mkdir "$root/bin" or croak "mkdir $root/bin: $!";
	copy("$real/initdb", "$root/bin/initdb") or croak "copy initdb: $!";
	chmod 0755, "$root/bin/initdb";
	symlink("$real/../share", "$root/share") or croak "symlink share: $!";
	symlink("$real/../lib", "$root/lib") or croak "symlink lib: $!";
	open(my $fh, '>', "$root/bin/postgres") or croak "postgres wrapper: $!";
	print $fh "#!/bin/sh\nunset LD_PRELOAD FIU_ENABLE FIU_CTRL_FIFO\nexec '$real/postgres' \"\$@\"\n";
	close($fh);
	chmod 0755, "$root/bin/postgres";
	return "$root/bin/initdb";
}

1;
