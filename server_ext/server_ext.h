/*
 * server_ext.h
 *	  What the PostgreSQL server calls at start-up to load the data
 *	  encryption key of an encrypted cluster.
 *
 * The postmaster (and a single-user backend) calls server_ext_load_key()
 * once, after it has locked the data directory and before it accepts any
 * connection. The key stays in locked memory for the life of the process
 * (children inherit it through fork), for a cipher layer to use.
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

/*
 * For the cluster in datadir: when it is encrypted (pg_encryption/key.bin
 * exists), runs unwrap_command (the value of
 * data_encryption_key_unwrap_command; NULL or "" when it is not set) in the
 * data directory, verifies the key against pg_encryption/key.check and keeps
 * it. When the cluster is not encrypted, does nothing at all.
 *
 * Returns 1 on success (key loaded, or nothing to load), 0 with an error.
 * When a failed command may have wanted to prompt and the process has no
 * controlling terminal, the error's hint says so.
 */
extern int server_ext_load_key(const char* datadir, const char* unwrap_command,
                               fe_datakey_error** err);

/* 1 when a key has been loaded. */
extern int server_ext_key_loaded(void);

/* The loaded key, or NULL (and 0 bits) when none is. */
extern const fe_datakey_key* server_ext_key(void);
extern int server_ext_key_bits(void);

#ifdef __cplusplus
}
#endif

#endif /* SERVER_EXT_H */
