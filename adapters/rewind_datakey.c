/*
 * rewind_datakey.c
 *	  Data encryption key handling for pg_rewind: the library's comparison of
 *	  two clusters (fe_datakey_pair), the target first.
 */
#include "rewind_datakey.h"

#include <string.h>

static const fe_datakey_pair_names names = {
	"source and target clusters",
	"target",
	"source",
	"Both clusters must be encrypted with the same data encryption key, or neither.",
	"Both clusters must be encrypted with the same data encryption key, or neither.",
	"pg_rewind can only synchronize clusters that share one data encryption key, such as a "
	"primary and a standby made from it with pg_basebackup.",
};

/* The handle is the library's pair of clusters. */
static fe_datakey_pair *
pair_of(rewind_datakey *ext)
{
	return (fe_datakey_pair *) ext;
}

rewind_datakey *
rewind_datakey_init(int *argc, char **argv, const char *shortopts,
					const struct option *longopts, fe_datakey_error **err)
{
	return (rewind_datakey *) fe_datakey_pair_new(&names, argc, argv,
												  shortopts, longopts, err);
}

void
rewind_datakey_free(rewind_datakey *ext)
{
	fe_datakey_pair_free(pair_of(ext));
}

int
rewind_datakey_source_directory(rewind_datakey *ext, const char *datadir,
								unsigned version, unsigned bits,
								fe_datakey_error **err)
{
	return fe_datakey_pair_set_directory(pair_of(ext), FE_DATAKEY_PAIR_SECOND,
										 datadir, NULL, version, bits, 0, err);
}

int
rewind_datakey_source_server(rewind_datakey *ext, unsigned version,
							 unsigned bits, const char *check,
							 size_t check_len, fe_datakey_error **err)
{
	return fe_datakey_pair_set_remote(pair_of(ext), FE_DATAKEY_PAIR_SECOND,
									  version, bits, check, check_len, err);
}

int
rewind_datakey_check_target(rewind_datakey *ext, const char *target_datadir,
							unsigned version, unsigned bits,
							fe_datakey_error **err)
{
	/* The target's key is unwrapped with the command given, never another. */
	return fe_datakey_pair_set_directory(pair_of(ext), FE_DATAKEY_PAIR_FIRST,
										 target_datadir, NULL, version, bits,
										 1, err) &&
		fe_datakey_pair_compare(pair_of(ext), err);
}

const char *
rewind_datakey_server_options(rewind_datakey *ext, fe_datakey_error **err)
{
	(void) err;
	return fe_datakey_pair_server_options(pair_of(ext));
}

int
rewind_datakey_is_key_store_path(const char *path)
{
	size_t		len = strlen(FE_DATAKEY_KEY_DIR);

	return strncmp(path, FE_DATAKEY_KEY_DIR, len) == 0 &&
		(path[len] == '\0' || path[len] == '/');
}
