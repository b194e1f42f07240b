/*
 * upgrade_ext.h
 *	  What pg_upgrade calls to handle the data encryption keys of the old and
 *	  new clusters.
 *
 * pg_upgrade extracts --key-unwrap-command before its own getopt_long, runs
 * the key check among its consistency checks before it starts or changes
 * either cluster, and adds the server option to every pg_ctl start.  Every
 * function returns 0 / NULL with an error on failure; nothing here prints
 * or exits.
 */
#ifndef UPGRADE_EXT_H
#define UPGRADE_EXT_H

#include "fe_datakey/fe_datakey.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct upgrade_ext upgrade_ext;

/*
 * Removes --key-unwrap-command from argv and reads PGDATAKEYUNWRAPCMD.
 * shortopts and longopts are pg_upgrade's own, as given to getopt_long.
 */
extern upgrade_ext* upgrade_ext_init(int* argc, char** argv, const char* shortopts,
                                     const struct option* longopts, fe_datakey_error** err);
extern void upgrade_ext_free(upgrade_ext* ext);

/* --help lines for the options this adapter adds. */
extern const char* upgrade_ext_help(void);

/*
 * The key check: both clusters encrypted or neither; the same data key;
 * each key unwraps and verifies with the command its server will use (the
 * option or variable when given, else the cluster's configured
 * data_encryption_key_unwrap_command).  *encrypted is set to whether the
 * clusters are encrypted.  The conf directories hold postgresql.conf.
 */
extern int upgrade_ext_check_clusters(upgrade_ext* ext, const char* old_pgdata,
                                      const char* old_confdir, const char* new_pgdata,
                                      const char* new_confdir, int* encrypted,
                                      fe_datakey_error** err);

/*
 * Text to add inside the double-quoted value of pg_ctl's -o for a server
 * start: " -c 'data_encryption_key_unwrap_command=...'" escaped for the
 * double quotes, or "" when no command was given or the clusters are not
 * encrypted.  Valid until upgrade_ext_free.
 */
extern const char* upgrade_ext_server_option(const upgrade_ext* ext);

/*
 * A copy of text with the server option replaced by a placeholder, for logs
 * and messages that show a command line.  Free with fe_datakey_free.
 */
extern char* upgrade_ext_redact(const upgrade_ext* ext, const char* text);

#ifdef __cplusplus
}
#endif

#endif /* UPGRADE_EXT_H */
