# Versions: 15 17 18
#
# Rotation of the passphrase across a Patroni fleet, by the procedure of
# docs/ha-and-backup.md: pg_datakey rewrap on each node while the cluster
# runs (which changes the command in each node's postgresql.auto.conf), the
# new command into each Patroni's environment, a restart of every node under
# the new command, the replicas first, then a failover.  One node is left out of the rotation on purpose:
# pg_datakey status and verify report it, its server refuses to start once
# the old passphrase is retired, and a rewrap from the old passphrase brings
# it back.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time);
use FeDatakey::HA;
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use PostgreSQL::Test::Utils qw(slurp_file);
use FeDatakey::Datakey qw(run_datakey datakey_json);

my $t0 = time;
my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass1 = passphrase_file($dir, 'datakey.pass.1', 'fleet secret 1');
my $pass2 = passphrase_file($dir, 'datakey.pass.2', 'fleet secret 2');
my ($wrap1, $unwrap1) = (openssl_wrap($pass1), openssl_unwrap($pass1));
my ($wrap2, $unwrap2) = (openssl_wrap($pass2), openssl_unwrap($pass2));

my $etcd = FeDatakey::HA::Etcd->start($dir, 3);
my @nodes = start_fleet($dir, $etcd, $wrap1, $unwrap1);
my ($n1, $n2, $n3) = @nodes;
pass('three Patroni nodes run an encrypted cluster under passphrase 1');

sub show_logs { diag($_->name . ":\n" . $_->log_tail(25)) for @nodes }

sub leader { my @l = grep { $_->is_leader } @nodes; return @l == 1 ? $l[0] : undef }

sql_ok($n1->port, "CREATE TABLE t (id bigint PRIMARY KEY, note text);
	INSERT INTO t SELECT g, 'before rotation' FROM generate_series(1, 500) g");
my $kcv = datakey_json($n1->data_dir)->{key_check_value};
ok($kcv, "the key check value to note in the rotation record: $kcv");

# --- step 1: rewrap on each node while it runs (node3 is missed) -------------------

for my $n ($n1, $n2)
{
	my ($rc, $out, $err) = run_datakey(
		[ 'rewrap', '-D', $n->data_dir, '--edit-auto-conf', "--key-unwrap-command=$unwrap1",
			"--new-key-wrap-command=$wrap2", "--new-key-unwrap-command=$unwrap2" ]);
	is($rc, 0, $n->name . ': pg_datakey rewrap --edit-auto-conf to passphrase 2 while the cluster runs')
	  or diag($err);
	my ($vrc) = run_datakey([ 'verify', '-D', $n->data_dir, "--key-unwrap-command=$unwrap2" ]);
	is($vrc, 0, $n->name . ': its key opens with passphrase 2');
}

# --- step 2: check every node -----------------------------------------------------

# rewrap changed the command in postgresql.auto.conf, where post_init put it
# and where Patroni leaves it.
for my $n ($n1, $n2)
{
	like(slurp_file($n->data_dir . '/postgresql.auto.conf'), qr/-pass file:\Q$pass2\E/,
		$n->name . ': postgresql.auto.conf names the new command');
}

# The missed node: key.bin and configuration still for passphrase 1.
my $s3 = datakey_json($n3->data_dir, '--show-commands');
is($s3->{unwrap_command}, $unwrap1,
	'pg_datakey status --show-commands reports the old command on the node the rotation missed');
is(datakey_json($n1->data_dir, '--show-commands')->{unwrap_command}, $unwrap2, 'and the new one on a rotated node');
is($s3->{key_check_value}, $kcv, 'the missed node has the same key check value');
my ($rc, $out, $err) = run_datakey([ 'verify', '-D', $n3->data_dir ], env => { PGDATAKEYUNWRAPCMD => $unwrap2 });
isnt($rc, 0, 'pg_datakey verify with the new command reports the missed node');
diag("verify on the missed node: status $rc: $err");

# --- step 3: every Patroni gets the new command in its environment; replicas
# restart first -------------------------------------------------------------------

$_->set_env(PGDATAKEYWRAPCMD => $wrap2, PGDATAKEYUNWRAPCMD => $unwrap2) for @nodes;

# The old passphrase is retired (kept aside), and the missed node restarts:
# refused.
rename $pass1, "$pass1.retired" or die "rename: $!";
my $size = -s $n3->log_file;
$n3->stop;
$n3->start;
ok(wait_until(sub { substr(slurp_file($n3->log_file), $size) =~ /FATAL:  key unwrap command failed/ }, 60),
	'the missed node restarts and its server refuses the key');
my $tail = substr(slurp_file($n3->log_file), $size);
like($tail, qr/No such file or directory/, "with the command's own error before it")
  or diag($tail);
diag(join '', grep { /FATAL|DETAIL|HINT|bad decrypt/ } split /^/m, $tail);
ok(!$n3->is_replica, 'the missed node does not run');
$n3->stop;

# The fix: the old passphrase from where it was kept, and the rewrap the node
# missed, with its server stopped.
rename "$pass1.retired", $pass1 or die "rename: $!";
($rc, undef, $err) = run_datakey(
	[ 'rewrap', '-D', $n3->data_dir, "--key-unwrap-command=$unwrap1",
		"--new-key-wrap-command=$wrap2", "--new-key-unwrap-command=$unwrap2" ]);
is($rc, 0, 'the missed rewrap, run on the stopped node') or diag($err);
$n3->start;
ok(wait_until(sub { $n3->is_replica }, 90), 'then node3 starts under the new command and replicates')
  or show_logs();

$size = -s $n2->log_file;
$n2->stop;
$n2->start;
ok(wait_until(sub { $n2->is_replica }, 60), 'node2 restarts under the new command and replicates') or show_logs();
like(substr(slurp_file($n2->log_file), $size), qr/data encryption key loaded and verified/,
	'node2 loaded its key with the new command');

# --- step 4: a failover, and the old leader restarts under the new command ----------

# Patroni promotes only a synchronous standby. Right after node2's restart
# the leader has just moved the synchronous role between the replicas; a
# crash in that moment leaves neither replica sure it is the healthiest, and
# no one takes over. So the crash comes once both are synchronous again.
ok(wait_until(sub { scalar($n1->sync_standbys) == 2 }, 60),
	'both replicas are synchronous standbys again before the crash')
  or show_logs();
$n1->crash;
my $new;
ok(wait_until(sub { $new = leader() }, 60), 'a replica takes over after the leader crashed') or show_logs();
$new //= $n2;
sql_ok($new->port, "INSERT INTO t SELECT g, 'after failover' FROM generate_series(501, 600) g");

$size = -s $n1->log_file;
$n1->start;
ok(wait_until(sub { $n1->is_replica }, 120), 'the old leader rejoins under the new command') or show_logs();
$tail = substr(slurp_file($n1->log_file), $size);
like($tail, qr/data encryption key loaded and verified/, 'node1 loaded its key with the new command');
unlike(join('', map { slurp_file($_->log_file) } @nodes), qr/fleet secret/, 'no log shows a passphrase');

# --- the end state -------------------------------------------------------------------

unlink $pass1;
for my $n (@nodes)
{
	my ($vrc, undef, $verr) = run_datakey([ 'verify', '-D', $n->data_dir ]);
	is($vrc, 0, $n->name . ': verify with the configured command, passphrase 1 deleted') or diag($verr);
	is(datakey_json($n->data_dir)->{key_check_value}, $kcv, $n->name . ': the key check value is unchanged');
}
my $digest;
ok(
	wait_until(
		sub {
			$digest = table_digest($new->port, 't') // return 0;
			return !grep { (table_digest($_->port, 't') // '') ne $digest } @nodes;
		},
		60),
	'row count and checksum agree on all three nodes');
like($digest, qr/^600\|/, 'with all 600 rows');

$_->stop for reverse @nodes;
diag(sprintf('wall time: %.1fs', time - $t0));
done_testing();
