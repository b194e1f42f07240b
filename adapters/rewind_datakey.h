/*
 * rewind_datakey.h
 *	  What pg_rewind calls to handle the data encryption key of the clusters
 *	  it synchronizes.
 *
 * pg_rewind extracts --key-unwrap-command before its own getopt_long, learns
 * the source's key state (from its pg_control, and its key check from a data
 * directory or fetched over its connection), then runs the pre-flight check
 * on the target before it changes anything.  Whether a cluster is encrypted
 * is what its pg_control says, never whether a key file exists.  Every
 * function returns 0 / NULL with an error on failure; nothing here prints or
 * exits.
 */
#ifndef REWIND_DATAKEY_H
#define REWIND_DATAKEY_H

#include <stddef.h>

#include "fe_datakey/fe_datakey.h"

#ifdef __cplusplus
extern "C"
{
#endif

typedef struct rewind_datakey rewind_datakey;

/*
 * Removes --key-unwrap-command from argv and reads PGDATAKEYUNWRAPCMD.
 * shortopts and longopts are pg_rewind's own, as given to getopt_long.
 */
extern rewind_datakey *rewind_datakey_init(int *argc, char **argv,
										   const char *shortopts,
										   const struct option *longopts,
										   fe_datakey_error **err);
extern void rewind_datakey_free(rewind_datakey *ext);

/*
 * Records the key state of a source data directory (--source-pgdata): its
 * pg_control's data_encryption_version and data_encryption_key_length, which
 * its key files must agree with, and its key check.
 */
extern int	rewind_datakey_source_directory(rewind_datakey *ext,
											const char *datadir,
											unsigned version, unsigned bits,
											fe_datakey_error **err);

/*
 * Records the key state of a source server (--source-server): the fields of
 * its pg_control and the contents of its key check file (NULL when the file
 * is missing).
 */
extern int	rewind_datakey_source_server(rewind_datakey *ext, unsigned version,
										 unsigned bits, const char *check,
										 size_t check_len,
										 fe_datakey_error **err);

/*
 * The pre-flight check, run before anything is modified, with the target's
 * pg_control fields: both clusters' fields equal, the target's key files
 * agreeing with them; for encrypted clusters, the unwrap command must be
 * given, must unwrap and verify the target's key, and that key must be the
 * one the source's key check describes; then the command is handed over
 * (rewind_datakey_server_options).
 */
extern int	rewind_datakey_check_target(rewind_datakey *ext,
										const char *target_datadir,
										unsigned version, unsigned bits,
										fe_datakey_error **err);

/*
 * For the server runs on the target (single-user crash recovery): after a
 * check of encrypted clusters, the check has put the unwrap command into
 * this process's environment as PGDATAKEYUNWRAPCMD, which those servers
 * inherit, and this returns the text to add to their shell command line so
 * that they use it, " -c data_encryption_key_unwrap_command=" (an empty
 * setting makes the server take the variable); "" when the target is not
 * encrypted. The command itself never goes on a command line. Never NULL
 * (err is kept for the patch's call).
 */
extern const char *rewind_datakey_server_options(rewind_datakey *ext,
												 fe_datakey_error **err);

/*
 * 1 when a path relative to the data directory belongs to the key store,
 * which pg_rewind neither copies nor removes.
 */
extern int	rewind_datakey_is_key_store_path(const char *path);

#ifdef __cplusplus
}
#endif

#endif							/* REWIND_DATAKEY_H */
