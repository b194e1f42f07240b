# Versions: newest
# (pg_datakey and the command runner, the same on every version; the server's part runs on every version in 0xx-1xx)
#
# pg_datakey status and verify on an encrypted cluster: output, JSON, warnings,
# and one exit status per kind of failure.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use FeDatakey::TestLib;
use FeDatakey::Datakey;

my $dir = temp_dir();
my $pass = passphrase_file($dir, 'pass', 'correct horse');
my $pgdata = new_cluster($dir, openssl_wrap($pass), openssl_unwrap($pass))->data_dir;
my $wrong = rejected_passphrase("$pgdata/pg_encryption/key.bin", $dir, 'wrong');

my ($rc, $out, $err) = run_datakey([ '--version' ]);
is($rc, 0, '--version succeeds');
is($out, "pg_datakey (fe_datakey) 0.1.0\n", '--version output');

($rc, $out) = run_datakey([ '--help' ]);
like($out, qr/^Usage:\n  pg_datakey \[COMMAND\] \[OPTION\]\.\.\./m, '--help has a usage line');
like($out, qr/^  -D, --pgdata=DATADIR   data directory$/m, '--help: -D is required before DATADIR');
unlike($out, qr/\[-D/, '--help: no bracket that would make DATADIR a bare argument');
($rc, $out, $err) = run_datakey([ $pgdata ]);
is($rc, 1, 'a bare DATADIR is refused as a command, as the help says');

($rc, $out, $err) = run_datakey([ 'frobnicate', '-D', $pgdata ]);
is($rc, 1, 'unknown command is a usage error');
like($err, qr/^pg_datakey: error: unrecognized command "frobnicate"$/m, 'usage message');
like($err, qr/^pg_datakey: hint: Try "pg_datakey --help" for more information\.$/m, 'usage hint');

($rc, $out, $err) = run_datakey([ 'status' ], env => { PGDATA => undef });
is($rc, 1, 'no data directory is a usage error');
like($err, qr/no data directory specified/, 'says so');

($rc, $out, $err) = run_datakey([ 'status' ], env => { PGDATA => $pgdata });
is($rc, 0, 'status with PGDATA');
like($out, qr/^Encrypted:\s+yes$/m, 'status says encrypted');
like($out, qr/^Key length:\s+128 bits$/m, 'status gives the key length');
like($out, qr/^Key check value:\s+[0-9a-f]{32}$/m, 'status gives the key check value');
unlike($out . $err, qr/openssl|\Q$pass\E/, 'status hides the command');
is($err, '', 'no warnings for a well-kept cluster');

($rc, $out) = run_datakey([ 'status', '-D', $pgdata, '--show-commands' ]);
like($out, qr/^Key unwrap command:\s+\Qopenssl enc -d\E.*-in "%p"$/m,
	'--show-commands shows the configured command');

my $status = datakey_json($pgdata);
is($status->{encrypted}, JSON::PP::true, 'json: encrypted');
is($status->{key_bits}, 128, 'json: key bits');
like($status->{key_check_value}, qr/^[0-9a-f]{32}$/, 'json: key check value');
ok(!exists $status->{unwrap_command}, 'json: no command without --show-commands');
is($status->{rewrap}{state}, 'none', 'json: no rewrap');
my %modes = map { $_->{path} => $_->{mode} } @{ $status->{files} };
is($modes{'pg_encryption'}, '0700', 'json: directory mode');
is($modes{'pg_encryption/key.bin'}, '0600', 'json: key file mode');
is_deeply($status->{warnings}, [], 'json: no warnings');
my $kcv = $status->{key_check_value};

($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 0, 'verify with the configured command');
like($out, qr/key check value $kcv/, 'verify reports the key check value');

($rc, $out, $err) =
  run_datakey([ 'verify', '-D', $pgdata, '--key-unwrap-command=' . openssl_unwrap($wrong) ]);
is($rc, 4, 'wrong passphrase: openssl fails, status 4');
like($err, qr/pg_datakey: error: key unwrap command failed/, 'names the failing command');
unlike($err, qr/\Q$wrong\E/, 'the command text is not echoed');

($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ],
	env => { PGDATAKEYUNWRAPCMD => openssl_unwrap($wrong) });
is($rc, 4, 'PGDATAKEYUNWRAPCMD beats the configuration');
($rc) = run_datakey([ 'verify', '-D', $pgdata, '--key-unwrap-command=' . openssl_unwrap($pass) ],
	env => { PGDATAKEYUNWRAPCMD => openssl_unwrap($wrong) });
is($rc, 0, 'the option beats PGDATAKEYUNWRAPCMD');

($rc, $out, $err) =
  run_datakey([ 'verify', '-D', $pgdata, '--key-unwrap-command=head -c 64 /dev/urandom #%p' ]);
is($rc, 6, 'a key of the right length but wrong: status 6');
($rc, $out, $err) =
  run_datakey([ 'verify', '-D', $pgdata, '--key-unwrap-command=head -c 10 /dev/urandom #%p' ]);
is($rc, 7, 'short output: status 7');
($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata, '--key-unwrap-command=kill -9 $$ #%p' ]);
is($rc, 4, 'a command killed by a signal: status 4');
($rc, $out, $err) =
  run_datakey([ 'verify', '-D', $pgdata, '--timeout=1', '--key-unwrap-command=sleep 30; cat "%p"' ]);
is($rc, 5, 'a hanging command past --timeout: status 5');
($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata, '--key-unwrap-command=' ]);
is($rc, 3, 'an empty command: status 3');
($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata, '--key-unwrap-command=cat key' ]);
is($rc, 3, 'a command without %p: status 3');

my $check = "$pgdata/pg_encryption/key.check";
rename $check, "$check.away" or die;
($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 13, 'missing key check in a cluster pg_control calls encrypted: status 13');
($rc, $out, $err) = run_datakey([ 'status', '-D', $pgdata, '--json' ]);
is($rc, 13, 'status fails too');
like($out, qr/key check file \\"pg_encryption\/key.check\\" is missing/, 'and says why');
write_file($check, "fe_datakey key check 1\nbits 128\n");
($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 8, 'malformed key check: status 8');
rename "$check.away", $check or die;

chmod 0644, "$pgdata/pg_encryption/key.bin";
($rc, $out, $err) = run_datakey([ 'status', '-D', $pgdata ]);
is($rc, 0, 'status still succeeds with warnings');
like($err, qr/^pg_datakey: warning: "pg_encryption\/key\.bin" is accessible by other users \(mode 0644\)$/m,
	'world-readable key file is a warning');
chmod 0600, "$pgdata/pg_encryption/key.bin";

# A configuration that names no command.
my $conf = slurp_file("$pgdata/postgresql.conf");
(my $without = $conf) =~ s/^data_encryption_key_unwrap_command\b.*$//mg;
write_file("$pgdata/postgresql.conf", $without);
$status = datakey_json($pgdata);
is($status->{unwrap_command_configured}, JSON::PP::false, 'json: no command configured');
ok((grep { /names no key unwrap command/ } @{ $status->{warnings} }), 'warned');
($rc, $out, $err) = run_datakey([ 'verify', '-D', $pgdata ]);
is($rc, 3, 'verify without any command: status 3');
write_file("$pgdata/postgresql.conf", $conf);

# An unencrypted cluster.
my $plain_dir = temp_dir();
my ($irc, undef, $ierr) = init_cluster("$plain_dir/data");
die "initdb failed: $ierr" if $irc != 0;
$status = datakey_json("$plain_dir/data");
is($status->{encrypted}, JSON::PP::false, 'json: an unencrypted cluster');
($rc, $out, $err) = run_datakey([ 'verify', '-D', "$plain_dir/data" ]);
is($rc, 2, 'verify on an unencrypted cluster: status 2');
($rc, $out, $err) = run_datakey([ 'verify', '-D', $dir ]);
is($rc, 9, 'not a cluster directory: status 9');

done_testing();
