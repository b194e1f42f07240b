# Versions: 15 17 18
#
# An encrypted cluster under Patroni 4.0 and etcd 3.4: three etcd members and
# three Patroni nodes on 127.0.0.1, bootstrapped with initdb --data-encryption
# through Patroni's bootstrap configuration, replicas made by pg_basebackup,
# a switchover and a failover (kill -9 of the primary's Patroni and
# postmaster, the key store unreachable) while a writer inserts rows, and the
# old primary's rejoin with pg_rewind: refused without the unwrap command in
# Patroni's environment, done with it.  At the end every node holds the same rows, and every row the
# writer saw committed.
use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time);
use FeDatakey::HA;
use FeDatakey::KeyCommands qw(passphrase_file openssl_wrap openssl_unwrap);
use PostgreSQL::Test::Utils qw(slurp_file);
use FeDatakey::Datakey qw(run_datakey);

my $t0 = time;
my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'datakey.pass', 'ha secret 1');
my ($wrap, $unwrap) = (openssl_wrap($pass), openssl_unwrap($pass));

my $etcd = FeDatakey::HA::Etcd->start($dir, 3);
pass('an etcd cluster of 3 members is healthy');

my %dcs = %{ dcs_config() };
my $post_init = post_init_script($dir, $unwrap);
my %env = (PGDATAKEYWRAPCMD => $wrap, PGDATAKEYUNWRAPCMD => $unwrap);
my @nodes = map {
	FeDatakey::HA::Patroni->new($dir, "node$_", $etcd,
		env => \%env,
		dcs => \%dcs,
		post_init => $post_init,
		initdb => [ 'data-encryption', { encoding => 'UTF8' }, { locale => 'C' } ])
} 1 .. 3;
my %by_name = map { $_->name => $_ } @nodes;

sub leader { my @l = grep { $_->is_leader } @nodes; return @l == 1 ? $l[0] : undef }

sub show_logs { diag($_->name . ":\n" . $_->log_tail(25)) for @nodes }

# --- bootstrap ---------------------------------------------------------------------

$nodes[0]->start;
ok(wait_until(sub { $nodes[0]->is_leader }, 90), 'node1 bootstraps an encrypted cluster and leads')
  or do { show_logs(); BAIL_OUT('no leader') };
my $d1 = $nodes[0]->data_dir;
ok(-s "$d1/pg_encryption/key.bin" && -s "$d1/pg_encryption/key.check",
	'bootstrap made pg_encryption/key.bin and key.check');
like(slurp_file("$d1/postgresql.base.conf"), qr/^data_encryption_key_unwrap_command = /m,
	'initdb wrote the unwrap command into postgresql.conf, which Patroni kept as postgresql.base.conf');
my $conf = slurp_file("$d1/postgresql.conf");
like($conf, qr/^include 'postgresql.base.conf'/m, 'Patroni wrote its own postgresql.conf');
unlike($conf, qr/data_encryption_key_unwrap_command/, "Patroni's postgresql.conf does not set the command");
# Patroni may report the leader before post_init has run: wait for it, before
# any replica copies the file.
ok(wait_until(sub { slurp_file("$d1/postgresql.auto.conf") =~ /^data_encryption_key_unwrap_command = /m }, 30),
	'post_init set the unwrap command in postgresql.auto.conf');
like($nodes[0]->log_tail(400), qr/data encryption key loaded and verified/,
	'the server under Patroni loaded and verified the key');
unlike(slurp_file($nodes[0]->log_file), qr/ha secret/, 'the Patroni and server log never show the passphrase');

# --- replicas ----------------------------------------------------------------------

$_->start for @nodes[ 1, 2 ];
ok(wait_until(sub { $nodes[1]->is_replica && $nodes[2]->is_replica }, 120),
	'node2 and node3 run as replicas made by pg_basebackup')
  or do { show_logs(); BAIL_OUT('no replicas') };
my $key = slurp_file("$d1/pg_encryption/key.bin");
for my $n (@nodes[ 1, 2 ])
{
	is(slurp_file($n->data_dir . '/pg_encryption/key.bin'), $key, $n->name . ' has the wrapped key in pg_encryption/');
	like(slurp_file($n->data_dir . '/postgresql.auto.conf'), qr/^data_encryption_key_unwrap_command = /m,
		$n->name . ': pg_basebackup copied postgresql.auto.conf with the command');
	my ($rc, $out, $err) = run_datakey([ 'verify', '-D', $n->data_dir ]);
	is($rc, 0, $n->name . ': pg_datakey verify with the configured command succeeds') or diag($err);
}

my $lp = $nodes[0]->port;
sql_ok($lp, "CREATE TABLE t (id bigint PRIMARY KEY, note text);
	INSERT INTO t SELECT g, 'base' FROM generate_series(1000001, 1001000) g");

my $writer = FeDatakey::HA::Writer->start($dir, [ map { $_->port } @nodes ], 't', 240);
ok(wait_until(sub { scalar($writer->acked) >= 10 }, 30), 'the writer commits rows');

# --- switchover --------------------------------------------------------------------

# In synchronous mode Patroni switches over to a synchronous standby only.
# Name it: after a switchover without a candidate, Patroni 3.0 did not fail
# over by itself later in this test.
ok(wait_until(sub { scalar($nodes[0]->sync_standbys) == 2 }, 60), 'both replicas are synchronous standbys');
my ($cand) = $nodes[0]->sync_standbys;
my ($st, $body) = $nodes[0]->post('/switchover', { leader => 'node1', candidate => $cand // 'node2' });
is($st, 200, 'a switchover from node1 to a synchronous standby is accepted') or diag($body);
my $sw;
ok(wait_until(sub { ($sw = leader()) && $sw != $nodes[0] && $nodes[0]->is_replica }, 90),
	'after the switchover the candidate leads and node1 follows')
  or show_logs();
ok(wait_until(sub { scalar($sw->sync_standbys) == 2 }, 60), 'both replicas are synchronous standbys again');
my $n0 = scalar $writer->acked;
ok(wait_until(sub { scalar($writer->acked) >= $n0 + 10 }, 30), 'the writer commits on the new primary');

# --- failover: a crash of the primary -----------------------------------------------

# The key store (here: the passphrase file) is unreachable during the
# failover.  A running replica holds the key already: its promotion needs
# no unwrap.
chmod 0, $pass;
my $crashed = leader() // $nodes[1];
my $pm = $crashed->crash;
ok($pm && !FeDatakey::HA::alive($pm), 'the primary postmaster was killed with SIGKILL, and its Patroni too');
my $new;
ok(wait_until(sub { $new = leader() }, 60),
	'a replica takes over after the leader key expires, with the key store unreachable')
  or show_logs();
chmod 0600, $pass;
$new //= $nodes[0];
diag('new leader: ' . $new->name);
$n0 = scalar $writer->acked;
ok(wait_until(sub { scalar($writer->acked) >= $n0 + 10 }, 30), 'the writer commits on the promoted node');

# Rejoin without the unwrap command in Patroni's environment: Patroni
# runs pg_rewind with no key option, and pg_rewind refuses.
$crashed->set_env(PGDATAKEYUNWRAPCMD => undef);
my $logsize = -s $crashed->log_file;
$crashed->start;
ok(wait_until(sub { slurp_file($crashed->log_file) =~ /pg_rewind exit code=(\d+)/ && $1 != 0 }, 60),
	'without PGDATAKEYUNWRAPCMD the rejoin runs pg_rewind, which fails');
my $tail = substr(slurp_file($crashed->log_file), $logsize);
like($tail, qr/unwrap command not specified/,
	"pg_rewind's refusal names the missing unwrap command");
$crashed->stop;

$crashed->set_env(PGDATAKEYUNWRAPCMD => $unwrap);
$logsize = -s $crashed->log_file;
$crashed->start;
ok(wait_until(sub { $crashed->is_replica }, 120),
	'with PGDATAKEYUNWRAPCMD in its environment the old primary rejoins as a replica')
  or show_logs();
$tail = substr(slurp_file($crashed->log_file), $logsize);
like($tail, qr/pg_rewind exit code=0/, 'it rejoined through pg_rewind');
is(slurp_file($crashed->data_dir . '/pg_encryption/key.bin'), $key, 'pg_rewind left its wrapped key as it was');

# --- nothing lost --------------------------------------------------------------------

my @acked = $writer->stop;
cmp_ok(scalar @acked, '>', 30, 'the writer committed rows throughout (' . scalar(@acked) . ')');
my $lport = $new->port;
my $digest;
ok(
	wait_until(
		sub {
			$digest = table_digest($lport, 't') // return 0;
			my @d = map { table_digest($_->port, 't') // '' } @nodes;
			return !grep { $_ ne $digest } @d;
		},
		60),
	'row count and table checksum agree on all three nodes'
) or diag(join "\n", map { $_->name . ': ' . (table_digest($_->port, 't') // 'error') } @nodes);
my $list = join ',', @acked;
is(sql_ok($lport, "SELECT count(*) FROM unnest('{$list}'::bigint[]) a WHERE NOT EXISTS (SELECT 1 FROM t WHERE id = a)"),
	0, 'every row the writer saw committed is there');

$_->stop for reverse @nodes;
ok(!grep({ $_->postmaster_pid } @nodes), 'every postmaster stopped with its Patroni');
diag(sprintf('wall time: %.1fs', time - $t0));
done_testing();
