# The library's postgresql.conf quoting against the server's own parser: for
# a sample of awkward unwrap commands, what initdb writes into
# postgresql.conf is read back by `postgres -C` as exactly the same string.
# (tests/fuzz/fuzz_conf checks the round trip through the library's reader;
# this checks that reader's idea of the format against PostgreSQL's.)
use strict;
use warnings;
use FeDatakey::Cluster;
use PostgreSQL::Test::Utils qw(command_ok);
use Test::More;

my @samples = (
	q{cat "%p"},
	q{cat '%p' # it's a comment-like tail},
	q{printf '%%s\n' x >/dev/null; cat "%p"},
	q{cat "%p" | tr 'a\\b' 'a\\b'},
	q{cat "%p"  	 with spaces and a tab},
	q{cat "%p" ''''},
	q{echo "$HOME `true`" >/dev/null; cat "%p"},
	qq{cat "%p" # caf\xc3\xa9},
	q{cat "%p" \\},
);

my $i = 0;
for my $unwrap (@samples)
{
	$i++;
	my $node = FeDatakey::Cluster->new("c$i");
	command_ok($node->initdb_command('-y', '--key-wrap-command=cat > "%p"', "--key-unwrap-command=$unwrap"),
		"initdb accepts sample $i");
	my ($rc, $value, $err) = $node->postgres_C('data_encryption_key_unwrap_command');
	is($rc, 0, "postgres -C reads sample $i") or diag $err;
	is($value, $unwrap, "postgres -C reads back exactly the command initdb wrote (sample $i)");
}

done_testing();
