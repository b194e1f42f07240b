# pg_rewind of an encrypted old primary after a failover to a standby made
# with pg_basebackup -R: the old primary is stopped cleanly or crashed, and
# rewound from the new primary as a server or as a data directory; it then
# follows the new primary again.  Assertions are on rows.
use strict;
use warnings;

use Test::More;
use FeDatakey::Cluster;

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;

my ($wrap, $unwrap) = FeDatakey::Cluster::key_commands('rewind');

sub rows
{
	my ($node, $src) = @_;
	return $node->safe_psql("SELECT count(*) FROM t WHERE src = '$src'");
}

my $n = 0;

sub scenario
{
	my (%s) = @_;
	$n++;
	my $label = "$s{stop} stop, --source-$s{source}, command by $s{by}";

	my $primary = $C->new("primary$n");
	$primary->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	$primary->start;
	$primary->safe_psql(
		"CREATE TABLE t (id int PRIMARY KEY, src text);
		 INSERT INTO t SELECT g, 'base' FROM generate_series(1, 100) g;");

	my $standby = $primary->basebackup("standby$n", '-R');
	is(FeDatakey::Cluster::slurp($standby->datadir . '/pg_encryption/key.bin'),
		FeDatakey::Cluster::slurp($primary->datadir . '/pg_encryption/key.bin'),
		"$label: pg_basebackup copied the wrapped key");
	is(FeDatakey::Cluster::slurp($standby->datadir . '/pg_encryption/key.check'),
		FeDatakey::Cluster::slurp($primary->datadir . '/pg_encryption/key.check'),
		"$label: pg_basebackup copied the key check");
	$standby->start;
	$primary->safe_psql("INSERT INTO t SELECT g, 'streamed' FROM generate_series(101, 110) g");
	ok($standby->poll_query("SELECT count(*) FROM t", '110'),
		"$label: standby streams from the encrypted primary");

	# Failover, then both sides write.
	$standby->promote;
	$standby->safe_psql(
		"INSERT INTO t SELECT g, 'new primary' FROM generate_series(201, 250) g; CHECKPOINT;");
	$primary->safe_psql("INSERT INTO t SELECT g, 'old primary' FROM generate_series(301, 340) g");
	$primary->stop($s{stop});

	my @cmd = ('pg_rewind', '-D', $primary->datadir);
	if ($s{source} eq 'server')
	{
		push @cmd, '--source-server=' . $standby->connstr, '-R';
	}
	else
	{
		$standby->stop;
		push @cmd, '--source-pgdata=' . $standby->datadir;
	}
	my %env;
	if ($s{by} eq 'option') { push @cmd, "--key-unwrap-command=$unwrap" }
	else { $env{PGDATAKEYUNWRAPCMD} = $unwrap }

	# A dry run checks the keys and changes nothing.  (Of a crashed target
	# pg_rewind's dry run stops at its own "shut down cleanly" check.)
	my ($ok, $out, $err);
	if ($s{stop} eq 'fast')
	{
		my $before = $primary->snapshot;
		($ok, $out, $err) = FeDatakey::Cluster::run_cmd([ @cmd, '-n' ], env => \%env);
		ok($ok, "$label: dry run succeeds") or diag($err);
		is_deeply($primary->snapshot, $before, "$label: dry run changed nothing");
	}

	my $key_before = FeDatakey::Cluster::slurp($primary->datadir . '/pg_encryption/key.bin');
	($ok, $out, $err) = FeDatakey::Cluster::run_cmd(\@cmd, env => \%env);
	ok($ok, "$label: pg_rewind succeeds") or diag($err);
	unlike($err, qr/openssl|pass/i, "$label: unwrap command not echoed");
	is(FeDatakey::Cluster::slurp($primary->datadir . '/pg_encryption/key.bin'),
		$key_before, "$label: target kept its own key file");

	# postgresql.conf came from the source: give the old primary its own
	# port and socket back, and make it a standby of the new primary.
	$primary->append_conf($primary->own_settings);
	if ($s{source} eq 'pgdata')
	{
		$standby->start;
		$primary->append_conf(
			"primary_conninfo = '" . $standby->connstr . "'\n", 'postgresql.auto.conf');
		open my $fh, '>', $primary->datadir . '/standby.signal' or die $!;
		close $fh;
	}
	$primary->start;
	$standby->safe_psql("INSERT INTO t SELECT g, 'after rewind' FROM generate_series(401, 420) g");
	ok($primary->poll_query("SELECT count(*) FROM t", '180'),
		"$label: rewound old primary follows the new primary");
	is(rows($primary, 'base') . '/' . rows($primary, 'streamed') . '/'
		  . rows($primary, 'new primary') . '/' . rows($primary, 'after rewind') . '/'
		  . rows($primary, 'old primary'),
		'100/10/50/20/0', "$label: rows on the rewound node");
	is(rows($standby, 'new primary') . '/' . rows($standby, 'old primary'),
		'50/0', "$label: rows on the new primary");
	is($primary->safe_psql("SELECT pg_is_in_recovery()"), 't',
		"$label: old primary runs as a standby");

	$primary->stop;
	$standby->stop;
}

scenario(stop => 'fast', source => 'server', by => 'option');
scenario(stop => 'immediate', source => 'server', by => 'variable');
scenario(stop => 'fast', source => 'pgdata', by => 'variable');
scenario(stop => 'immediate', source => 'pgdata', by => 'option');

done_testing();
