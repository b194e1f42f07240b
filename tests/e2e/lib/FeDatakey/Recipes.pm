# The recipes of the documentation, read where users read them, so that the
# commands users copy are the commands the tests and benchmarks run: every
# recipe is a "### Title" section of docs/key-stores.md, except the one the
# README keeps (a passphrase from a file). One reader for 090, the key-store
# tests (through FeDatakey::KeyStores) and bench/keystore-cost.
#
#   use FeDatakey::Recipes;
#   my $text  = recipe_section('Tang: network-bound unwrap (Clevis)');
#   my $block = recipe_block($text, 0);            # its first code block
#   my $cmd   = quoted_after($block, 'export PGDATAKEYUNWRAPCMD');
#   $cmd = fill_placeholders($cmd, { THUMBPRINT => $thp });
package FeDatakey::Recipes;

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter 'import';
use File::Basename qw(dirname);
use Test::More;

our @EXPORT = qw(recipe_section recipe_block quoted_after fill_placeholders);

# The pages that hold recipes, relative to the top of the tree.
our @PAGES = ('docs/key-stores.md', 'README.md');
our $ROOT = abs_path(dirname(__FILE__) . '/../../../..');

my %sections;    # page => { title => text }

# The "### " sections of a page: each one's text, up to the next heading of
# any level outside a code block (a "#" line inside a block, such as a
# script's "#!/bin/bash", is text).
sub sections_of
{
	my ($page) = @_;
	return $sections{$page} if $sections{$page};
	my $file = "$ROOT/$page";
	open my $fh, '<', $file or BAIL_OUT("cannot read $file: $!");
	my (%s, $title, $fence);
	while (my $line = <$fh>)
	{
		if ($line =~ /^```/)
		{
			$fence = !$fence;
		}
		elsif (!$fence && $line =~ /^#{1,6} /)
		{
			($title) = $line =~ /^### (.*?)\s*$/;
			BAIL_OUT("$page: two sections \"$title\"") if defined $title && exists $s{$title};
			$s{$title} = '' if defined $title;
			next;
		}
		$s{$title} .= $line if defined $title;
	}
	close $fh;
	return $sections{$page} = \%s;
}

# The text of the recipe "### $title", from the one page that has it.
sub recipe_section
{
	my ($title) = @_;
	my @found = grep { exists sections_of($_)->{$title} } @PAGES;
	BAIL_OUT("no recipe \"$title\" in @PAGES") unless @found;
	BAIL_OUT("the recipe \"$title\" is in both @found: keep it in one") if @found > 1;
	return sections_of($found[0])->{$title};
}

# The $n-th (from 0) fenced block of a section's text.
sub recipe_block
{
	my ($text, $n) = @_;
	my @blocks = $text =~ /^```\n(.*?)^```\n/msg;
	defined $blocks[$n] or BAIL_OUT("the recipe has no code block $n");
	return $blocks[$n];
}

# The single-quoted value after NAME= in a text.
sub quoted_after
{
	my ($text, $name) = @_;
	$text =~ /\Q$name\E='([^']*)'/ or BAIL_OUT("the recipe has no $name='...' where expected");
	return $1;
}

# $text with every key of %$map replaced by its value (longest first, so
# that a placeholder that is a prefix of another does not break it).
sub fill_placeholders
{
	my ($text, $map) = @_;
	for my $k (sort { length $b <=> length $a } keys %$map)
	{
		$text =~ s/\Q$k\E/$map->{$k}/g;
	}
	return $text;
}

1;
