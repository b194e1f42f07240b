# FeDatakey::Files - file helpers that PostgreSQL::Test::Utils lacks: write
# a file with a mode, read a file's mode, list a directory tree, and find
# the files that hold some bytes (where a plaintext key must not be).
package FeDatakey::Files;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use Fcntl qw(:mode);
use File::Find;

our @EXPORT = qw(write_file file_mode list_tree files_containing);

# Writes $data to $path (replacing it), then sets $mode if given.
sub write_file
{
	my ($path, $data, $mode) = @_;
	open my $fh, '>:raw', $path or croak "could not write $path: $!";
	print $fh $data;
	close $fh or croak "could not write $path: $!";
	chmod $mode, $path if defined $mode;
	return $path;
}

# The permission bits of a file as an octal string, e.g. "0600".
sub file_mode
{
	my ($path) = @_;
	my @st = lstat $path or return undef;
	return sprintf('%04o', S_IMODE($st[2]));
}

# Every path below $dir (relative, sorted), directories with a trailing /.
sub list_tree
{
	my ($dir) = @_;
	return () unless -e $dir;
	my @paths;
	find(
		{
			no_chdir => 1,
			wanted => sub {
				return if $_ eq $dir;
				my $rel = substr($_, length($dir) + 1);
				push @paths, -d $_ && !-l $_ ? "$rel/" : $rel;
			}
		},
		$dir);
	return sort @paths;
}

# The files below $dir whose contents hold $bytes (relative paths).
sub files_containing
{
	my ($dir, $bytes) = @_;
	croak "files_containing: empty pattern" unless length $bytes;
	my @hits;
	for my $rel (list_tree($dir))
	{
		my $path = "$dir/$rel";
		next if -d $path || -l $path || !-f $path;
		open my $fh, '<:raw', $path or next;
		my $data = do { local $/; <$fh> } // '';
		close $fh;
		push @hits, $rel if index($data, $bytes) >= 0;
	}
	return @hits;
}

1;
