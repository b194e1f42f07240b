# pg_rewind refuses combinations that would corrupt the target, before it
# changes anything: a source with a different key, an unencrypted source, an
# unencrypted target with an encrypted source, a wrong or missing unwrap
# command.  After each refusal the target is byte for byte as it was and
# still starts with its rows.
use strict;
use warnings;

use FeDatakey::Cluster;
use FeDatakey::Run ();    # run_command by its full name: upstream's Utils exports one too
use PostgreSQL::Test::Utils;
use Test::More;

my $C = 'FeDatakey::Cluster';

my ($wrap, $unwrap) = key_commands('refused');
my ($wrap2, $unwrap2) = key_commands('other', 'another passphrase');
my ($bad_wrap, $bad_unwrap) = key_commands('wrong', 'wrong passphrase');

sub fill
{
	my ($node, $src) = @_;
	$node->safe_psql('postgres',
		"CREATE TABLE t (id int, src text); INSERT INTO t SELECT g, '$src' FROM generate_series(1, 25) g;");
}

# Encrypted target, crashed (so pg_rewind would run a single-user recovery
# first if it got that far).
my $target = $C->new('target');
$target->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
$target->start;
fill($target, 'target');
# A standby of the target with the same key, for the wrong-command cases.
my $twin = $target->basebackup('twin', '-R');
$twin->start;
$twin->promote;
$target->stop('immediate');

my $other = $C->new('other_key');
$other->init(encrypted => 1, wrap => $wrap2, unwrap => $unwrap2);
$other->start;
fill($other, 'other');

my $plain = $C->new('plain');
$plain->init(encrypted => 0);
$plain->start;
fill($plain, 'plain');
$plain->stop;

sub refused
{
	my ($label, $node, $cmd, $env, $pattern) = @_;
	my $before = $node->snapshot;
	my ($rc, $out, $err) = FeDatakey::Run::run_command($cmd, env => $env);
	isnt($rc, 0, "$label: refused");
	like($err, $pattern, "$label: message");
	unlike($err, qr/passphrase|openssl|file:/, "$label: command text not shown");
	is_deeply($node->snapshot, $before, "$label: target unchanged");
	return $err;
}

my @to_target = ('pg_rewind', '-D', $target->data_dir);

my $err = refused('different key (server)', $target,
	[ @to_target, '--source-server=' . $other->connstr('postgres'), "--key-unwrap-command=$unwrap" ],
	{}, qr/source and target clusters use different data encryption keys/);
like($err, qr/detail: Both clusters are encrypted/, 'different key: detail names both states');

$other->stop;
refused('different key (directory, dry run)', $target,
	[ @to_target, '--source-pgdata=' . $other->data_dir, '-n' ],
	{ PGDATAKEYUNWRAPCMD => $unwrap },
	qr/use different data encryption keys/);

$err = refused('unencrypted source', $target,
	[ @to_target, '--source-pgdata=' . $plain->data_dir, "--key-unwrap-command=$unwrap" ],
	{}, qr/source and target clusters differ in data encryption/);
like($err, qr/The target cluster is encrypted, the source cluster is not encrypted/,
	'unencrypted source: detail');

$err = refused('unencrypted target, encrypted source', $plain,
	[ 'pg_rewind', '-D', $plain->data_dir, '--source-pgdata=' . $other->data_dir ],
	{}, qr/source and target clusters differ in data encryption/);
like($err, qr/The target cluster is not encrypted, the source cluster is encrypted/,
	'unencrypted target: detail');

refused('wrong unwrap command', $target,
	[ @to_target, '--source-server=' . $twin->connstr('postgres'), "--key-unwrap-command=$bad_unwrap" ],
	{}, qr/could not load the data encryption key of the target cluster/);

refused('wrong unwrap command by variable', $target,
	[ @to_target, '--source-server=' . $twin->connstr('postgres') ],
	{ PGDATAKEYUNWRAPCMD => $bad_unwrap },
	qr/could not load the data encryption key of the target cluster/);

$err = refused('no unwrap command', $target,
	[ @to_target, '--source-server=' . $twin->connstr('postgres') ],
	{}, qr/--key-unwrap-command/);
like($err, qr/PGDATAKEYUNWRAPCMD/, 'no unwrap command: names the variable');

refused('empty unwrap command', $target,
	[ @to_target, '--source-server=' . $twin->connstr('postgres'), '--key-unwrap-command=' ],
	{}, qr/empty/);

# The same key but a plaintext "-" where the target's file is wrapped.
refused('"-" for a wrapped key', $target,
	[ @to_target, '--source-server=' . $twin->connstr('postgres'), '--key-unwrap-command=-' ],
	{}, qr/could not load the data encryption key of the target cluster/);

# Every target still starts as it was.
$target->start;
is($target->safe_psql('postgres', "SELECT count(*), min(src) FROM t"), '25|target',
	'encrypted target starts with its rows after the refusals');
$target->stop;
$plain->start;
is($plain->safe_psql('postgres', "SELECT count(*), min(src) FROM t"), '25|plain',
	'unencrypted target starts with its rows after the refusal');
$plain->stop;
$twin->stop;

# pg_rewind --help lists the option.
my ($rc, $out) = FeDatakey::Run::run_command([ 'pg_rewind', '--help' ]);
like($out, qr/--key-unwrap-command=COMMAND/, '--help lists --key-unwrap-command');
# Its description starts in pg_rewind's own column, as --dry-run's does.
my ($column) = $out =~ /^(  -n, --dry-run\s+)stop before/m;
like($out, qr/^      --key-unwrap-command=COMMAND\n {${\ length $column}}command that unwraps/m,
	'--help: the description in pg_rewind\'s column');

done_testing();
