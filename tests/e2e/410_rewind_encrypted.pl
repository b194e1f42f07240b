# pg_rewind of an encrypted old primary after a failover to a standby made
# with pg_basebackup -R: the old primary is stopped cleanly or crashed, and
# rewound from the new primary as a server or as a data directory; it then
# follows the new primary again.  Assertions are on rows.
use strict;
use warnings;

use Test::More;
use FeDatakey::TestLib;
use FeDatakey::Cluster;

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;

my ($wrap, $unwrap) = key_commands('rewind');

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
	is(slurp_file($standby->data_dir . '/pg_encryption/key.bin'),
		slurp_file($primary->data_dir . '/pg_encryption/key.bin'),
		"$label: pg_basebackup copied the wrapped key");
	is(slurp_file($standby->data_dir . '/pg_encryption/key.check'),
		slurp_file($primary->data_dir . '/pg_encryption/key.check'),
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
	$primary->stop(mode => $s{stop});

	my @cmd = ('pg_rewind', '-D', $primary->data_dir);
	if ($s{source} eq 'server')
	{
		push @cmd, '--source-server=' . $standby->connstr, '-R';
	}
	else
	{
		$standby->stop;
		push @cmd, '--source-pgdata=' . $standby->data_dir;
	}
	my %env;
	if ($s{by} eq 'option') { push @cmd, "--key-unwrap-command=$unwrap" }
	else { $env{PGDATAKEYUNWRAPCMD} = $unwrap }

	# A dry run checks the keys and changes nothing.  (Of a crashed target
	# pg_rewind's dry run stops at its own "shut down cleanly" check.)
	my ($rc, $out, $err);
	if ($s{stop} eq 'fast')
	{
		my $before = $primary->snapshot;
		($rc, $out, $err) = run_command([ @cmd, '-n' ], env => \%env);
		is($rc, 0, "$label: dry run succeeds") or diag($err);
		is_deeply($primary->snapshot, $before, "$label: dry run changed nothing");
	}

	my $key_before = slurp_file($primary->data_dir . '/pg_encryption/key.bin');
	($rc, $out, $err) = run_command(\@cmd, env => \%env);
	is($rc, 0, "$label: pg_rewind succeeds") or diag($err);
	unlike($err, qr/openssl|pass/i, "$label: unwrap command not echoed");
	is(slurp_file($primary->data_dir . '/pg_encryption/key.bin'),
		$key_before, "$label: target kept its own key file");

	# postgresql.conf came from the source (each node's port and socket
	# directory are given to the server at start): make the old primary a
	# standby of the new primary.
	if ($s{source} eq 'pgdata')
	{
		$standby->start;
		$primary->append_conf(
			"primary_conninfo = '" . $standby->connstr . "'\n", 'postgresql.auto.conf');
		write_file($primary->data_dir . '/standby.signal', '');
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
