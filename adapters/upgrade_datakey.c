/*
 * upgrade_datakey.c
 *	  Data encryption key handling for pg_upgrade.
 */
#include "upgrade_datakey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The frontends' variable; the server takes it when its setting is empty. */
#define UNWRAP_VARIABLE "PGDATAKEYUNWRAPCMD"

/* Added to the servers' options when they are to take the variable. */
#define SERVER_OPTIONS " -c " FE_DATAKEY_UNWRAP_SETTING "="

struct upgrade_datakey {
    fe_datakey_options* opts;
    const char* server_options;
};

static fe_datakey_error* oom(void) {
    return fe_datakey_error_new(FE_DATAKEY_E_INTERNAL, "out of memory", NULL, NULL);
}

upgrade_datakey* upgrade_datakey_init(int* argc, char** argv, const char* shortopts,
                              const struct option* longopts, fe_datakey_error** err) {
    upgrade_datakey* ext = calloc(1, sizeof(upgrade_datakey));

    if (ext == NULL) {
        *err = oom();
        return NULL;
    }
    ext->server_options = "";
    ext->opts =
        fe_datakey_options_extract(argc, argv, FE_DATAKEY_OPT_UNWRAP, shortopts, longopts, err);
    if (ext->opts == NULL) {
        upgrade_datakey_free(ext);
        return NULL;
    }
    return ext;
}

void upgrade_datakey_free(upgrade_datakey* ext) {
    if (ext == NULL)
        return;
    fe_datakey_options_free(ext->opts);
    free(ext);
}

const char* upgrade_datakey_help(void) {
    /* Descriptions start where pg_upgrade's own do. */
    static char* text;

    if (text == NULL)
        text = fe_datakey_options_help_at(FE_DATAKEY_OPT_UNWRAP, 32);
    return text != NULL ? text : fe_datakey_options_help(FE_DATAKEY_OPT_UNWRAP);
}

/*
 * The command the server of this cluster will run: the one given to
 * pg_upgrade, else the cluster's configured one (the library's lookup).
 */
static char* command_for(const upgrade_datakey* ext, const char* pgdata, const char* confdir,
                         fe_datakey_error** err) {
    char* conf_file;
    char* command;

    if (fe_datakey_options_is_set(ext->opts, FE_DATAKEY_ROLE_UNWRAP))
        return fe_datakey_options_command(ext->opts, FE_DATAKEY_ROLE_UNWRAP, err);

    conf_file = malloc(strlen(confdir) + sizeof("/postgresql.conf"));
    if (conf_file == NULL) {
        *err = oom();
        return NULL;
    }
    sprintf(conf_file, "%s/postgresql.conf", confdir);
    command = fe_datakey_configured_unwrap_command(pgdata, conf_file, err);
    free(conf_file);
    if (command != NULL || *err != NULL)
        return command;

    /* Unset everywhere: the library's error names option and variable. */
    return fe_datakey_options_command(ext->opts, FE_DATAKEY_ROLE_UNWRAP, err);
}

static int load_check(const upgrade_datakey* ext, const char* which, const char* pgdata,
                      const char* confdir, fe_datakey_check* out, fe_datakey_error** err) {
    char* command;
    fe_datakey_key* key;

    command = command_for(ext, pgdata, confdir, err);
    if (command == NULL)
        return 0;
    key = fe_datakey_store_load(pgdata, command, 0, err);
    fe_datakey_free(command);
    if (key == NULL) {
        /* Say which cluster failed; keep the library's detail and hint. */
        char prefix[64];

        snprintf(prefix, sizeof(prefix),
                 "could not load the data encryption key of the %s cluster: ", which);
        fe_datakey_error_prefix(*err, prefix);
        return 0;
    }
    fe_datakey_key_check_of(key, out);
    fe_datakey_key_free(key);
    return 1;
}

/* When a command was given: into the environment the servers inherit. */
static int prepare_servers(upgrade_datakey* ext, fe_datakey_error** err) {
    char* command;
    int failed;

    if (!fe_datakey_options_is_set(ext->opts, FE_DATAKEY_ROLE_UNWRAP))
        return 1;
    command = fe_datakey_options_command(ext->opts, FE_DATAKEY_ROLE_UNWRAP, err);
    if (command == NULL)
        return 0;
    failed = setenv(UNWRAP_VARIABLE, command, 1) != 0;
    fe_datakey_free(command);
    if (failed) {
        *err = oom();
        return 0;
    }
    ext->server_options = SERVER_OPTIONS;
    return 1;
}

int upgrade_datakey_check_clusters(upgrade_datakey* ext, const upgrade_datakey_cluster* old_cluster,
                               const upgrade_datakey_cluster* new_cluster, fe_datakey_error** err) {
    fe_datakey_check old_check;
    fe_datakey_check new_check;

    if (old_cluster->version != new_cluster->version || old_cluster->bits != new_cluster->bits) {
        char detail[256];
        int old_enc = old_cluster->version != 0;

        if (old_enc != (new_cluster->version != 0))
            snprintf(detail, sizeof(detail), "%s",
                     old_enc ? "The old cluster is encrypted, the new cluster is not encrypted, as "
                               "their control files record."
                             : "The old cluster is not encrypted, the new cluster is encrypted, as "
                               "their control files record.");
        else
            snprintf(detail, sizeof(detail),
                     "The old cluster's pg_control says data encryption version %u with a %u-bit "
                     "key, the new cluster's version %u with a %u-bit key.",
                     old_cluster->version, old_cluster->bits, new_cluster->version,
                     new_cluster->bits);
        *err = fe_datakey_error_new(
            FE_DATAKEY_E_NOT_ENCRYPTED, "old and new clusters differ in data encryption", detail,
            old_enc ? "Create the new cluster with \"initdb -y "
                      "--copy-key-from=OLD_DATADIR/" FE_DATAKEY_KEY_FILE "\"."
                    : "Create the new cluster without data encryption.");
        return 0;
    }
    if (!fe_datakey_store_check_state(old_cluster->pgdata, old_cluster->version, old_cluster->bits,
                                      err)) {
        fe_datakey_error_prefix(*err, "old cluster: ");
        return 0;
    }
    if (!fe_datakey_store_check_state(new_cluster->pgdata, new_cluster->version, new_cluster->bits,
                                      err)) {
        fe_datakey_error_prefix(*err, "new cluster: ");
        return 0;
    }
    if (old_cluster->version == 0)
        return 1;

    /* Compare the key checks first: that needs no secret. */
    if (!fe_datakey_store_read_check(old_cluster->pgdata, &old_check, err) ||
        !fe_datakey_store_read_check(new_cluster->pgdata, &new_check, err))
        return 0;
    if (!fe_datakey_check_equal(&old_check, &new_check)) {
        char detail[256];

        snprintf(
            detail, sizeof(detail),
            "The old cluster's key check value is %s (%d bits), the new cluster's is %s (%d bits).",
            old_check.kcv, old_check.bits, new_check.kcv, new_check.bits);
        *err =
            fe_datakey_error_new(FE_DATAKEY_E_KEY_MISMATCH,
                                 "old and new clusters use different data encryption keys", detail,
                                 "Create the new cluster with \"initdb -y "
                                 "--copy-key-from=OLD_DATADIR/" FE_DATAKEY_KEY_FILE "\".");
        return 0;
    }

    if (!load_check(ext, "old", old_cluster->pgdata, old_cluster->confdir, &old_check, err) ||
        !load_check(ext, "new", new_cluster->pgdata, new_cluster->confdir, &new_check, err))
        return 0;
    if (!fe_datakey_check_equal(&old_check, &new_check)) {
        *err = fe_datakey_error_new(FE_DATAKEY_E_KEY_MISMATCH,
                                    "old and new clusters use different data encryption keys", NULL,
                                    NULL);
        return 0;
    }

    return prepare_servers(ext, err);
}

const char* upgrade_datakey_server_options(const upgrade_datakey* ext) {
    return ext->server_options;
}
