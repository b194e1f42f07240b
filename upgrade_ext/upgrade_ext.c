/*
 * upgrade_ext.c
 *	  Data encryption key handling for pg_upgrade.
 */
#include "upgrade_ext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct upgrade_ext {
    fe_datakey_options* opts;
    char* server_option;
};

static fe_datakey_error* oom(void) {
    return fe_datakey_error_new(FE_DATAKEY_E_INTERNAL, "out of memory", NULL, NULL);
}

upgrade_ext* upgrade_ext_init(int* argc, char** argv, const char* shortopts,
                              const struct option* longopts, fe_datakey_error** err) {
    upgrade_ext* ext = calloc(1, sizeof(upgrade_ext));

    if (ext == NULL || (ext->server_option = calloc(1, 1)) == NULL) {
        free(ext);
        *err = oom();
        return NULL;
    }
    ext->opts =
        fe_datakey_options_extract(argc, argv, FE_DATAKEY_OPT_UNWRAP, shortopts, longopts, err);
    if (ext->opts == NULL) {
        upgrade_ext_free(ext);
        return NULL;
    }
    return ext;
}

void upgrade_ext_free(upgrade_ext* ext) {
    if (ext == NULL)
        return;
    fe_datakey_options_free(ext->opts);
    free(ext->server_option);
    free(ext);
}

const char* upgrade_ext_help(void) {
    /* Descriptions start where pg_upgrade's own do. */
    static char* text;

    if (text == NULL)
        text = fe_datakey_options_help_at(FE_DATAKEY_OPT_UNWRAP, 32);
    return text != NULL ? text : fe_datakey_options_help(FE_DATAKEY_OPT_UNWRAP);
}

static char* join_path(const char* dir, const char* file) {
    char* s = malloc(strlen(dir) + strlen(file) + 2);

    if (s != NULL)
        sprintf(s, "%s/%s", dir, file);
    return s;
}

/*
 * The command the server of this cluster will run: the one given to
 * pg_upgrade, else postgresql.auto.conf's, else postgresql.conf's setting.
 * Include files are not followed.
 */
static char* command_for(const upgrade_ext* ext, const char* confdir, const char* pgdata,
                         fe_datakey_error** err) {
    static const char* const files[] = {"postgresql.auto.conf", "postgresql.conf"};
    int i;

    if (fe_datakey_options_is_set(ext->opts, FE_DATAKEY_ROLE_UNWRAP))
        return fe_datakey_options_command(ext->opts, FE_DATAKEY_ROLE_UNWRAP, err);

    for (i = 0; i < 2; i++) {
        char* path = join_path(i == 0 ? pgdata : confdir, files[i]);
        char* command;

        if (path == NULL) {
            *err = oom();
            return NULL;
        }
        command = fe_datakey_conf_get_unwrap_command(path, err);
        free(path);
        if (command != NULL)
            return command;
        if (*err != NULL)
            return NULL;
    }

    /* Unset everywhere: the library's error names option and variable. */
    return fe_datakey_options_command(ext->opts, FE_DATAKEY_ROLE_UNWRAP, err);
}

static int load_check(const upgrade_ext* ext, const char* which, const char* pgdata,
                      const char* confdir, fe_datakey_check* out, fe_datakey_error** err) {
    char* command;
    fe_datakey_key* key;

    command = command_for(ext, confdir, pgdata, err);
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

static char* escape_for_double_quotes(const char* s) {
    char* out = malloc(2 * strlen(s) + 1);
    char* o = out;

    if (out == NULL)
        return NULL;
    for (; *s; s++) {
        if (*s == '"' || *s == '\\' || *s == '$' || *s == '`')
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

static int build_server_option(upgrade_ext* ext, fe_datakey_error** err) {
    char* command;
    char* option;
    char* escaped;

    command = fe_datakey_options_command(ext->opts, FE_DATAKEY_ROLE_UNWRAP, err);
    if (command == NULL)
        return 0;
    /* One level of quoting for the shell pg_ctl runs postgres with ... */
    option = fe_datakey_server_option(command);
    fe_datakey_free(command);
    if (option == NULL) {
        *err = oom();
        return 0;
    }
    /* ... and one for the double quotes of pg_ctl -o "..." */
    escaped = escape_for_double_quotes(option);
    fe_datakey_free(option);
    if (escaped == NULL) {
        *err = oom();
        return 0;
    }
    free(ext->server_option);
    ext->server_option = escaped;
    return 1;
}

int upgrade_ext_check_clusters(upgrade_ext* ext, const char* old_pgdata, const char* old_confdir,
                               const char* new_pgdata, const char* new_confdir, int* encrypted,
                               fe_datakey_error** err) {
    int old_enc = fe_datakey_is_encrypted(old_pgdata);
    int new_enc = fe_datakey_is_encrypted(new_pgdata);
    fe_datakey_check old_check;
    fe_datakey_check new_check;

    *encrypted = 0;
    if (old_enc != new_enc) {
        *err = fe_datakey_error_new(
            FE_DATAKEY_E_NOT_ENCRYPTED, "old and new clusters differ in data encryption",
            old_enc ? "The old cluster is encrypted, the new cluster is not encrypted."
                    : "The old cluster is not encrypted, the new cluster is encrypted.",
            old_enc ? "Create the new cluster with \"initdb -y "
                      "--copy-key-from=OLD_DATADIR/" FE_DATAKEY_KEY_FILE "\"."
                    : "Create the new cluster without data encryption.");
        return 0;
    }
    if (!old_enc)
        return 1;
    *encrypted = 1;

    /* Compare the key checks first: that needs no secret. */
    if (!fe_datakey_store_read_check(old_pgdata, &old_check, err) ||
        !fe_datakey_store_read_check(new_pgdata, &new_check, err))
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

    if (!load_check(ext, "old", old_pgdata, old_confdir, &old_check, err) ||
        !load_check(ext, "new", new_pgdata, new_confdir, &new_check, err))
        return 0;
    if (!fe_datakey_check_equal(&old_check, &new_check)) {
        *err = fe_datakey_error_new(FE_DATAKEY_E_KEY_MISMATCH,
                                    "old and new clusters use different data encryption keys", NULL,
                                    NULL);
        return 0;
    }

    if (fe_datakey_options_is_set(ext->opts, FE_DATAKEY_ROLE_UNWRAP))
        return build_server_option(ext, err);
    return 1;
}

const char* upgrade_ext_server_option(const upgrade_ext* ext) {
    return ext->server_option;
}

char* upgrade_ext_redact(const upgrade_ext* ext, const char* text) {
    return fe_datakey_redact_server_option(text, ext->server_option);
}
