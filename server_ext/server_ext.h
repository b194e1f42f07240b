/*
 * server_ext.h
 *	  What the PostgreSQL server calls at start-up to load the data
 *	  encryption key of an encrypted cluster.
 *
 * The postmaster (and a single-user backend) calls server_ext_load_key()
 * once, after it has locked the data directory and before it accepts any
 * connection. The key stays in locked memory for the life of the process,
 * for a cipher layer to use. Children forked from the postmaster get a copy
 * of the pages but not the lock (mlock() is not inherited across fork()),
 * so a child's copy can be swapped out; the pages stay out of core dumps
 * (MADV_DONTDUMP is inherited).
 *
 * The adapter never prints and never exits: the server turns an error into
 * ereport(FATAL) with the error's message, detail and hint.
 */
#ifndef SERVER_EXT_H
#define SERVER_EXT_H

#include "fe_datakey/fe_datakey.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the unwrap command comes from (server_ext_command_origin). */
#define SERVER_EXT_COMMAND_NONE 0
#define SERVER_EXT_COMMAND_SETTING 1     /* data_encryption_key_unwrap_command */
#define SERVER_EXT_COMMAND_ENVIRONMENT 2 /* PGDATAKEYUNWRAPCMD */

/*
 * Which value server_ext_load_key runs: the setting when it is not empty,
 * else the environment variable PGDATAKEYUNWRAPCMD when it is set (so that
 * pg_upgrade and pg_rewind can hand a command to the servers they start
 * without putting it on a command line).
 */
extern int server_ext_command_origin(const char* setting);

/*
 * For the cluster in datadir, whose pg_control records encryption_version
 * (0: not encrypted) and key_bits: checks that the key files agree with
 * pg_control (a key file in an unencrypted cluster is an error, and so is a
 * missing one in an encrypted cluster). When it is encrypted, runs the unwrap
 * command (see server_ext_command_origin; setting is the value of
 * data_encryption_key_unwrap_command) in the data directory with the given
 * timeout (0: none), verifies the key against pg_encryption/key.check and
 * keeps it. While the command runs, interrupted (may be NULL) is called
 * about every 100 ms; when it returns non-zero the command is killed and the
 * call fails with FE_DATAKEY_E_INTERRUPTED.
 *
 * Returns 1 on success (key loaded, or nothing to load), 0 with an error.
 * When a failed command may have wanted to prompt and the process has no
 * controlling terminal, the error's hint says so.
 */
extern int server_ext_load_key(const char* datadir, unsigned encryption_version, unsigned key_bits,
                               const char* setting, int timeout_seconds,
                               fe_datakey_interrupt_fn interrupted, fe_datakey_error** err);

/* 1 when a key has been loaded. */
extern int server_ext_key_loaded(void);

/* The loaded key, or NULL (and 0 bits) when none is. */
extern const fe_datakey_key* server_ext_key(void);
extern int server_ext_key_bits(void);

#ifdef __cplusplus
}
#endif

#endif /* SERVER_EXT_H */
