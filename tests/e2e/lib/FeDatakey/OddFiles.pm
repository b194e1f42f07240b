# FeDatakey::OddFiles - a file of a data directory replaced by something
# that is not a regular file (a FIFO, a directory, a socket, a symbolic link
# to a regular copy of it), and put back; and the state of a directory as
# lstat sees it, to prove that a refused run changed nothing.
#
#   use FeDatakey::OddFiles;
#   my $odd = make_odd("$pgdata/pg_encryption/key.check", 'FIFO', $dir);
#   my $before = dir_state("$pgdata/pg_encryption");
#   ... run something, expect odd_detail('FIFO') ("It is a FIFO.") ...
#   put_back($odd);
package FeDatakey::OddFiles;

use strict;
use warnings;

use Carp;
use Cwd qw(getcwd);
use Digest::SHA;
use Exporter 'import';
use File::Basename qw(basename dirname);
use IO::Socket::UNIX;
use POSIX qw(mkfifo);
use FeDatakey::Files qw(write_file);

our @EXPORT = qw(odd_types odd_detail make_odd put_back dir_state);

my %detail = (
	FIFO => 'It is a FIFO.',
	directory => 'It is a directory.',
	socket => 'It is a socket.',
	symlink => 'It is a symbolic link.');

# The kinds of file make_odd makes, in the order of the matrix's columns.
sub odd_types { return qw(FIFO directory socket symlink) }

# The detail the library gives for a file of that kind.
sub odd_detail { return $detail{ $_[0] } // croak "unknown file type $_[0]" }

# make_odd($path, $type, $aside) -> what put_back needs: $path (its bytes
# and mode kept, when it exists) is replaced by a $type.  A symlink points
# to a regular copy of the file in the directory $aside, so that only the
# rule, not the bytes, can refuse it.  A socket is bound by its name in its
# own directory: a data directory's path may be longer than a socket
# address allows.
sub make_odd
{
	my ($path, $type, $aside) = @_;
	my %saved = (path => $path);
	if (-e $path || -l $path)
	{
		open my $fh, '<:raw', $path or croak "could not read $path: $!";
		local $/;
		$saved{bytes} = <$fh> // '';
		close $fh;
		$saved{mode} = (lstat $path)[2] & 07777;
		unlink $path or croak "could not remove $path: $!";
	}
	if ($type eq 'FIFO') { mkfifo($path, 0600) or croak "mkfifo $path: $!" }
	elsif ($type eq 'directory') { mkdir $path, 0700 or croak "mkdir $path: $!" }
	elsif ($type eq 'socket')
	{
		my $cwd = getcwd();
		chdir dirname($path) or croak "chdir: $!";
		my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => basename($path), Listen => 1);
		my $e = $!;
		chdir $cwd or croak "chdir back: $!";
		croak "could not bind a socket at $path: $e" unless $sock;
		close $sock;
	}
	elsif ($type eq 'symlink')
	{
		croak "make_odd: no file at $path to link to" unless defined $saved{bytes};
		my $target = "$aside/" . basename($path) . '.link-target';
		write_file($target, $saved{bytes}, $saved{mode});
		symlink($target, $path) or croak "symlink $path: $!";
	}
	else { croak "make_odd: unknown type $type" }
	return \%saved;
}

# Removes what make_odd made and writes the file back as it was (or leaves
# nothing, when there was no file).
sub put_back
{
	my ($saved) = @_;
	my $path = $saved->{path};
	if (-d $path && !-l $path) { rmdir $path or croak "rmdir $path: $!" }
	elsif (-e $path || -l $path) { unlink $path or croak "unlink $path: $!" }
	write_file($path, $saved->{bytes}, $saved->{mode}) if defined $saved->{bytes};
	return;
}

# One line per entry of $dir (not followed into): its name, its type, and
# the SHA-256 of a regular file or the target of a link.
sub dir_state
{
	my ($dir) = @_;
	opendir(my $dh, $dir) or return "no directory $dir\n";
	my @lines;
	for my $name (sort grep { $_ ne '.' && $_ ne '..' } readdir $dh)
	{
		my $path = "$dir/$name";
		my @st = lstat $path or next;
		my $what =
		    -l _ ? 'symlink ' . readlink($path)
		  : -f _ ? 'file ' . Digest::SHA->new(256)->addfile($path)->hexdigest
		  : -d _ ? 'directory'
		  : -p _ ? 'FIFO'
		  : -S _ ? 'socket'
		  : 'other';
		push @lines, sprintf("%s %04o %s\n", $name, $st[2] & 07777, $what);
	}
	closedir $dh;
	return join('', @lines);
}

1;
