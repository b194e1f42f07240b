# pg_rewind of an encrypted old primary after a failover to a standby made
# with pg_basebackup -R: the old primary is stopped cleanly or crashed, and
# rewound from the new primary as a server or as a data directory; it then
# follows the new primary again.  Assertions are on rows.  In two of the
# runs the new primary's key is rewrapped (pg_datakey rewrap) before the
# rewind, so that the two key files differ: only then would a pg_rewind
# that copied pg_encryption/ from the source show, as a target that can no
# longer open its key.
use strict;
use warnings;

use FeDatakey::Cluster;
use FeDatakey::Datakey qw(run_datakey);
use FeDatakey::Run ();    # run_command by its full name: upstream's Utils exports one too
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy qw(copy);

my $C = 'FeDatakey::Cluster';

my ($wrap, $unwrap) = key_commands('rewind');
my ($wrap_new, $unwrap_new) = key_commands('rewind-rotated');

sub rows
{
	my ($node, $src) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM t WHERE src = '$src'");
}

my $n = 0;

sub scenario
{
	my (%s) = @_;
	$n++;
	my $label = "$s{stop} stop, --source-$s{source}, command by $s{by}"
	  . ($s{rewrapped} ? ', source rewrapped' : '');

	my $primary = $C->new("primary$n");
	$primary->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	$primary->start;
	$primary->safe_psql('postgres',
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
	$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'streamed' FROM generate_series(101, 110) g");
	ok($standby->poll_query_until('postgres', "SELECT count(*) FROM t", '110'),
		"$label: standby streams from the encrypted primary");

	# Failover, then both sides write.
	$standby->promote;
	$standby->safe_psql('postgres',
		"INSERT INTO t SELECT g, 'new primary' FROM generate_series(201, 250) g; CHECKPOINT;");
	$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'old primary' FROM generate_series(301, 340) g");
	$primary->stop($s{stop});

	if ($s{rewrapped})
	{
		my ($rrc, undef, $rerr) = run_datakey(
			[
				'rewrap', '-D', $standby->data_dir,
				"--new-key-wrap-command=$wrap_new",
				"--new-key-unwrap-command=$unwrap_new"
			]);
		is($rrc, 0, "$label: the new primary's key is rewrapped") or diag($rerr);
		isnt(slurp_file($standby->data_dir . '/pg_encryption/key.bin'),
			slurp_file($primary->data_dir . '/pg_encryption/key.bin'),
			"$label: the two sides' key files differ");
		# A file only the target has in its key directory.
		PostgreSQL::Test::Utils::append_to_file(
			$primary->data_dir . '/pg_encryption/target-only', "kept\n");
	}

	my @cmd = ('pg_rewind', '-D', $primary->data_dir);
	if ($s{source} eq 'server')
	{
		push @cmd, '--source-server=' . $standby->connstr('postgres'), '-R';
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
		($rc, $out, $err) = FeDatakey::Run::run_command([ @cmd, '-n' ], env => \%env);
		is($rc, 0, "$label: dry run succeeds") or diag($err);
		is_deeply($primary->snapshot, $before, "$label: dry run changed nothing");
	}

	my $key_before = slurp_file($primary->data_dir . '/pg_encryption/key.bin');
	# pg_rewind copies postgresql.conf from the source: the old primary
	# keeps its own, which names its port and socket directory.
	my $conf = $primary->data_dir . '/postgresql.conf';
	my $own = $C->base_dir . "/postgresql.conf.$n";
	copy($conf, $own) or die "copy: $!";
	($rc, $out, $err) = FeDatakey::Run::run_command(\@cmd, env => \%env);
	is($rc, 0, "$label: pg_rewind succeeds") or diag($err);
	unlike($err, qr/openssl|pass/i, "$label: unwrap command not echoed");
	is(slurp_file($primary->data_dir . '/pg_encryption/key.bin'),
		$key_before, "$label: target kept its own key file");
	if ($s{rewrapped})
	{
		is(slurp_file($primary->data_dir . '/pg_encryption/target-only'),
			"kept\n", "$label: a file only the target has in pg_encryption/ is still there");
		my ($vrc, undef, $verr) =
		  run_datakey([ 'verify', '-D', $primary->data_dir, "--key-unwrap-command=$unwrap" ]);
		is($vrc, 0, "$label: the target's key opens with the target's own command")
		  or diag($verr);
	}

	copy($own, $conf) or die "copy: $!";

	# From a data directory there is no -R: make the old primary a standby
	# of the new primary (in postgresql.auto.conf, which came from the
	# source too and names the old primary).
	if ($s{source} eq 'pgdata')
	{
		$standby->start;
		$primary->append_conf('postgresql.auto.conf', "primary_conninfo = '" . $standby->connstr . "'");
		$primary->set_standby_mode;
	}
	$primary->start;
	$standby->safe_psql('postgres', "INSERT INTO t SELECT g, 'after rewind' FROM generate_series(401, 420) g");
	ok($primary->poll_query_until('postgres', "SELECT count(*) FROM t", '180'),
		"$label: rewound old primary follows the new primary");
	is(rows($primary, 'base') . '/' . rows($primary, 'streamed') . '/'
		  . rows($primary, 'new primary') . '/' . rows($primary, 'after rewind') . '/'
		  . rows($primary, 'old primary'),
		'100/10/50/20/0', "$label: rows on the rewound node");
	is(rows($standby, 'new primary') . '/' . rows($standby, 'old primary'),
		'50/0', "$label: rows on the new primary");
	is($primary->safe_psql('postgres', "SELECT pg_is_in_recovery()"), 't',
		"$label: old primary runs as a standby");

	$primary->stop;
	$standby->stop;
}

scenario(stop => 'fast', source => 'server', by => 'option', rewrapped => 1);
scenario(stop => 'immediate', source => 'server', by => 'variable');
scenario(stop => 'fast', source => 'pgdata', by => 'variable');
scenario(stop => 'immediate', source => 'pgdata', by => 'option', rewrapped => 1);

done_testing();
