# FeDatakey::Faults - a test of the fault matrix (docs/design.md, "The fault
# matrix") names the cell it asserts: an entry point (a row) and a fault (a
# column), declared in tests/faults/cells/*.tsv. Each assertion is an
# ordinary Test::More one; when FE_DATAKEY_FAULT_CELLS names a file (the
# faults stage sets it), its outcome is also appended there, so that
# tests/faults/report can print the matrix.
#
#   use FeDatakey::Faults;
#   cell_ok('server', 'key.check: FIFO', $ok, 'refused, naming the file');
#   cell_like('pg_datakey status', 'key.check: FIFO', $err, qr/.../, 'the error says so');
#
# A line of that file: VERSION TAB ENTRY TAB FAULT TAB ok|not ok TAB NAME.
package FeDatakey::Faults;

use strict;
use warnings;

use Exporter 'import';
use Fcntl qw(:flock O_APPEND O_CREAT O_WRONLY);
use Test::More;
use FeDatakey::Run ();

our @EXPORT = qw(cell_ok cell_is cell_like cell_unlike);

# Writes one outcome to the cell log, if there is one.
sub record
{
	my ($entry, $fault, $ok, $name) = @_;
	my $file = $ENV{FE_DATAKEY_FAULT_CELLS} or return;
	my $major = FeDatakey::Run::pg_major();
	s/[\t\n]/ /g for ($entry, $fault, $name);
	sysopen(my $fh, $file, O_WRONLY | O_APPEND | O_CREAT, 0644)
	  or die "could not open $file: $!\n";
	flock($fh, LOCK_EX) or die "could not lock $file: $!\n";
	syswrite($fh, join("\t", $major, $entry, $fault, $ok ? 'ok' : 'not ok', $name) . "\n");
	close($fh);
	return;
}

# Each asserts like its Test::More namesake, under the name "[ENTRY | FAULT] NAME".
sub cell_ok
{
	my ($entry, $fault, $test, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = ok($test, "[$entry | $fault] $name");
	record($entry, $fault, $ok, $name);
	return $ok;
}

sub cell_is
{
	my ($entry, $fault, $got, $want, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = is($got, $want, "[$entry | $fault] $name");
	record($entry, $fault, $ok, $name);
	return $ok;
}

sub cell_like
{
	my ($entry, $fault, $got, $re, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = like($got, $re, "[$entry | $fault] $name");
	record($entry, $fault, $ok, $name);
	return $ok;
}

sub cell_unlike
{
	my ($entry, $fault, $got, $re, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = unlike($got, $re, "[$entry | $fault] $name");
	record($entry, $fault, $ok, $name);
	return $ok;
}

1;
