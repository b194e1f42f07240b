/*
 * rewind_ext.h
 *	  What pg_rewind calls to handle the data encryption key of the clusters
 *	  it synchronizes.
 *
 * pg_rewind extracts --key-unwrap-command before its own getopt_long, learns
 * the source's key state (from a data directory or from key files fetched
 * over its connection), then runs the pre-flight check on the target before
 * it changes anything.  Every function returns 0 / NULL with an error on
 * failure; nothing here prints or exits.
 */
#ifndef REWIND_EXT_H
#define REWIND_EXT_H

#include <stddef.h>

#include "fe_datakey/fe_datakey.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rewind_ext rewind_ext;

/*
 * Removes --key-unwrap-command from argv and reads PGDATAKEYUNWRAPCMD.
 * shortopts and longopts are pg_rewind's own, as given to getopt_long.
 */
extern rewind_ext* rewind_ext_init(int* argc, char** argv, const char* shortopts,
                                   const struct option* longopts, fe_datakey_error** err);
extern void rewind_ext_free(rewind_ext* ext);

/* --help lines for the options this adapter adds. */
extern const char* rewind_ext_help(void);

/* Records the key state of a source data directory (--source-pgdata). */
extern int rewind_ext_source_directory(rewind_ext* ext, const char* datadir,
                                       fe_datakey_error** err);

/*
 * Records the key state of a source server (--source-server): whether its
 * pg_encryption/key.bin exists and the contents of its key check file (NULL
 * when the file is missing).
 */
extern int rewind_ext_source_server(rewind_ext* ext, int encrypted, const char* check,
                                    size_t check_len, fe_datakey_error** err);

/*
 * The pre-flight check, run before anything is modified: both clusters
 * encrypted or neither; for encrypted clusters, the unwrap command must be
 * given, must unwrap and verify the target's key, and that key must be the
 * one the source's key check describes.
 */
extern int rewind_ext_check_target(rewind_ext* ext, const char* target_datadir,
                                   fe_datakey_error** err);

/*
 * Text to append to a shell command line that runs the target's server
 * (" -c 'data_encryption_key_unwrap_command=...'"), or "" when the target is
 * not encrypted or no command was given (the target's configuration then
 * supplies it).  Valid until rewind_ext_free.
 */
extern const char* rewind_ext_server_option(rewind_ext* ext, const char* target_datadir,
                                            fe_datakey_error** err);

/*
 * A copy of text with the server option replaced by a placeholder, for
 * messages that show a command line.  Free with fe_datakey_free.
 */
extern char* rewind_ext_redact(const rewind_ext* ext, const char* text);

/*
 * 1 when a path relative to the data directory belongs to the key store,
 * which pg_rewind neither copies nor removes.
 */
extern int rewind_ext_is_key_store_path(const char* path);

#ifdef __cplusplus
}
#endif

#endif /* REWIND_EXT_H */
