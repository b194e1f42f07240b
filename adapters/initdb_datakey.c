/*
 * initdb_datakey.c
 *	  initdb's adapter to libfe_datakey: the -y family of options, the new
 *	  (or copied) data encryption key, and the key store at the end of initdb.
 */
#include "initdb_datakey.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUR_OPTIONS \
	(FE_DATAKEY_OPT_WRAP | FE_DATAKEY_OPT_UNWRAP | FE_DATAKEY_OPT_NO_KEY_WRAP)

/* Commands prompt for a passphrase: no time limit. */
#define NO_TIMEOUT 0

static fe_datakey_options *options;
static int	encryption_requested;	/* -y or --data-encryption */
static int	requested_bits;		/* 0: not given as a number */
static const char *copy_key_from;

static int	validated;
static char *wrap_command;
static char *unwrap_command;
static fe_datakey_key *key;
static int	key_copied;

int
initdb_datakey_parse_args(int *argc, char **argv, const char *shortopts,
						  const struct option *longopts,
						  fe_datakey_error **err)
{
	fe_datakey_options_free(options);
	options = fe_datakey_options_extract(argc, argv, OUR_OPTIONS, shortopts,
										 longopts, err);
	return options != NULL;
}

int
initdb_datakey_set_data_encryption(const char *bits, fe_datakey_error **err)
{
	encryption_requested = 1;
	if (bits == NULL)
		return 1;
	if (strcmp(bits, "128") == 0)
		requested_bits = 128;
	else if (strcmp(bits, "256") == 0)
		requested_bits = 256;
	else
	{
		char		detail[200];

		snprintf(detail, sizeof(detail),
				 "The value \"%.100s\" is not a key length this cluster can use.",
				 bits);
		return fe_datakey_error_set(err, FE_DATAKEY_E_USAGE,
									"argument of --data-encryption must be 128 or 256",
									detail,
									"Give -y or --data-encryption for a 128-bit key, --data-encryption=256 for a "
									"256-bit key.");
	}
	return 1;
}

void
initdb_datakey_set_copy_key_from(const char *path)
{
	copy_key_from = path;
}

/*
 * The file given with --copy-key-from must have a path that can stand in a
 * key command, and exist as a regular file (a symbolic link to one is
 * followed): checked with the other options, before initdb says or creates
 * anything.
 */
static int
check_copy_path(const char *path, fe_datakey_error **err)
{
	if (!fe_datakey_check_key_file(path, err))
	{
		fe_datakey_error_prefix(*err,
								"cannot use the file given with --copy-key-from: ");
		return 0;
	}
	return 1;
}

int
initdb_datakey_validate(fe_datakey_error **err)
{
	if (!encryption_requested)
	{
		const char *message = NULL;

		if (options != NULL && fe_datakey_options_on_command_line(options))
			message =
				"options --key-wrap-command, --key-unwrap-command and --no-key-wrap can only "
				"be used with data encryption (-y)";
		else if (copy_key_from != NULL)
			message =
				"option --copy-key-from can only be used with data encryption (-y)";
		if (message != NULL)
			return fe_datakey_error_set(err, FE_DATAKEY_E_USAGE, message, NULL,
										"Add -y (or --data-encryption) to create an encrypted cluster, or leave "
										"these options out.");
		/* The variables alone are ignored: they may be set for every tool. */
		return 1;
	}

	if (options == NULL)
		return fe_datakey_error_set(err, FE_DATAKEY_E_INTERNAL,
									"key options were not parsed", NULL, NULL);
	fe_datakey_free(wrap_command);
	fe_datakey_free(unwrap_command);
	wrap_command = unwrap_command = NULL;
	if (!fe_datakey_options_command_pair(options, &wrap_command,
										 &unwrap_command, err))
		return 0;
	if (copy_key_from != NULL && !check_copy_path(copy_key_from, err))
		return 0;
	validated = 1;
	return 1;
}

int
initdb_datakey_enabled(void)
{
	return validated;
}

int
initdb_datakey_load_key(fe_datakey_error **err)
{
	if (!validated)
		return 1;
	if (key != NULL)
		return 1;

	if (copy_key_from == NULL)
	{
		key =
			fe_datakey_key_generate(requested_bits != 0 ? requested_bits : 128,
									err);
		key_copied = 0;
		return key != NULL;
	}

	{
		fe_datakey_check check;
		int			check_found = 0;
		fe_datakey_key *copied;

		copied =
			fe_datakey_load_key_file(copy_key_from, unwrap_command, NO_TIMEOUT,
									 &check, &check_found, err);
		if (copied == NULL)
			return 0;
		if (requested_bits != 0 &&
			fe_datakey_key_bits(copied) != requested_bits)
		{
			char		detail[300];

			snprintf(detail, sizeof(detail),
					 "The key in \"%.200s\" is a %d-bit key, but --data-encryption=%d was given.",
					 copy_key_from, fe_datakey_key_bits(copied),
					 requested_bits);
			fe_datakey_key_free(copied);
			return fe_datakey_error_set(err, FE_DATAKEY_E_USAGE,
										"key length of the copied key does not match --data-encryption",
										detail,
										"Leave out the key length to take the copied key's, or give the matching one.");
		}
		key = copied;
		key_copied = 1;
	}
	return 1;
}

int
initdb_datakey_key_bits(void)
{
	return key != NULL ? fe_datakey_key_bits(key) : 0;
}

int
initdb_datakey_key_copied(void)
{
	return key_copied;
}

int
initdb_datakey_plaintext_mode(void)
{
	return wrap_command != NULL && strcmp(wrap_command, "-") == 0;
}

int
initdb_datakey_finish(const char *pg_data, fe_datakey_error **err)
{
	char	   *conf_path;
	size_t		len;
	int			ok;

	if (!validated)
		return 1;
	if (key == NULL)
		return fe_datakey_error_set(err, FE_DATAKEY_E_INTERNAL,
									"no data encryption key was prepared",
									NULL, NULL);

	if (!fe_datakey_store_create(pg_data, wrap_command, key, NO_TIMEOUT, err))
		return 0;

	len = strlen(pg_data) + sizeof("/postgresql.conf");
	conf_path = malloc(len);
	if (conf_path == NULL)
		return fe_datakey_error_set(err, FE_DATAKEY_E_INTERNAL,
									"out of memory", NULL, NULL);
	snprintf(conf_path, len, "%s/postgresql.conf", pg_data);
	ok = fe_datakey_conf_set_unwrap_command(conf_path, unwrap_command, err);
	free(conf_path);
	return ok;
}

void
initdb_datakey_cleanup(void)
{
	fe_datakey_key_free(key);
	key = NULL;
	fe_datakey_options_free(options);
	options = NULL;
	fe_datakey_free(wrap_command);
	fe_datakey_free(unwrap_command);
	wrap_command = unwrap_command = NULL;
	validated = 0;
}
