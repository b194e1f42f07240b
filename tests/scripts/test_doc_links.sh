#!/usr/bin/env bash
# Every relative link of the project's Markdown pages (README.md, docs/*.md,
# bench/README.md and any other *.md outside build/) leads somewhere: the
# file or directory exists, and a #fragment names a heading of the page it
# points to (GitHub's anchors: lower case, punctuation dropped, spaces to
# hyphens, -1, -2 for repeats). Links in code blocks and code spans are not
# links. One test per page, and one that README.md links into docs/. TAP
# output.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)

cd "$repo"
mapfile -t pages < <(find . \( -path ./build -o -path ./.git \) -prune -o -name '*.md' -type f -print |
    sed 's#^\./##' | LC_ALL=C sort)
if ((${#pages[@]} == 0)); then
    echo "Bail out! no Markdown pages found in $repo"
    exit 1
fi

exec perl -CSD -Mstrict -Mwarnings -MFile::Basename=dirname -MFile::Spec - "${pages[@]}" <<'PERL'
my @pages = @ARGV;
my (%text, %anchors);

sub slurp
{
	my ($f) = @_;
	open my $fh, '<:encoding(UTF-8)', $f or return undef;
	local $/;
	return scalar <$fh>;
}

# The page without its fenced code blocks.
sub prose
{
	my ($t) = @_;
	my ($out, $fence) = ('', undef);
	for my $line (split /^/, $t)
	{
		if ($line =~ /^\s*(```+|~~~+)/)
		{
			if (!defined $fence) { $fence = $1; next }
			if (substr($1, 0, 1) eq substr($fence, 0, 1) && length $1 >= length $fence) { undef $fence; next }
		}
		$out .= $line unless defined $fence;
	}
	return $out;
}

sub anchors_of
{
	my ($f) = @_;
	return $anchors{$f} if $anchors{$f};
	my $t = $text{$f} //= slurp($f) // '';
	my (%a, %seen);
	for my $h (prose($t) =~ /^#{1,6}[ \t]+(.*?)[ \t#]*$/mg)
	{
		my $s = lc $h;
		$s =~ s/\[([^\]]*)\]\([^)]*\)/$1/g;    # a link in a heading: its text
		$s =~ s/[^\w\- ]//g;
		$s =~ tr/ /-/;
		my $n = $seen{$s}++;
		$a{ $n ? "$s-$n" : $s } = 1;
	}
	return $anchors{$f} = \%a;
}

my ($n, $failed, $readme_docs) = (0, 0, 0);
for my $page (@pages)
{
	my $t = $text{$page} //= slurp($page) // '';
	my $p = prose($t);
	$p =~ s/(`+).*?\1//gs;    # code spans
	my @bad;
	my $links = 0;
	while ($p =~ /\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)
	{
		my $target = $1;
		next if $target =~ m{^[a-z][a-z0-9+.-]*:}i;    # https:, mailto:
		$links++;
		my ($path, $frag) = $target =~ /^([^#]*)(?:#(.*))?$/;
		$readme_docs++ if $page eq 'README.md' && $path =~ m{^docs/};
		my $file = $path eq '' ? $page : File::Spec->canonpath(dirname($page) . "/$path");
		if ($path ne '' && !-e $file)
		{
			push @bad, "$target: no such file ($file)";
			next;
		}
		next unless defined $frag && $frag ne '';
		if (-d $file || $file !~ /\.md$/)
		{
			push @bad, "$target: a fragment on what is not a Markdown page";
			next;
		}
		push @bad, "$target: $file has no heading with the anchor #$frag" unless anchors_of($file)->{$frag};
	}
	$n++;
	if (@bad)
	{
		$failed++;
		print "not ok $n - $page: every relative link resolves ($links links)\n";
		print "#   $_\n" for @bad;
	}
	else
	{
		print "ok $n - $page: every relative link resolves ($links links)\n";
	}
}
$n++;
if ($readme_docs) { print "ok $n - README.md links into docs/\n" }
else { $failed++; print "not ok $n - README.md links into docs/\n" }
print "1..$n\n";
exit($failed ? 1 : 0);
PERL
