/*
 * upgrade_datakey.c
 *	  Data encryption key handling for pg_upgrade: the library's comparison
 *	  of two clusters (fe_datakey_pair), the old one first.
 */
#include "upgrade_datakey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_KEY_HINT                                                                          \
	"Create the new cluster with \"initdb -y --copy-key-from=OLD_DATADIR/" FE_DATAKEY_KEY_FILE \
	"\"."

static const fe_datakey_pair_names names = {
	"old and new clusters",
	"old",
	"new",
	COPY_KEY_HINT,
	"Create the new cluster without data encryption.",
	COPY_KEY_HINT,
};

/* The handle is the library's pair of clusters. */
static fe_datakey_pair *
pair_of(upgrade_datakey *ext)
{
	return (fe_datakey_pair *) ext;
}

upgrade_datakey *
upgrade_datakey_init(int *argc, char **argv, const char *shortopts,
					 const struct option *longopts, fe_datakey_error **err)
{
	return (upgrade_datakey *) fe_datakey_pair_new(&names, argc, argv,
												   shortopts, longopts, err);
}

void
upgrade_datakey_free(upgrade_datakey *ext)
{
	fe_datakey_pair_free(pair_of(ext));
}

/* Each key is unwrapped with the command its server will use. */
static int
set_cluster(upgrade_datakey *ext, int which,
			const upgrade_datakey_cluster *cluster, fe_datakey_error **err)
{
	char	   *conf_file =
		malloc(strlen(cluster->confdir) + sizeof("/postgresql.conf"));
	int			ok;

	if (conf_file == NULL)
		return fe_datakey_error_set(err, FE_DATAKEY_E_INTERNAL,
									"out of memory", NULL, NULL);
	sprintf(conf_file, "%s/postgresql.conf", cluster->confdir);
	ok = fe_datakey_pair_set_directory(pair_of(ext), which, cluster->pgdata,
									   conf_file, cluster->version,
									   cluster->bits, 1, err);
	free(conf_file);
	return ok;
}

int
upgrade_datakey_check_clusters(upgrade_datakey *ext,
							   const upgrade_datakey_cluster *old_cluster,
							   const upgrade_datakey_cluster *new_cluster,
							   fe_datakey_error **err)
{
	return set_cluster(ext, FE_DATAKEY_PAIR_FIRST, old_cluster, err) &&
		set_cluster(ext, FE_DATAKEY_PAIR_SECOND, new_cluster, err) &&
		fe_datakey_pair_compare(pair_of(ext), err);
}

const char *
upgrade_datakey_server_options(const upgrade_datakey *ext)
{
	return fe_datakey_pair_server_options((const fe_datakey_pair *) ext);
}
