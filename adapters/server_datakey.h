/*
 * server_datakey.h
 *	  What the PostgreSQL server calls at start-up to load the data
 *	  encryption key of an encrypted cluster.
 *
 * The postmaster (and a single-user backend) calls server_datakey_load_key()
 * once, after it has locked the data directory and before it accepts any
 * connection. The key stays in locked memory, out of core dumps, until
 * server_datakey_unload_key() (at process exit), for a cipher layer to use.
 * Children forked from the postmaster see those pages zeroed
 * (MADV_WIPEONFORK): no backend holds the key. After the load the variable
 * PGDATAKEYUNWRAPCMD is gone from the process's environment, so that no
 * child (a backend, archive_command, COPY ... PROGRAM) inherits it.
 *
 * The adapter never prints and never exits: the server turns an error into
 * ereport(FATAL) with the error's message, detail and hint.
 */
#ifndef SERVER_DATAKEY_H
#define SERVER_DATAKEY_H

#include "fe_datakey/fe_datakey.h"

#ifdef __cplusplus
extern "C"
{
#endif

/* Where the unwrap command comes from (server_datakey_command_origin). */
#define SERVER_DATAKEY_COMMAND_NONE 0
#define SERVER_DATAKEY_COMMAND_SETTING 1	/* data_encryption_key_unwrap_command */
#define SERVER_DATAKEY_COMMAND_ENVIRONMENT 2	/* PGDATAKEYUNWRAPCMD */

/*
 * Which value server_datakey_load_key runs: the setting when it is not empty,
 * else the environment variable PGDATAKEYUNWRAPCMD when it is set (so that
 * pg_upgrade and pg_rewind can hand a command to the servers they start
 * without putting it on a command line).
 */
extern int	server_datakey_command_origin(const char *setting);

/*
 * For the cluster in datadir, whose pg_control records encryption_version
 * (0: not encrypted) and key_bits: checks that the key files agree with
 * pg_control (key.bin or key.check in an unencrypted cluster is an error,
 * and so is a missing or unreadable one in an encrypted cluster: the
 * library's key-state check, fe_datakey_store_check_state). When it is encrypted, runs the unwrap
 * command (see server_datakey_command_origin; setting is the value of
 * data_encryption_key_unwrap_command) in the data directory with the given
 * timeout (0: none), verifies the key against pg_encryption/key.check and
 * keeps it. While the command runs, interrupted (may be NULL) is called
 * about every 100 ms; when it returns non-zero the command is killed and the
 * call fails with FE_DATAKEY_E_INTERRUPTED.
 *
 * Afterwards, whatever the outcome, PGDATAKEYUNWRAPCMD is removed from the
 * environment (see server_datakey_forget_command_variable).
 *
 * Returns 1 on success (key loaded, or nothing to load), 0 with an error.
 * When a failed command may have wanted to prompt and the process has no
 * controlling terminal, the error's hint says so.
 */
extern int	server_datakey_load_key(const char *datadir,
									unsigned encryption_version,
									unsigned key_bits, const char *setting,
									int timeout_seconds,
									fe_datakey_interrupt_fn interrupted,
									fe_datakey_error **err);

/*
 * Removes PGDATAKEYUNWRAPCMD from the environment and overwrites its value,
 * both in environ and in the environment block the process started with
 * (/proc/PID/environ), which PostgreSQL's process title code leaves behind.
 */
extern void server_datakey_forget_command_variable(void);

/* Wipes and frees the loaded key, if any (the server calls it at exit). */
extern void server_datakey_unload_key(void);

/*
 * 1 when this process has loaded a key; 0 in a child forked after the load,
 * whose copy of the key's memory is zeroed.
 */
extern int	server_datakey_key_loaded(void);

/* The key this process loaded, or NULL (and 0 bits) when none is. */
extern const fe_datakey_key *server_datakey_key(void);
extern int	server_datakey_key_bits(void);

#ifdef __cplusplus
}
#endif

#endif							/* SERVER_DATAKEY_H */
