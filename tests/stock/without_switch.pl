# Without the build switch, the C code of a patched tree is stock PostgreSQL.
# For the tree in FE_DATAKEY_PG_SRC (a build/pg-N-src: upstream's source
# tagged "upstream", the series applied as commits on top):
#
#  - every C file or header the series changes, with USE_DATAKEY undefined
#    (unifdef -UUSE_DATAKEY) and comments and blank lines left out, is
#    upstream's, token for token;
#  - every C file the series adds is compiled only with the switch: the
#    Makefile and meson.build lines that name it are inside
#    "ifeq ($(with_datakey),yes)" or "if datakey.found()";
#  - every header it adds is included only under USE_DATAKEY (follows from
#    the first check: upstream's code includes none of them);
#  - every TAP test it adds skips its whole plan unless the build defines
#    USE_DATAKEY.
#
# Build files, the sample configuration and the programs' behaviour are
# checked on real builds without the switch by scripts/check-build-systems.
use strict;
use warnings;

use File::Basename qw(basename);
use IPC::Run qw(run);
use Test::More;

my $src = $ENV{FE_DATAKEY_PG_SRC} or BAIL_OUT('FE_DATAKEY_PG_SRC is not set');
-d "$src/.git" or BAIL_OUT("$src is not a patched tree (run scripts/build)");

sub git
{
	my @cmd = ('git', '-c', "safe.directory=$src", '-C', $src, @_);
	my ($out, $err);
	run(\@cmd, '>', \$out, '2>', \$err) or BAIL_OUT("@cmd: $err");
	return $out;
}

# C text without comments, blank lines or trailing blanks: gcc's
# preprocessor on already preprocessed input removes comments and expands
# nothing.
sub code_of
{
	my ($text) = @_;
	my ($out, $err);
	run([ 'gcc', '-fpreprocessed', '-dD', '-E', '-P', '-x', 'c', '-' ], '<', \$text, '>', \$out, '2>', \$err)
	  or BAIL_OUT("gcc -fpreprocessed: $err");
	return join "\n", grep { /\S/ } map { s/\s+$//r } split /\n/, $out;
}

sub without_switch
{
	my ($path) = @_;
	my ($out, $err);
	# unifdef exits 1 when it changed something, 2 on trouble.
	run([ 'unifdef', '-UUSE_DATAKEY', "$src/$path" ], '>', \$out, '2>', \$err);
	BAIL_OUT("unifdef $path: $err") if ($? >> 8) > 1;
	return $out;
}

my (%status, @changed);
for (split /\n/, git('diff', '--name-status', 'upstream', 'HEAD'))
{
	my ($st, $path) = split /\t/;
	$status{$path} = $st;
	push @changed, $path;
}
ok(scalar(@changed), 'the series changes the tree') or BAIL_OUT('no changes between upstream and HEAD');

# --- changed C files and headers -------------------------------------------------

for my $path (grep { /\.[ch]$/ && $status{$_} eq 'M' } @changed)
{
	my $mine = code_of(without_switch($path));
	my $theirs = code_of(git('show', "upstream:$path"));
	if ($mine eq $theirs)
	{
		pass("$path without USE_DATAKEY is upstream's code");
		next;
	}
	fail("$path without USE_DATAKEY is upstream's code");
	my @m = split /\n/, $mine;
	my @t = split /\n/, $theirs;
	my $i = 0;
	$i++ while $i < @m && $i < @t && $m[$i] eq $t[$i];
	diag("first difference at code line " . ($i + 1) . ":\n  patched:  " . ($m[$i] // '(end)')
		  . "\n  upstream: " . ($t[$i] // '(end)'));
}

# --- added C files: compiled only with the switch --------------------------------

# The lines of a Makefile or meson.build that are outside every block the
# switch guards.
sub unguarded_lines
{
	my ($path) = @_;
	my @out;
	my @stack;    # one entry per open conditional: 1 if it is the switch's
	for my $line (split /\n/, git('show', "HEAD:$path"))
	{
		if ($path =~ /meson\.build$/)
		{
			if ($line =~ /^\s*if\s+(.*)$/) { push @stack, ($1 =~ /\bdatakey\b/ ? 1 : 0); next }
			if ($line =~ /^\s*endif\b/) { pop @stack; next }
		}
		else
		{
			if ($line =~ /^\s*if(n?eq|n?def)\b(.*)$/) { push @stack, ($2 =~ /with_datakey/ ? 1 : 0); next }
			if ($line =~ /^\s*endif\b/) { pop @stack; next }
		}
		next if grep { $_ } @stack;
		push @out, $line unless $line =~ /^\s*#/;
	}
	return @out;
}

my @build_files = grep { m{(^|/)(Makefile|meson\.build)$} } @changed;
for my $path (grep { /\.c$/ && $status{$_} eq 'A' } @changed)
{
	(my $stem = basename($path)) =~ s/\.c$//;
	my @named = grep { /\b\Q$stem\E\.[co]\b/ } map { git('show', "HEAD:$_") } @build_files;
	ok(scalar(@named), "$path is built by a Makefile or meson.build the series changes");
	my @unguarded = map { my $f = $_; map { "$f: $_" } grep { /\b\Q$stem\E\.[co]\b/ } unguarded_lines($f) } @build_files;
	is_deeply(\@unguarded, [], "$path is named only inside the switch's blocks");
}

# --- added headers: included only under USE_DATAKEY -------------------------------

for my $path (grep { /\.h$/ && $status{$_} eq 'A' } @changed)
{
	my $name = basename($path);
	my @includers = grep {
		my $p = $_;
		/\.[ch]$/ && $status{$p} eq 'M' && without_switch($p) =~ /#\s*include\s+["<][^">]*\b\Q$name\E[">]/
	} @changed;
	is_deeply(\@includers, [], "$path is included only under USE_DATAKEY");
}

# --- added TAP tests: skipped without the switch ---------------------------------

for my $path (grep { m{/t/[^/]+\.pl$} && $status{$_} eq 'A' } @changed)
{
	my $text = git('show', "HEAD:$path");
	# Nothing but comments, "use" lines and the guard before the guard's end.
	my ($head) = $text =~ /\A(.*?plan\s+skip_all\b.*?check_pg_config\(\s*"#define USE_DATAKEY 1"\s*\)\s*;)/s;
	ok(defined $head, "$path skips its plan unless USE_DATAKEY is defined");
	next unless defined $head;
	my @code = grep { /\S/ && !/^\s*#/ && !/^\s*use\s/ } split /\n/, $head;
	my $guard = join ' ', @code;
	like($guard, qr/\A\s*plan\s+skip_all\s*=>.*unless\s+check_pg_config/s, "$path: the guard comes before any other code");
}

done_testing();
