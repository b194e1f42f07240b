# Each derived patch series is the source series back-patched: the same
# patches, with the same commit messages, adding and removing the same
# lines, but for the differences that patches/derived-differences lists for
# its version (a version's own file names, build files it lacks, and the
# hunks that its PostgreSQL forces).  Any other difference fails, as does a
# listed difference that is no longer there.
#
# The series are compared as text, patch by patch and file by file: the
# commit message, then the lines the patch adds or removes in each file
# (context lines, hunk positions and blob ids are left out, since those
# follow from the version's own source).
#
#   FE_DATAKEY_PG_MAJOR=17 prove tests/series/against_source.pl
#   perl tests/series/against_source.pl --print 17   # the differences now,
#                                                    # in the file's format
use strict;
use warnings;

use File::Basename qw(dirname);
use Test::More;

my $root = dirname(dirname(dirname(__FILE__)));
$root = '.' if $root eq '';
my $list = "$root/patches/derived-differences";

my $print = @ARGV && $ARGV[0] eq '--print';
my $version = $print ? $ARGV[1] : $ENV{FE_DATAKEY_PG_MAJOR};
defined $version && $version =~ /^\d+$/
  or BAIL_OUT('give the version in FE_DATAKEY_PG_MAJOR (or --print N)');

# --- patches/derived-differences ----------------------------------------------------

# source N                      the series the others derive from
# [N]                           what follows is about version N
# rename SOURCE-PATH PATH       the file SOURCE-PATH of the source is PATH here
# absent GLOB                   the version has no such file: the source's
#                               changes to it are not carried over
# @@ PATCH PATH                 a difference in file PATH ("message": the
#                               commit message) of patch PATCH (0004), then
# < LINE                        a line of the source (with its +/-)
# > LINE                        the line the version has instead
# # ...                         a comment: why the version needs it
sub read_list
{
	my ($want) = @_;
	open my $fh, '<', $list or BAIL_OUT("could not open $list: $!");
	my ($source, $section, %rename, @absent, @hunks);
	while (my $line = <$fh>)
	{
		chomp $line;
		next if $line =~ /^\s*(#|$)/;
		if ($line =~ /^source\s+(\d+)$/) { $source = $1; next }
		if ($line =~ /^\[(\d+)\]$/) { $section = $1; next }
		BAIL_OUT("$list:$.: outside a [N] section: $line")
		  unless defined $section;
		next unless $section eq $want;
		if ($line =~ /^rename\s+(\S+)\s+(\S+)$/) { $rename{$1} = $2; next }
		if ($line =~ /^absent\s+(\S+)$/) { push @absent, $1; next }
		if ($line =~ /^@@ (\d{4}) (\S+)$/)
		{
			push @hunks, { key => "$1 $2", old => [], new => [] };
			next;
		}
		if ($line =~ /^([<>]) ?(.*)$/ && @hunks)
		{
			push @{ $hunks[-1]{ $1 eq '<' ? 'old' : 'new' } }, $2;
			next;
		}
		BAIL_OUT("$list:$.: cannot read: $line");
	}
	BAIL_OUT("$list names no source series") unless defined $source;
	return ($source, \%rename, \@absent, \@hunks);
}

# --- a series as text ---------------------------------------------------------------

# "PATCH PATH" => [ lines ]: the commit message (PATH "message") and, for
# each file, the lines the patch adds or removes and how it creates or
# deletes the file.
sub read_series
{
	my ($dir) = @_;
	my (%files, @order);
	my @patches = sort glob("$dir/*.patch");
	BAIL_OUT("no patches in $dir") unless @patches;
	for my $patch (@patches)
	{
		my ($n) = $patch =~ m{/(\d{4})-[^/]*$}
		  or BAIL_OUT("$patch: not a numbered patch");
		open my $fh, '<', $patch or BAIL_OUT("could not open $patch: $!");
		my @lines = map { s/\r?\n$//r } <$fh>;
		my $i = 0;
		my @message;
		# The mail header: the subject, folded over several lines maybe
		for (; $i < @lines && $lines[$i] ne ''; $i++)
		{
			next unless $lines[$i] =~ /^Subject: (?:\[PATCH[^\]]*\] )?(.*)/;
			my $subject = $1;
			$subject .= ' ' . ($lines[ ++$i ] =~ s/^\s+//r)
			  while $i + 1 < @lines && $lines[ $i + 1 ] =~ /^\s/;
			push @message, $subject;
		}
		for ($i++; $i < @lines && $lines[$i] ne '---'; $i++)
		{
			push @message, $lines[$i];
		}
		my $key = "$n message";
		push @order, $key;
		$files{$key} = \@message;
		my $path;
		for (; $i < @lines; $i++)
		{
			my $l = $lines[$i];
			if ($l =~ m{^diff --git a/\S+ b/(\S+)$})
			{
				$key = "$n $1";
				push @order, $key unless $files{$key};
				$files{$key} ||= [];
				$path = $1;
				next;
			}
			next unless defined $path;
			next if $l =~ /^(index |--- |\+\+\+ |@@ |\\ No newline)/;
			if ($l =~ /^(new file mode|deleted file mode|similarity|rename)/)
			{
				push @{ $files{$key} }, $l;
				next;
			}
			push @{ $files{$key} }, $l if $l =~ /^[-+]/;
		}
	}
	return (\%files, \@order);
}

# The changed blocks between two lists of lines (a longest common
# subsequence): [ [ old lines ], [ new lines ] ], in order.
sub blocks
{
	my ($a, $b) = @_;
	my ($n, $m) = (scalar @$a, scalar @$b);
	my @len = map { [ (0) x ($m + 1) ] } 0 .. $n;
	for (my $i = $n - 1; $i >= 0; $i--)
	{
		for (my $j = $m - 1; $j >= 0; $j--)
		{
			$len[$i][$j] =
			  $a->[$i] eq $b->[$j]
			  ? $len[ $i + 1 ][ $j + 1 ] + 1
			  : ($len[ $i + 1 ][$j] >= $len[$i][ $j + 1 ]
				? $len[ $i + 1 ][$j]
				: $len[$i][ $j + 1 ]);
		}
	}
	my (@out, @old, @new);
	my ($i, $j) = (0, 0);
	my $flush = sub {
		push @out, [ [@old], [@new] ] if @old || @new;
		@old = @new = ();
	};
	while ($i < $n || $j < $m)
	{
		if ($i < $n && $j < $m && $a->[$i] eq $b->[$j])
		{
			$flush->();
			$i++;
			$j++;
		}
		elsif ($j < $m && ($i == $n || $len[$i][ $j + 1 ] >= $len[ $i + 1 ][$j]))
		{
			push @new, $b->[ $j++ ];
		}
		else
		{
			push @old, $a->[ $i++ ];
		}
	}
	$flush->();
	return @out;
}

sub glob_re
{
	my ($glob) = @_;
	my $re = quotemeta $glob;
	$re =~ s/\\\*\\\*/.*/g;
	$re =~ s/\\\*/[^\/]*/g;
	return qr/^$re$/;
}

my ($source, $rename, $absent, $listed) = read_list($version);

if ($version eq $source)
{
	pass("PostgreSQL $version is the source series: nothing to compare");
	done_testing();
	exit 0;
}
-d "$root/patches/pg$version"
  or BAIL_OUT("no series patches/pg$version");

my ($src, $src_order) = read_series("$root/patches/pg$source");
my ($der, $der_order) = read_series("$root/patches/pg$version");
my @absent_re = map { glob_re($_) } @$absent;

# The source's files under this version's names, without those it lacks
my (%expected, @keys);
for my $key (@$src_order)
{
	my ($n, $path) = split / /, $key, 2;
	next if grep { $path =~ $_ } @absent_re;
	my $mine = "$n " . ($rename->{$path} // $path);
	$expected{$mine} = $src->{$key};
	push @keys, $mine;
}
for my $key (@$der_order)
{
	push @keys, $key unless exists $expected{$key};
}

# Every difference, in order
my @found;
for my $key (@keys)
{
	my $old = $expected{$key} // [];
	my $new = $der->{$key} // [];
	for my $b (blocks($old, $new))
	{
		push @found, { key => $key, old => $b->[0], new => $b->[1] };
	}
}

sub hunk_text
{
	my ($h) = @_;
	return join "\n", "@@ $h->{key}", (map { "< $_" } @{ $h->{old} }),
	  (map { "> $_" } @{ $h->{new} });
}

if ($print)
{
	print "[$version]\n";
	print "rename $_ $rename->{$_}\n" for sort keys %$rename;
	print "absent $_\n" for @$absent;
	print "\n", hunk_text($_), "\n" for @found;
	exit 0;
}

my %is_listed;
$is_listed{ hunk_text($_) }++ for @$listed;
my %is_found;
$is_found{ hunk_text($_) }++ for @found;

my @unlisted = grep { !$is_listed{ hunk_text($_) } } @found;
my @stale = grep { !$is_found{ hunk_text($_) } } @$listed;

is(scalar(@unlisted), 0,
	"patches/pg$version differs from patches/pg$source only where patches/derived-differences says"
) or diag(
	"differences not listed in patches/derived-differences [$version] (carry the change over to every series, or list it with the reason):\n\n"
	  . join("\n\n", map { hunk_text($_) } @unlisted));
is(scalar(@stale), 0,
	"every difference patches/derived-differences lists for $version is there"
) or diag("listed for [$version] but no longer a difference (remove it):\n\n"
	  . join("\n\n", map { hunk_text($_) } @stale));
for my $from (sort keys %$rename)
{
	ok((grep { /^\d{4} \Q$from\E$/ } @$src_order),
		"the renamed file $from is in the source series");
}
for my $glob (@$absent)
{
	my $re = glob_re($glob);
	ok( !(grep { (split / /, $_, 2)[1] =~ $re } @$der_order),
		"patches/pg$version changes no file $glob");
}

done_testing();
