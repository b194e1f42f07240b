/*
 * rewind_ext.c
 *	  Data encryption key handling for pg_rewind.
 */
#include "rewind_ext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rewind_ext {
    fe_datakey_options* opts;
    int source_known;
    int source_encrypted;
    int source_check_found;
    fe_datakey_check source_check;
    char* server_option; /* NULL when there is nothing to pass */
    int server_option_built;
};

static fe_datakey_error* oom(void) {
    return fe_datakey_error_new(FE_DATAKEY_E_INTERNAL, "out of memory", NULL, NULL);
}

rewind_ext* rewind_ext_init(int* argc, char** argv, const char* shortopts,
                            const struct option* longopts, fe_datakey_error** err) {
    rewind_ext* ext = calloc(1, sizeof(rewind_ext));

    if (ext == NULL) {
        *err = oom();
        return NULL;
    }
    ext->opts =
        fe_datakey_options_extract(argc, argv, FE_DATAKEY_OPT_UNWRAP, shortopts, longopts, err);
    if (ext->opts == NULL) {
        rewind_ext_free(ext);
        return NULL;
    }
    return ext;
}

void rewind_ext_free(rewind_ext* ext) {
    if (ext == NULL)
        return;
    fe_datakey_options_free(ext->opts);
    fe_datakey_free(ext->server_option);
    free(ext);
}

const char* rewind_ext_help(void) {
    /* Descriptions start where pg_rewind's own do. */
    static char* text;

    if (text == NULL)
        text = fe_datakey_options_help_at(FE_DATAKEY_OPT_UNWRAP, 33);
    return text != NULL ? text : fe_datakey_options_help(FE_DATAKEY_OPT_UNWRAP);
}

int rewind_ext_source_directory(rewind_ext* ext, const char* datadir, fe_datakey_error** err) {
    ext->source_known = 1;
    ext->source_encrypted = fe_datakey_is_encrypted(datadir);
    ext->source_check_found = 0;
    if (!ext->source_encrypted)
        return 1;
    if (!fe_datakey_store_read_check(datadir, &ext->source_check, err))
        return 0;
    ext->source_check_found = 1;
    return 1;
}

int rewind_ext_source_server(rewind_ext* ext, int encrypted, const char* check, size_t check_len,
                             fe_datakey_error** err) {
    ext->source_known = 1;
    ext->source_encrypted = encrypted;
    ext->source_check_found = 0;
    if (!encrypted)
        return 1;
    if (check == NULL) {
        *err =
            fe_datakey_error_new(FE_DATAKEY_E_CHECK_INVALID, "source server has no key check file",
                                 "The source cluster has \"" FE_DATAKEY_KEY_FILE
                                 "\" but no \"" FE_DATAKEY_CHECK_FILE "\".",
                                 NULL);
        return 0;
    }
    if (!fe_datakey_check_parse(check, check_len, &ext->source_check, err))
        return 0;
    ext->source_check_found = 1;
    return 1;
}

static int state_mismatch(int target_encrypted, fe_datakey_error** err) {
    *err = fe_datakey_error_new(
        FE_DATAKEY_E_NOT_ENCRYPTED, "source and target clusters differ in data encryption",
        target_encrypted ? "The target cluster is encrypted, the source cluster is not encrypted."
                         : "The target cluster is not encrypted, the source cluster is encrypted.",
        "Both clusters must be encrypted with the same data encryption key, or neither.");
    return 0;
}

int rewind_ext_check_target(rewind_ext* ext, const char* target_datadir, fe_datakey_error** err) {
    int target_encrypted = fe_datakey_is_encrypted(target_datadir);
    fe_datakey_check target_check;
    fe_datakey_key* key;
    char* command;

    if (!ext->source_known) {
        *err = fe_datakey_error_new(FE_DATAKEY_E_INTERNAL,
                                    "key state of the source cluster is unknown", NULL, NULL);
        return 0;
    }

    if (target_encrypted != ext->source_encrypted)
        return state_mismatch(target_encrypted, err);
    if (!target_encrypted)
        return 1;

    /* Cheap comparison first: it needs no secret. */
    if (!fe_datakey_store_read_check(target_datadir, &target_check, err))
        return 0;
    if (!fe_datakey_check_equal(&target_check, &ext->source_check)) {
        char detail[256];

        snprintf(detail, sizeof(detail),
                 "Both clusters are encrypted, the target with a %d-bit key whose check value is "
                 "%s, the source with a %d-bit key whose check value is %s.",
                 target_check.bits, target_check.kcv, ext->source_check.bits,
                 ext->source_check.kcv);
        *err = fe_datakey_error_new(
            FE_DATAKEY_E_KEY_MISMATCH,
            "source and target clusters use different data encryption keys", detail,
            "pg_rewind can only synchronize clusters that share one data encryption key, such as a "
            "primary and a standby made from it with pg_basebackup.");
        return 0;
    }

    /* The unwrap command is required, and must produce the target's key. */
    command = fe_datakey_options_command(ext->opts, FE_DATAKEY_ROLE_UNWRAP, err);
    if (command == NULL)
        return 0;
    key = fe_datakey_store_load(target_datadir, command, 0, err);
    if (key == NULL) {
        /* Say which cluster failed; keep the library's detail and hint. */
        fe_datakey_free(command);
        fe_datakey_error_prefix(*err,
                                "could not load the data encryption key of the target cluster: ");
        return 0;
    }
    fe_datakey_key_check_of(key, &target_check);
    fe_datakey_key_free(key);
    if (!fe_datakey_check_equal(&target_check, &ext->source_check)) {
        fe_datakey_free(command);
        *err = fe_datakey_error_new(FE_DATAKEY_E_KEY_MISMATCH,
                                    "source and target clusters use different data encryption keys",
                                    "The key unwrapped from the target cluster does not match the "
                                    "source cluster's key check.",
                                    NULL);
        return 0;
    }

    fe_datakey_free(command);
    return 1;
}

const char* rewind_ext_server_option(rewind_ext* ext, const char* target_datadir,
                                     fe_datakey_error** err) {
    char* command;

    if (ext->server_option_built)
        return ext->server_option != NULL ? ext->server_option : "";
    if (!fe_datakey_is_encrypted(target_datadir) ||
        !fe_datakey_options_is_set(ext->opts, FE_DATAKEY_ROLE_UNWRAP)) {
        ext->server_option_built = 1;
        return "";
    }

    command = fe_datakey_options_command(ext->opts, FE_DATAKEY_ROLE_UNWRAP, err);
    if (command == NULL)
        return NULL;
    /* pg_rewind runs the server through the shell: one quoted word */
    ext->server_option = fe_datakey_server_option(command);
    fe_datakey_free(command);
    if (ext->server_option == NULL) {
        *err = oom();
        return NULL;
    }
    ext->server_option_built = 1;
    return ext->server_option;
}

char* rewind_ext_redact(const rewind_ext* ext, const char* text) {
    return fe_datakey_redact_server_option(text,
                                           ext->server_option != NULL ? ext->server_option : "");
}

int rewind_ext_is_key_store_path(const char* path) {
    size_t len = strlen(FE_DATAKEY_KEY_DIR);

    return strncmp(path, FE_DATAKEY_KEY_DIR, len) == 0 && (path[len] == '\0' || path[len] == '/');
}
