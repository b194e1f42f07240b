# FeDatakey::KeyCommands - the key commands of the tests: the README's
# passphrase recipe with openssl (enc -aes-128-cbc -pbkdf2, the passphrase
# read from a 0600 file), a variant of it that is hard to quote, a wrong
# passphrase that openssl rejects for sure, and the key unwrapped by hand.
#
#   use FeDatakey::KeyCommands;
#   my $pass = passphrase_file($dir, 'pass', 'secret');
#   initdb ... '--key-wrap-command=' . openssl_wrap($pass),
#              '--key-unwrap-command=' . openssl_unwrap($pass);
#   my ($wrap, $unwrap) = key_commands('name', undef, $dir);
package FeDatakey::KeyCommands;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use FeDatakey::Files qw(write_file);
use FeDatakey::Run qw(run_command);

our @EXPORT = qw(passphrase_file rejected_passphrase openssl_wrap openssl_unwrap key_commands
  unwrap_key_bytes);

# A passphrase file (mode 0600) holding $secret on one line.
sub passphrase_file
{
	my ($dir, $name, $secret) = @_;
	return write_file("$dir/$name", "$secret\n", 0600);
}

# The README's passphrase recipe with openssl, the passphrase read from a
# file. $pass must not need quoting in a shell (a temporary directory's
# path does not).
sub openssl_wrap
{
	my ($pass, $cipher) = @_;
	$cipher //= 'aes-128-cbc';
	return "openssl enc -e -$cipher -pbkdf2 -pass file:$pass -out \"%p\"";
}

sub openssl_unwrap
{
	my ($pass, $cipher) = @_;
	$cipher //= 'aes-128-cbc';
	return "openssl enc -d -$cipher -pbkdf2 -pass file:$pass -in \"%p\"";
}

# A passphrase file $dir/$name.pass (holding $passphrase, default
# "secret-$name") and the recipe's wrap/unwrap pair for it.  The unwrap
# command deliberately holds spaces, single and double quotes and a literal
# %, which must reach the server intact through any shell quoting.
sub key_commands
{
	my ($name, $passphrase, $dir) = @_;
	croak 'key_commands: no directory given' unless defined $dir;
	my $file = passphrase_file($dir, "$name.pass", $passphrase // "secret-$name");
	return (openssl_wrap($file), "printf '%%s' \"x\" >/dev/null && " . openssl_unwrap($file));
}

# A wrong passphrase that openssl rejects outright for $keyfile: openssl
# enc -d with a wrong passphrase finds valid CBC padding about once in 256
# salts and then prints garbage instead of failing ("bad decrypt"). Tests
# that expect openssl's own error use this, so that they do not depend on
# chance; garbage from an unwrap command has tests of its own. Returns the
# passphrase, and writes it to $dir/$name when a name is given.
sub rejected_passphrase
{
	my ($keyfile, $dir, $name, $cipher) = @_;
	$cipher //= 'aes-128-cbc';
	for my $i (1 .. 64)
	{
		my $candidate = "not the passphrase $i";
		my ($rc) = run_command([ 'openssl', 'enc', '-d', "-$cipher", '-pbkdf2', '-pass', 'stdin',
			'-in', $keyfile ], stdin => "$candidate\n");
		next if $rc == 0;
		return defined $name ? passphrase_file($dir, $name, $candidate) : $candidate;
	}
	croak "openssl accepted 64 wrong passphrases for $keyfile";
}

# Runs the unwrap command of an encrypted cluster by hand (through the same
# shell the library uses, in the data directory, %p = pg_encryption/key.bin)
# and returns the plaintext key bytes.  opts: key_file, and run_command's.
sub unwrap_key_bytes
{
	my ($pgdata, $unwrap, %opts) = @_;
	my $keyfile = delete $opts{key_file} // 'pg_encryption/key.bin';
	if ($unwrap eq '-')
	{
		open my $fh, '<:raw', "$pgdata/$keyfile" or croak "could not read $pgdata/$keyfile: $!";
		local $/;
		return scalar(<$fh>) // '';
	}
	(my $cmd = $unwrap) =~ s/%(p|%)/$1 eq 'p' ? $keyfile : '%'/ge;
	my $shell = -x '/bin/bash' ? [ '/bin/bash', '-o', 'pipefail', '-c', $cmd ] : [ '/bin/sh', '-c', $cmd ];
	my ($rc, $out, $err) = run_command($shell, cwd => $pgdata, %opts);
	croak "unwrap command failed (status $rc): $err" if $rc != 0;
	return $out;
}

1;
