# pg_upgrade of an encrypted cluster (15 to 15: the same major version works)
# with tables, indexes and a large object, into a new cluster made with
# initdb --copy-key-from; --check, then copy and link modes, and clone where
# the file system supports it (where it does not, pg_upgrade --clone must
# refuse in its checks).  The unwrap command holds spaces, quotes and
# a literal %, passed by option or by variable through pg_ctl -o.
use strict;
use warnings;

use FeDatakey::Cluster;
use FeDatakey::Run ();    # run_command by its full name: upstream's Utils exports one too
use PostgreSQL::Test::Utils;
use Test::More;

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;

my ($wrap, $unwrap) = key_commands('upgrade');
like($unwrap, qr/ .*'.*".*%/, 'the unwrap command holds spaces, quotes and %');

my $old = $C->new('old');
$old->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
$old->start;
$old->safe_psql('postgres',
	"CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric);
	 CREATE INDEX accounts_owner ON accounts (owner);
	 INSERT INTO accounts SELECT g, 'owner ' || g, g * 1.5 FROM generate_series(1, 5000) g;
	 CREATE TABLE notes (id serial, body text);
	 INSERT INTO notes (body) SELECT repeat('note', g % 50) FROM generate_series(1, 300) g;
	 SELECT lo_from_bytea(424242, 'large object payload'::bytea);");
my $expected = $old->safe_psql('postgres',
	"SELECT count(*), sum(balance) FROM accounts WHERE owner LIKE 'owner 1%'");
$old->stop;
my $old_key = slurp_file($old->data_dir . '/pg_encryption/key.bin');

sub new_cluster
{
	my ($name) = @_;
	my $new = $C->new($name);
	$new->init(
		encrypted => 1,
		wrap => $wrap,
		unwrap => $unwrap,
		copy_key_from => $old->data_dir . '/pg_encryption/key.bin');
	return $new;
}

sub upgrade
{
	my ($new, $mode, %opt) = @_;
	my @extra;
	push @extra, $mode if $mode;
	push @extra, "--key-unwrap-command=$unwrap" if $opt{by} eq 'option';
	my %env = $opt{by} eq 'variable' ? (PGDATAKEYUNWRAPCMD => $unwrap) : ();
	return FeDatakey::Run::run_command(pg_upgrade_command($old, $new, @extra), env => \%env);
}

# The paths that differ between two snapshots (added, removed or changed),
# but for the files a start and clean stop of the server rewrite by
# themselves: the control file, WAL, statistics, postmaster.opts, relation
# cache init files, and system catalog files (hint bits), whose file numbers
# are below FirstNormalObjectId (16384).
sub changed_paths
{
	my ($before, $after) = @_;
	my %all = (%$before, %$after);
	return [
		grep { !server_rewrites($_) }
		grep { ($before->{$_} // '') ne ($after->{$_} // '') } sort keys %all
	];
}

sub server_rewrites
{
	my ($path) = @_;
	return 1 if $path =~ m{^(global/pg_control|postmaster\.opts|pg_wal/.+|pg_stat/.+)$};
	return 1 if $path =~ m{(^|/)pg_internal\.init$};
	return $path =~ m{^(?:global|base/\d+)/(\d+)(?:_(?:fsm|vm))?(?:\.\d+)?$} && $1 < 16384;
}

sub verify
{
	my ($new, $label) = @_;
	$new->start;
	is($new->safe_psql('postgres',
			"SELECT count(*), sum(balance) FROM accounts WHERE owner LIKE 'owner 1%'"),
		$expected, "$label: rows present");
	is($new->safe_psql('postgres', "SELECT count(*) FROM accounts"), '5000', "$label: all accounts");
	is($new->safe_psql('postgres', "SELECT count(*) FROM notes"), '300', "$label: all notes");
	is($new->safe_psql('postgres',
			"SET enable_seqscan = off; SELECT owner FROM accounts WHERE owner = 'owner 4711'"),
		'owner 4711', "$label: index scan works");
	is($new->safe_psql('postgres', "SELECT convert_from(lo_get(424242), 'UTF8')"),
		'large object payload', "$label: large object present");
	$new->stop;
	$new->start;
	is($new->safe_psql('postgres', "SELECT count(*) FROM accounts"), '5000', "$label: restarts");
	$new->stop;
}

# copy mode, command by option; --check first
my $new = new_cluster('new_copy');
my $new_key = slurp_file($new->data_dir . '/pg_encryption/key.bin');
my $new_check = slurp_file($new->data_dir . '/pg_encryption/key.check');
is($new_check, slurp_file($old->data_dir . '/pg_encryption/key.check'),
	'--copy-key-from gives the new cluster the same key check');

my ($rc, $o, $e) = upgrade($new, '--check', by => 'option');
is($rc, 0, 'pg_upgrade --check succeeds') or diag("$o\n$e");
like($o, qr/Checking data encryption keys\s+ok/, '--check reports the key check');

($rc, $o, $e) = upgrade($new, undef, by => 'option');
is($rc, 0, 'pg_upgrade (copy, command by option) succeeds') or diag("$o\n$e");
unlike("$o$e", qr/passphrase|file:/, 'command text not shown');
is(slurp_file($new->data_dir . '/pg_encryption/key.bin'), $new_key,
	'copy: new cluster keeps its key file');
is(slurp_file($new->data_dir . '/pg_encryption/key.check'), $new_check,
	'copy: new cluster keeps its key check');
verify($new, 'copy');

# the old cluster is untouched by copy mode and still starts
is(slurp_file($old->data_dir . '/pg_encryption/key.bin'), $old_key,
	'old cluster key file untouched');

# clone mode, command by variable.  Whether the file system under the
# clusters can clone is asked of cp --reflink=always first: where it can, the
# upgrade must work; where it cannot, pg_upgrade must refuse in its checks.
$new = new_cluster('new_clone');
my $probe = $C->base_dir . '/clone_probe';
my ($clone_rc) = FeDatakey::Run::run_command([ 'cp', '--reflink=always', $old->data_dir . '/PG_VERSION', $probe ]);
unlink $probe;
if ($clone_rc == 0)
{
	($rc, $o, $e) = upgrade($new, '--clone', by => 'variable');
	is($rc, 0, 'pg_upgrade (clone, command by variable) succeeds') or diag("$o\n$e");
	verify($new, 'clone');
}
else
{
	my %before = (old => $old->snapshot, new => $new->snapshot);
	($rc, $o, $e) = upgrade($new, '--clone', by => 'variable');
	isnt($rc, 0, 'no cloning here: pg_upgrade --clone refuses');
	like("$o$e", qr/could not clone file between old and new data directories/,
		'no cloning here: PostgreSQL\'s message about file cloning');
	like($o, qr/Performing Consistency Checks/, 'no cloning here: pg_upgrade ran its checks');
	unlike($o, qr/Performing Upgrade/, 'no cloning here: refused in the checks, before the upgrade');
	# The checks start and stop both servers, which rewrites a few files by
	# itself; nothing else may differ.  In the new cluster pg_upgrade leaves
	# its clone test file behind.
	is_deeply(changed_paths($before{old}, $old->snapshot),
		[], 'no cloning here: old cluster unchanged');
	is_deeply([ grep { $_ ne 'PG_VERSION.clonetest' } @{ changed_paths($before{new}, $new->snapshot) } ],
		[], 'no cloning here: new cluster unchanged');
	ok($old->start(fail_ok => 1), 'no cloning here: the old cluster still starts');
	is($old->safe_psql('postgres', "SELECT count(*), sum(balance) FROM accounts WHERE owner LIKE 'owner 1%'"),
		$expected, 'no cloning here: the old cluster keeps its rows');
	$old->stop;
	$new->start;
	is($new->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname IN ('accounts', 'notes')"),
		'0', 'no cloning here: the new cluster holds nothing of the old one');
	$new->stop;
}

# configured commands only (none given), copy mode
$new = new_cluster('new_conf');
($rc, $o, $e) = upgrade($new, undef, by => 'none');
is($rc, 0, 'pg_upgrade with the configured commands succeeds') or diag("$o\n$e");
verify($new, 'configured command');

# link mode last: it hands the old cluster's files to the new one
$new = new_cluster('new_link');
$new_key = slurp_file($new->data_dir . '/pg_encryption/key.bin');
($rc, $o, $e) = upgrade($new, '--link', by => 'variable');
is($rc, 0, 'pg_upgrade (link, command by variable) succeeds') or diag("$o\n$e");
verify($new, 'link');
is(slurp_file($new->data_dir . '/pg_encryption/key.bin'), $new_key,
	'link: new cluster keeps its key file');

($rc, $o) = FeDatakey::Run::run_command([ 'pg_upgrade', '--help' ]);
like($o, qr/--key-unwrap-command=COMMAND/, '--help lists --key-unwrap-command');
# Its description starts in pg_upgrade's own column, as --check's does.
my ($column) = $o =~ /^(  -c, --check\s+)check clusters/m;
# pg_upgrade's long-only options start in column 3, like --clone.
like($o, qr/^  --key-unwrap-command=COMMAND {${\ (length($column) - 30)}}command that unwraps/m,
	'--help: the description in pg_upgrade\'s column');

done_testing();
