/*
 * initdb_datakey.h
 *	  What initdb.c calls to create a cluster whose data encryption key is
 *	  protected by the administrator's wrap and unwrap commands.
 *
 * The adapter keeps initdb's state about the key (one cluster per process).
 * Order of the calls in initdb's main():
 *
 * - initdb_datakey_parse_args(): before getopt_long(), takes our options out.
 * - initdb_datakey_set_data_encryption(): for -y / --data-encryption[=N].
 * - initdb_datakey_set_copy_key_from(): for --copy-key-from=FILE.
 * - initdb_datakey_validate(): after the option loop, every check that needs no
 *   command run; nothing is created yet.
 * - initdb_datakey_load_key(): before the data directory is created, generates
 *   the key or unwraps the one to copy.
 * - initdb_datakey_finish(): after the bootstrap and post-bootstrap backends,
 *   before the final sync, wraps the key into pg_encryption/ and writes the
 *   unwrap command into postgresql.conf.
 *
 * Each fallible call returns 0 with an error (message, detail, hint) for
 * initdb to print; the adapter itself never prints and never exits.
 */
#ifndef INITDB_DATAKEY_H
#define INITDB_DATAKEY_H

#include "fe_datakey/fe_datakey.h"

#ifdef __cplusplus
extern "C"
{
#endif

struct option;					/* <getopt.h> */

/*
 * Removes --key-wrap-command, --key-unwrap-command and --no-key-wrap from
 * argv and reads PGDATAKEYWRAPCMD / PGDATAKEYUNWRAPCMD. shortopts and
 * longopts are initdb's own, as it passes them to getopt_long.
 */
extern int	initdb_datakey_parse_args(int *argc, char **argv,
									  const char *shortopts,
									  const struct option *longopts,
									  fe_datakey_error **err);

/* -y (bits NULL: the default, 128) or --data-encryption[=128|256]. */
extern int	initdb_datakey_set_data_encryption(const char *bits,
											   fe_datakey_error **err);

/* --copy-key-from=FILE: the wrapped key file of another cluster. */
extern void initdb_datakey_set_copy_key_from(const char *path);

/*
 * Checks the options: key options need -y; with -y both commands must be
 * given (options or variables), valid, and both "-" or both commands; the
 * --copy-key-from path must exist and be safe in a shell command. Runs no
 * command and creates nothing.
 */
extern int	initdb_datakey_validate(fe_datakey_error **err);

/* 1 when the new cluster is encrypted (-y given and validated). */
extern int	initdb_datakey_enabled(void);

/*
 * Generates the new key in locked memory, or unwraps the --copy-key-from
 * file with the unwrap command (verifying it against the key check beside it
 * and against --data-encryption=N). Never runs the unwrap command for a new
 * key. Does nothing when encryption is off.
 */
extern int	initdb_datakey_load_key(fe_datakey_error **err);

/* After initdb_datakey_load_key(): the key length in bits. */
extern int	initdb_datakey_key_bits(void);

/* 1 when the key was copied from another cluster. */
extern int	initdb_datakey_key_copied(void);

/* 1 when the key is stored without wrapping ("-"). */
extern int	initdb_datakey_plaintext_mode(void);

/*
 * Creates pg_encryption/ in pg_data (modes from the data directory's own:
 * group access under -g), runs the wrap command once to write key.bin,
 * writes key.check, and sets data_encryption_key_unwrap_command in
 * pg_data/postgresql.conf. Does nothing when encryption is off.
 */
extern int	initdb_datakey_finish(const char *pg_data, fe_datakey_error **err);

/* Wipes and frees the key. */
extern void initdb_datakey_cleanup(void);

#ifdef __cplusplus
}
#endif

#endif							/* INITDB_DATAKEY_H */
