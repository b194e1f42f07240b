# initdb refuses bad data encryption input before it creates anything:
# missing commands, empty strings, no %p, "-" mixed with a command, bad key
# lengths, key options without -y, unsafe or missing --copy-key-from paths,
# malformed options. Each is a clear error, exit status 1, and no data
# directory left behind. And a data directory whose name holds spaces,
# quotes and $ works, since the commands see a relative %p.
use strict;
use warnings;
use FeDatakey::Cluster;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use PostgreSQL::Test::Utils qw(command_ok slurp_file);
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'secret');
my $wrap = openssl_wrap($pass);
my $unwrap = openssl_unwrap($pass);
my $marker = "$dir/ran";
# Commands that would leave a trace if they ever ran.
my $trace_wrap = "touch $marker; cat > \"%p\"";
my $trace_unwrap = "touch $marker; cat \"%p\"";

# refused(name, [initdb args], env, qr/message/, qr/detail or hint/?)
sub refused
{
	my ($name, $args, $env, $message, $more) = @_;
	my $node = FeDatakey::Cluster->new($name);
	my $pgdata = $node->data_dir;
	unlink $marker;
	my ($rc, $out, $err) = $node->initdb(@$args, { env => $env });
	is($rc, 1, "$name: initdb exits with status 1");
	like($err, $message, "$name: says why");
	like($err, $more, "$name: with detail or hint") if $more;
	unlike($err, qr/^\S+: error: .*\n(?:.*\n)*\S+: error:/m, "$name: one error only");
	ok(!-e $pgdata, "$name: no data directory left behind");
	ok(!-e $marker, "$name: no key command ran");
	unlike($out, qr/The files belonging to this database system/, "$name: refused before initdb starts its work");
	return $err;
}

my $no_env = {};

# --- missing commands ------------------------------------------------------------------
refused('y_alone', ['-y'], $no_env, qr/error: key wrap command not specified/,
	qr/detail: Neither --key-wrap-command nor the environment variable PGDATAKEYWRAPCMD is set\./);
my $err = refused('y_alone_hint', ['-y'], $no_env, qr/key wrap command not specified/);
like($err, qr/hint: .*"-"/, 'the hint mentions "-"');
refused('only_wrap', [ '-y', "--key-wrap-command=$trace_wrap" ], $no_env,
	qr/error: key unwrap command not specified/,
	qr/--key-unwrap-command nor the environment variable PGDATAKEYUNWRAPCMD/);
refused('only_unwrap', [ '-y', "--key-unwrap-command=$trace_unwrap" ], $no_env,
	qr/error: key wrap command not specified/);
refused('only_unwrap_variable', ['-y'], { PGDATAKEYUNWRAPCMD => $trace_unwrap },
	qr/error: key wrap command not specified/);
refused('only_wrap_variable', ['-y'], { PGDATAKEYWRAPCMD => $trace_wrap },
	qr/error: key unwrap command not specified/);
refused('256_alone', ['--data-encryption=256'], $no_env, qr/key wrap command not specified/);

# --- empty strings, not the same as "-" ------------------------------------------------
refused('empty_wrap_option', [ '-y', '--key-wrap-command=', "--key-unwrap-command=$trace_unwrap" ],
	$no_env, qr/error: key wrap command is empty/, qr/given by --key-wrap-command is an empty string/);
refused('empty_unwrap_option', [ '-y', "--key-wrap-command=$trace_wrap", '--key-unwrap-command', '' ],
	$no_env, qr/error: key unwrap command is empty/);
refused('empty_wrap_variable', ['-y'], { PGDATAKEYWRAPCMD => '', PGDATAKEYUNWRAPCMD => $trace_unwrap },
	qr/error: key wrap command is empty/, qr/environment variable PGDATAKEYWRAPCMD/);
refused('empty_unwrap_variable', ['-y'], { PGDATAKEYWRAPCMD => $trace_wrap, PGDATAKEYUNWRAPCMD => '' },
	qr/error: key unwrap command is empty/, qr/hint: .*not the same as "-"/);

# --- no %p ----------------------------------------------------------------------------
refused('wrap_without_p', [ '-y', '--key-wrap-command=cat > key.bin', "--key-unwrap-command=$trace_unwrap" ],
	$no_env, qr/error: key wrap command does not contain %p/);
refused('unwrap_without_p', [ '-y', "--key-wrap-command=$trace_wrap", '--key-unwrap-command=cat key.bin' ],
	$no_env, qr/error: key unwrap command does not contain %p/);
refused('unwrap_only_escaped_p', [ '-y', "--key-wrap-command=$trace_wrap", '--key-unwrap-command=cat %%p' ],
	$no_env, qr/error: key unwrap command does not contain %p/, qr/hint: Write %% for a literal %/);

# --- "-" mixed with a command ------------------------------------------------------------
refused('dash_wrap_command_unwrap', [ '-y', '--key-wrap-command=-', "--key-unwrap-command=$trace_unwrap" ],
	$no_env, qr/error: key wrap and unwrap commands must both be "-" or both be commands/);
refused('command_wrap_dash_unwrap', [ '-y', "--key-wrap-command=$trace_wrap", '--key-unwrap-command=-' ],
	$no_env, qr/must both be "-" or both be commands/);
refused('no_key_wrap_and_command', [ '-y', '--no-key-wrap', "--key-wrap-command=$trace_wrap" ],
	$no_env, qr/error: options --no-key-wrap and --key-wrap-command cannot be used together/);

# --- key lengths ---------------------------------------------------------------------------
for my $bad ('512', '192', '0', 'abc', '', '128bits', ' 128')
{
	(my $name = "bits_" . ($bad eq '' ? 'empty' : $bad)) =~ s/\W+/_/g;
	refused($name, [ "--data-encryption=$bad", '--no-key-wrap' ], $no_env,
		qr/error: argument of --data-encryption must be 128 or 256\n.*detail: .*\n.*hint: /);
}

# --- key options without -y ---------------------------------------------------------------
for my $case ([ 'wrap_without_y', ["--key-wrap-command=$trace_wrap"] ],
	[ 'unwrap_without_y', ["--key-unwrap-command=$trace_unwrap"] ],
	[ 'both_without_y', [ "--key-wrap-command=$trace_wrap", "--key-unwrap-command=$trace_unwrap" ] ],
	[ 'no_key_wrap_without_y', ['--no-key-wrap'] ])
{
	my ($name, $args) = @$case;
	refused($name, $args, $no_env,
		qr/error: options --key-wrap-command, --key-unwrap-command and --no-key-wrap can only be used with data encryption \(-y\)/,
		qr/hint: Add -y/);
}
refused('copy_without_y', [ "--copy-key-from=$dir/nonexistent" ], $no_env,
	qr/error: option --copy-key-from can only be used with data encryption \(-y\)/);

# --- --copy-key-from paths -------------------------------------------------------------------
{
	# A real key file whose name would break a shell command, however %p is
	# quoted. Only the name goes into %p: the directory is the working one.
	mkdir "$dir/unsafe";
	for my $bad ('quo"te', "sin'gle", 'dol$lar', 'back`quote', 'back\\slash', 'sp ace', 'semi;colon', 'gl*ob')
	{
		my $file = "$dir/unsafe/key$bad.bin";
		write_file($file, 'x' x 64, 0600);
		(my $name = "copy_unsafe_$bad") =~ s/\W+/_/g;
		refused($name, [ '-y', "--key-wrap-command=$trace_wrap", "--key-unwrap-command=$trace_unwrap",
				"--copy-key-from=$file" ], $no_env,
			qr/error: cannot use the file given with --copy-key-from: path contains a character that is not allowed in a key command/,
			qr/hint: Copy or link the file to a path made only of letters, digits/);
	}
	refused('copy_missing', [ '-y', "--key-wrap-command=$trace_wrap", "--key-unwrap-command=$trace_unwrap",
			"--copy-key-from=$dir/nonexistent/key.bin" ], $no_env,
		qr/error: cannot use the file given with --copy-key-from: could not access file ".*nonexistent\/key.bin": No such file or directory/);
	refused('copy_directory', [ '-y', "--key-wrap-command=$trace_wrap", "--key-unwrap-command=$trace_unwrap",
			"--copy-key-from=$dir" ], $no_env,
		qr/error: cannot use the file given with --copy-key-from: data encryption key file "[^"]*" is not a regular file\n.*detail: It is a directory\./);
}

# --- malformed options --------------------------------------------------------------------------
refused('wrap_option_no_value', [ '-y', '--key-wrap-command' ], $no_env,
	qr/error: option --key-wrap-command requires a value\n.*hint: Try "initdb --help" for more information\.\n\z/);
refused('wrap_option_twice', [ '-y', "--key-wrap-command=$trace_wrap", "--key-wrap-command=$trace_wrap",
		"--key-unwrap-command=$trace_unwrap" ], $no_env,
	qr/error: option --key-wrap-command specified more than once/);
refused('no_key_wrap_with_value', [ '-y', '--no-key-wrap=yes' ], $no_env,
	qr/error: option --no-key-wrap does not take a value\n.*hint: Try "initdb --help"/);

# --- a data directory whose name holds spaces, quotes and $ -------------------------------------
{
	# A node for the port, socket directory and log; its data directory is
	# beside its own.
	my $node = FeDatakey::Cluster->new('odd_name');
	my $pgdata = $node->basedir . "/my data 'dir' \"with\" \$HOME and `x`";
	command_ok(
		[
			'initdb', '-A', 'trust', '-N', '--no-instructions', '-D', $pgdata,
			'-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap"
		],
		'initdb -y into a directory named with spaces, quotes, $ and `');
	ok(-s "$pgdata/pg_encryption/key.bin", 'the key file is there');
	is(length unwrap_key_bytes($pgdata, $unwrap), 64, 'and unwraps with %p relative to it');

	# pg_ctl puts -D in double quotes in a shell command: this path goes
	# through PGDATA instead (upstream's start cannot take it).
	$node->configure_server($pgdata);
	local $ENV{PGDATA} = $pgdata;
	command_ok([ 'pg_ctl', '-w', '-l', $node->logfile, 'start' ], 'the server starts from that directory');
	like(slurp_file($node->logfile), qr/LOG:  data encryption key loaded and verified/, 'it loaded the key');
	is($node->safe_psql('postgres', 'select 42'), '42', 'and answers');
	command_ok([ 'pg_ctl', '-w', '-m', 'fast', 'stop' ], 'and stops');

}

done_testing();
