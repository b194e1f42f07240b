/*
 * upgrade_datakey.h
 *	  What pg_upgrade calls to handle the data encryption keys of the old and
 *	  new clusters.
 *
 * pg_upgrade extracts --key-unwrap-command before its own getopt_long, runs
 * the key check among its consistency checks, with both clusters' pg_control
 * fields, before it starts or changes either cluster, and adds the server
 * options to every pg_ctl start.  Every function returns 0 / NULL with an
 * error on failure; nothing here prints or exits.
 */
#ifndef UPGRADE_DATAKEY_H
#define UPGRADE_DATAKEY_H

#include "fe_datakey/fe_datakey.h"

#ifdef __cplusplus
extern "C"
{
#endif

typedef struct upgrade_datakey upgrade_datakey;

/*
 * Removes --key-unwrap-command from argv and reads PGDATAKEYUNWRAPCMD.
 * shortopts and longopts are pg_upgrade's own, as given to getopt_long.
 */
extern upgrade_datakey *upgrade_datakey_init(int *argc, char **argv,
											 const char *shortopts,
											 const struct option *longopts,
											 fe_datakey_error **err);
extern void upgrade_datakey_free(upgrade_datakey *ext);

/* One cluster as pg_upgrade knows it. */
typedef struct upgrade_datakey_cluster
{
	const char *pgdata;			/* data directory */
	const char *confdir;		/* directory of postgresql.conf (pg_upgrade
								 * -d/-D) */
	unsigned	version;		/* pg_control's data_encryption_version (0:
								 * none) */
	unsigned	bits;			/* pg_control's data_encryption_key_length */
} upgrade_datakey_cluster;

/*
 * The key check: the two clusters' pg_control fields equal, and each
 * cluster's key files agreeing with its own; for encrypted clusters, the same
 * data key, and each key unwraps and verifies with the command its server
 * will use (the option or variable when given, else the cluster's configured
 * data_encryption_key_unwrap_command). When a command was given, it is put
 * into this process's environment as PGDATAKEYUNWRAPCMD for the servers
 * pg_upgrade starts (see upgrade_datakey_server_options).
 */
extern int	upgrade_datakey_check_clusters(upgrade_datakey *ext,
										   const upgrade_datakey_cluster *old_cluster,
										   const upgrade_datakey_cluster *new_cluster,
										   fe_datakey_error **err);

/*
 * Text to add to pg_ctl -o for a server start: after a successful check of
 * encrypted clusters with a given command, " -c
 * data_encryption_key_unwrap_command=" (an empty setting makes the server
 * take PGDATAKEYUNWRAPCMD from its environment); else "". Never the command.
 */
extern const char *upgrade_datakey_server_options(const upgrade_datakey *ext);

#ifdef __cplusplus
}
#endif

#endif							/* UPGRADE_DATAKEY_H */
