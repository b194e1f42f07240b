# Versions: newest
# (the frontends' part of the library is the same on every version; the server's part runs on every version in 170)
#
# The fault matrix, key files of the wrong type, for the frontends: initdb -y
# (a wrap command that leaves a FIFO, a directory, a socket or a symbolic
# link at %p), initdb --copy-key-from (the key file named, and the key.check
# beside it), and the pre-flight checks of pg_rewind and pg_upgrade (the
# key files of both clusters).  Each is refused at once, naming the file
# and its type, before the unwrap command runs (it would touch a marker),
# with nothing created or changed; with the file put back the same run
# works.  --copy-key-from follows a symbolic link given as its FILE, as
# PostgreSQL follows the paths its settings name; inside pg_encryption/ a
# link is refused (pg_basebackup and pg_rewind do not carry one).
use strict;
use warnings;
use FeDatakey::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use FeDatakey::Files;
use FeDatakey::KeyCommands;
use FeDatakey::Run ();    # by its full name: upstream's Utils exports a run_command too
use FeDatakey::BoundedRun;
use FeDatakey::Faults;
use FeDatakey::OddFiles;
use PostgreSQL::Test::Utils qw(slurp_file);
use POSIX ();
use Test::More;

my $C = 'FeDatakey::Cluster';
chdir $C->base_dir;    # pg_upgrade writes its files into the working directory

# Seconds within which a refusal counts as "at once" (on a busy machine).
my $bound = 10;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $pass = passphrase_file($dir, 'pass', 'frontend file types');
my $marker = "$dir/unwrap-ran";
my $wrap = openssl_wrap($pass);
my $unwrap = "touch $marker && " . openssl_unwrap($pass);

# name(type) -> the detail that names the type, as a pattern.
sub detail_re { my ($type) = @_; return qr/\Q${\ odd_detail($type)}\E/ }

my $n = 0;
sub fresh_node { return $C->new('n' . $n++) }

# --- initdb -y: the wrap command leaves something else than a file at %p ----------------------------
{
	my $elsewhere = "$dir/wrapped-elsewhere";
	my %leaves = (
		FIFO => 'cat >/dev/null && mkfifo "%p"',
		directory => 'cat >/dev/null && mkdir "%p"',
		socket => q{cat >/dev/null && perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Local => $ARGV[0], Listen => 1) or die "$!\n"' "%p"},
		symlink => "openssl enc -e -aes-128-cbc -pbkdf2 -pass file:$pass -out $elsewhere && ln -s $elsewhere \"%p\"",
	);
	for my $type (odd_types())
	{
		my $fault = "key.bin: $type";
		my $node = fresh_node();
		my $r = run_bounded(
			$node->initdb_command('-y', "--key-wrap-command=$leaves{$type}", "--key-unwrap-command=$unwrap"),
			timeout => 30);
		note sprintf('initdb -y, %s: exit %d after %.2f s', $fault, $r->{rc}, $r->{secs});
		cell_ok('initdb -y', $fault, $r->{rc} != 0 && !$r->{timed_out}, 'initdb fails') or diag $r->{err};
		cell_ok('initdb -y', $fault, $r->{secs} < $bound, sprintf('at once: %.1f s', $r->{secs}));
		cell_like('initdb -y', $fault, $r->{err}, qr/"[^"\n]*pg_encryption\/key\.bin[^"\n]*"[^\n]*regular file|regular file[^\n]*"[^"\n]*pg_encryption\/key\.bin/,
			'the error names the key file and says it is not a regular file');
		cell_like('initdb -y', $fault, $r->{err}, detail_re($type), 'and its type');
		cell_ok('initdb -y', $fault, !-e $node->data_dir, 'no data directory is left');
		unlink $elsewhere;
	}
	my $node = fresh_node();
	my $r = run_bounded($node->initdb_command('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap"),
		timeout => 120);
	is($r->{rc}, 0, 'initdb -y with a wrap command that writes %p works') or diag $r->{err};
}

# --- initdb --copy-key-from ---------------------------------------------------------------------------
{
	my $source = fresh_node();
	ok($source->initdb('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap"),
		'a cluster to copy the key from');
	my $src = $source->data_dir;
	my $check = slurp_file("$src/pg_encryption/key.check");

	# copy() -> (the node, the result): initdb --copy-key-from the source's key.bin.
	my $copy = sub {
		my $node = fresh_node();
		unlink $marker;
		my $r = run_bounded(
			$node->initdb_command('-y', "--key-wrap-command=$wrap", "--key-unwrap-command=$unwrap",
				"--copy-key-from=$src/pg_encryption/key.bin"),
			timeout => 120);
		return ($node, $r);
	};
	my $row = 'initdb --copy-key-from';

	for my $file ('key.bin', 'key.check')
	{
		for my $type (odd_types())
		{
			my $fault = "$file: $type";
			my $odd = make_odd("$src/pg_encryption/$file", $type, $dir);
			my $before = dir_state("$src/pg_encryption");
			my ($node, $r) = $copy->();
			note sprintf('%s, %s: exit %d after %.2f s', $row, $fault, $r->{rc}, $r->{secs});
			if ($file eq 'key.bin' && $type eq 'symlink')
			{
				# The file named by --copy-key-from: a link to a regular file is followed.
				cell_is($row, $fault, $r->{rc}, 0, 'a symbolic link named as FILE is followed') or diag $r->{err};
				cell_ok($row, $fault, -e $marker, 'the unwrap command ran on it');
				cell_is($row, $fault, -e $node->data_dir ? slurp_file($node->data_dir . '/pg_encryption/key.check') : '',
					$check, 'the new cluster has the key of the source');
				cell_is($row, $fault, dir_state("$src/pg_encryption"), $before, 'the source is unchanged');
				# Followed, it must still end at a regular file.
				my $target = readlink("$src/pg_encryption/key.bin");
				unlink $target;
				POSIX::mkfifo($target, 0600) or die "mkfifo: $!";
				($node, $r) = $copy->();
				note sprintf('%s, %s to a FIFO: exit %d after %.2f s', $row, $fault, $r->{rc}, $r->{secs});
				cell_ok($row, $fault, $r->{rc} != 0 && $r->{secs} < $bound && !-e $node->data_dir,
					sprintf('a link to a FIFO is refused at once (%.1f s), nothing created', $r->{secs}));
				cell_like($row, $fault, $r->{err}, detail_re('FIFO'), 'naming the type it ends at');
				cell_ok($row, $fault, !-e $marker, 'the unwrap command did not run on it');
				unlink $target;
				put_back($odd);
				next;
			}
			cell_ok($row, $fault, $r->{rc} != 0 && !$r->{timed_out}, 'initdb fails') or diag $r->{err};
			cell_ok($row, $fault, $r->{secs} < $bound, sprintf('at once: %.1f s', $r->{secs}));
			cell_like($row, $fault, $r->{err}, qr/"[^"\n]*pg_encryption\/\Q$file\E" is not a regular file/,
				'the error names the file');
			cell_like($row, $fault, $r->{err}, detail_re($type), 'and its type');
			cell_ok($row, $fault, !-e $marker, 'the unwrap command did not run');
			cell_ok($row, $fault, !-e $node->data_dir, 'no data directory is left');
			cell_is($row, $fault, dir_state("$src/pg_encryption"), $before, 'the source is unchanged');
			put_back($odd);
			($node, $r) = $copy->();
			cell_is($row, $fault, $r->{rc}, 0, 'with the file put back the copy works') or diag $r->{err};
		}
	}
}

# The pg_encryption/ states of some nodes, to prove a refused run changed none.
sub states { return join('', map { $_->name . ":\n" . dir_state($_->data_dir . '/pg_encryption') } @_) }

# fault_cells($row, \@cmd, \%where, @nodes): for each file and type, the
# file of each node that %where names for it (file => [[node, its role:
# "target", "old"...]]) made odd, the command refused at once, naming the
# cluster, the file and its type, without running the unwrap command, the
# nodes unchanged; then with the file put back it succeeds.
sub fault_cells
{
	my ($row, $cmd, $where, @nodes) = @_;
	for my $file ('key.bin', 'key.check')
	{
		for my $in (@{ $where->{$file} })
		{
			my ($node, $role) = @$in;
			for my $type (odd_types())
			{
				my $fault = "$file: $type";
				my $odd = make_odd($node->data_dir . "/pg_encryption/$file", $type, $dir);
				my $before = states(@nodes);
				unlink $marker;
				my $r = run_bounded($cmd, timeout => 60);
				my $said = $r->{out} . $r->{err};
				$in = $node->name;
				note sprintf('%s, %s of %s: exit %d after %.2f s', $row, $fault, $in, $r->{rc}, $r->{secs});
				cell_ok($row, $fault, $r->{rc} != 0 && !$r->{timed_out}, "$in: refused") or diag $said;
				cell_ok($row, $fault, $r->{secs} < $bound, sprintf('%s: at once: %.1f s', $in, $r->{secs}));
				cell_like($row, $fault, $said,
					qr/\b$role cluster: [^\n]*"(?:\Q${\ $node->data_dir}\E\/)?pg_encryption\/\Q$file\E" is not a regular file/,
					"$in: the error names the $role cluster and the file");
				cell_like($row, $fault, $said, detail_re($type), "$in: and its type");
				cell_ok($row, $fault, !-e $marker, "$in: the unwrap command did not run");
				cell_is($row, $fault, states(@nodes), $before, "$in: nothing changed");
				put_back($odd);
				$r = run_bounded($cmd, timeout => 120);
				cell_is($row, $fault, $r->{rc}, 0, "$in: with the file put back it succeeds")
				  or diag $r->{out} . $r->{err};
			}
		}
	}
}

# --- pg_rewind: the target's key is unwrapped, the source's key check read --------------------------
{
	my $target = $C->new('target');
	$target->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	$target->start;
	$target->stop;
	# The same cluster, cleanly shut down, as the source: the pre-flight
	# check passes and pg_rewind finds no rewind required.
	my $source = $C->new('source_copy');
	PostgreSQL::Test::RecursiveCopy::copypath($target->data_dir, $source->data_dir);
	chmod 0700, $source->data_dir;
	my @cmd = ('pg_rewind', '-D', $target->data_dir, '--source-pgdata=' . $source->data_dir, '-n',
		"--key-unwrap-command=$unwrap");
	unlink $marker;
	my $r = run_bounded(\@cmd, timeout => 120);
	is($r->{rc}, 0, 'pg_rewind -n between the two passes its checks') or diag $r->{out} . $r->{err};
	ok(-e $marker, 'the unwrap command ran (it touches the marker)');
	fault_cells('pg_rewind', \@cmd, { 'key.bin' => [ [ $target, 'target' ] ], 'key.check' => [ [ $target, 'target' ], [ $source, 'source' ] ] },
		$target, $source);
}

# --- pg_upgrade --check: the old cluster's key is unwrapped, both key checks read ---------------------
{
	my $old = $C->new('old');
	$old->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap);
	my $new = $C->new('new');
	$new->init(encrypted => 1, wrap => $wrap, unwrap => $unwrap,
		copy_key_from => $old->data_dir . '/pg_encryption/key.bin');
	my $cmd = pg_upgrade_command($old, $new, '--check', "--key-unwrap-command=$unwrap");
	unlink $marker;
	my $r = run_bounded($cmd, timeout => 120);
	is($r->{rc}, 0, 'pg_upgrade --check passes') or diag $r->{out} . $r->{err};
	ok(-e $marker, 'the unwrap command ran (it touches the marker)');
	fault_cells('pg_upgrade', $cmd, { 'key.bin' => [ [ $old, 'old' ] ], 'key.check' => [ [ $old, 'old' ], [ $new, 'new' ] ] }, $old, $new);
}

done_testing();
