# Helpers for pg_datakey's end-to-end tests: encrypted clusters, passphrase
# commands, running pg_datakey and the server.
package FeDatakey::Datakey;

use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use File::Spec;
use IPC::Run qw(run);

our @EXPORT = qw(new_workdir new_cluster passphrase_file openssl_wrap openssl_unwrap
  run_datakey datakey_json start_server stop_server
  psql_value read_file_bytes);

sub new_workdir {
	return tempdir('pg_datakey_e2e_XXXXXX', TMPDIR => 1, CLEANUP => 1);
}

sub read_file_bytes {
	my ($path) = @_;
	open my $fh, '<:raw', $path or return undef;
	local $/;
	return scalar <$fh>;
}

sub passphrase_file {
	my ($dir, $name, $secret) = @_;
	my $path = "$dir/$name";
	open my $fh, '>', $path or die "could not write $path: $!";
	print $fh "$secret\n";
	close $fh;
	chmod 0600, $path;
	return $path;
}

sub openssl_wrap {
	my ($pass) = @_;
	return "openssl enc -aes-256-cbc -pbkdf2 -pass file:$pass -out \"%p\"";
}

sub openssl_unwrap {
	my ($pass) = @_;
	return "openssl enc -d -aes-256-cbc -pbkdf2 -pass file:$pass -in \"%p\"";
}

# A new encrypted cluster, made by the patched initdb -y.
sub new_cluster {
	my ($dir, $wrap, $unwrap) = @_;
	my $pgdata = "$dir/data";
	my ($out, $err);
	run [ 'initdb', '-A', 'trust', '-N', '-y', "--key-wrap-command=$wrap",
		"--key-unwrap-command=$unwrap", '-D', $pgdata ], '>', \$out, '2>', \$err
	  or die "initdb -y failed: $err";
	return $pgdata;
}

# (exit status, stdout, stderr); %opts: env => {...}, timeout => seconds.
sub run_datakey {
	my ($args, %opts) = @_;
	my ($out, $err) = ('', '');
	local %ENV = %ENV;
	delete $ENV{PGDATAKEYUNWRAPCMD};
	delete $ENV{FE_DATAKEY_CRASH_AT};
	while (my ($k, $v) = each %{ $opts{env} // {} })
	{
		if (defined $v) { $ENV{$k} = $v } else { delete $ENV{$k} }
	}
	run [ 'pg_datakey', @$args ], '<', \'', '>', \$out, '2>', \$err,
	  IPC::Run::timeout($opts{timeout} // 60);
	my $status = $? & 127 ? -($? & 127) : $? >> 8;
	return ($status, $out, $err);
}

sub datakey_json {
	my ($pgdata) = @_;
	require JSON::PP;
	my ($rc, $out, $err) = run_datakey([ 'status', '-D', $pgdata, '--json' ]);
	die "status --json failed ($rc): $err" if $rc != 0;
	return JSON::PP::decode_json($out);
}

sub start_server {
	my ($pgdata, $dir, %opts) = @_;
	my ($out, $err);
	my $sock = "$dir/sock";
	mkdir $sock;
	my $o = "-k $sock -c listen_addresses=''";
	$o .= " $opts{options}" if $opts{options};
	return run [ 'pg_ctl', '-w', '-t', '60', '-D', $pgdata, '-l', "$dir/server.log",
		'-o', $o, 'start' ], '>', \$out, '2>', \$err;
}

sub stop_server {
	my ($pgdata) = @_;
	my ($out, $err);
	return run [ 'pg_ctl', '-w', '-D', $pgdata, '-m', 'fast', 'stop' ], '>', \$out, '2>',
	  \$err;
}

sub psql_value {
	my ($dir, $sql) = @_;
	my ($out, $err);
	run [ 'psql', '-X', '-A', '-t', '-h', "$dir/sock", '-d', 'postgres', '-c', $sql ], '>',
	  \$out, '2>', \$err
	  or return undef;
	chomp $out;
	return $out;
}

1;
