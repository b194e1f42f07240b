/*
 * rewind_datakey.c
 *	  Data encryption key handling for pg_rewind.
 */
#include "rewind_datakey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The frontends' variable; the server takes it when its setting is empty. */
#define UNWRAP_VARIABLE "PGDATAKEYUNWRAPCMD"

struct rewind_datakey {
    fe_datakey_options* opts;
    int source_known;
    unsigned source_version;
    unsigned source_bits;
    fe_datakey_check source_check;
    int target_checked;
    unsigned target_version;
};

static fe_datakey_error* oom(void) {
    return fe_datakey_error_new(FE_DATAKEY_E_INTERNAL, "out of memory", NULL, NULL);
}

rewind_datakey* rewind_datakey_init(int* argc, char** argv, const char* shortopts,
                            const struct option* longopts, fe_datakey_error** err) {
    rewind_datakey* ext = calloc(1, sizeof(rewind_datakey));

    if (ext == NULL) {
        *err = oom();
        return NULL;
    }
    ext->opts =
        fe_datakey_options_extract(argc, argv, FE_DATAKEY_OPT_UNWRAP, shortopts, longopts, err);
    if (ext->opts == NULL) {
        rewind_datakey_free(ext);
        return NULL;
    }
    return ext;
}

void rewind_datakey_free(rewind_datakey* ext) {
    if (ext == NULL)
        return;
    fe_datakey_options_free(ext->opts);
    free(ext);
}

const char* rewind_datakey_help(void) {
    /* Descriptions start where pg_rewind's own do. */
    static char* text;

    if (text == NULL)
        text = fe_datakey_options_help_at(FE_DATAKEY_OPT_UNWRAP, 33);
    return text != NULL ? text : fe_datakey_options_help(FE_DATAKEY_OPT_UNWRAP);
}

int rewind_datakey_source_directory(rewind_datakey* ext, const char* datadir, unsigned version,
                                unsigned bits, fe_datakey_error** err) {
    if (!fe_datakey_store_check_state(datadir, version, bits, err)) {
        fe_datakey_error_prefix(*err, "source cluster: ");
        return 0;
    }
    ext->source_known = 1;
    ext->source_version = version;
    ext->source_bits = bits;
    if (version == 0)
        return 1;
    return fe_datakey_store_read_check(datadir, &ext->source_check, err);
}

int rewind_datakey_source_server(rewind_datakey* ext, unsigned version, unsigned bits, const char* check,
                             size_t check_len, fe_datakey_error** err) {
    ext->source_known = 1;
    ext->source_version = version;
    ext->source_bits = bits;
    if (version == 0)
        return 1;
    if (check == NULL) {
        *err =
            fe_datakey_error_new(FE_DATAKEY_E_CHECK_INVALID, "source server has no key check file",
                                 "The source cluster's pg_control says it is encrypted, but it "
                                 "has no \"" FE_DATAKEY_CHECK_FILE "\".",
                                 NULL);
        return 0;
    }
    if (!fe_datakey_check_parse(check, check_len, &ext->source_check, err))
        return 0;
    if ((unsigned)ext->source_check.bits != bits) {
        *err = fe_datakey_error_new(FE_DATAKEY_E_CHECK_INVALID,
                                    "source server's key check does not match its pg_control", NULL,
                                    NULL);
        return 0;
    }
    return 1;
}

static int state_mismatch(const rewind_datakey* ext, unsigned target_version, unsigned target_bits,
                          fe_datakey_error** err) {
    char detail[256];

    if ((target_version != 0) != (ext->source_version != 0))
        snprintf(detail, sizeof(detail), "%s",
                 target_version != 0 ? "The target cluster is encrypted, the source cluster is not "
                                       "encrypted, as their control files record."
                                     : "The target cluster is not encrypted, the source cluster is "
                                       "encrypted, as their control files record.");
    else
        snprintf(detail, sizeof(detail),
                 "The target cluster's pg_control says data encryption version %u with a %u-bit "
                 "key, the source cluster's version %u with a %u-bit key.",
                 target_version, target_bits, ext->source_version, ext->source_bits);
    *err = fe_datakey_error_new(
        FE_DATAKEY_E_NOT_ENCRYPTED, "source and target clusters differ in data encryption", detail,
        "Both clusters must be encrypted with the same data encryption key, or neither.");
    return 0;
}

int rewind_datakey_check_target(rewind_datakey* ext, const char* target_datadir, unsigned version,
                            unsigned bits, fe_datakey_error** err) {
    fe_datakey_check target_check;
    fe_datakey_key* key;
    char* command;

    if (!ext->source_known) {
        *err = fe_datakey_error_new(FE_DATAKEY_E_INTERNAL,
                                    "key state of the source cluster is unknown", NULL, NULL);
        return 0;
    }

    if (version != ext->source_version || bits != ext->source_bits)
        return state_mismatch(ext, version, bits, err);
    if (!fe_datakey_store_check_state(target_datadir, version, bits, err)) {
        fe_datakey_error_prefix(*err, "target cluster: ");
        return 0;
    }
    ext->target_checked = 1;
    ext->target_version = version;
    if (version == 0)
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
    fe_datakey_free(command);
    if (key == NULL) {
        /* Say which cluster failed; keep the library's detail and hint. */
        fe_datakey_error_prefix(*err,
                                "could not load the data encryption key of the target cluster: ");
        return 0;
    }
    fe_datakey_key_check_of(key, &target_check);
    fe_datakey_key_free(key);
    if (!fe_datakey_check_equal(&target_check, &ext->source_check)) {
        *err = fe_datakey_error_new(FE_DATAKEY_E_KEY_MISMATCH,
                                    "source and target clusters use different data encryption keys",
                                    "The key unwrapped from the target cluster does not match the "
                                    "source cluster's key check.",
                                    NULL);
        return 0;
    }
    return 1;
}

const char* rewind_datakey_server_options(rewind_datakey* ext, fe_datakey_error** err) {
    char* command;
    int failed;

    if (!ext->target_checked || ext->target_version == 0)
        return "";
    command = fe_datakey_options_command(ext->opts, FE_DATAKEY_ROLE_UNWRAP, err);
    if (command == NULL)
        return NULL;
    /* Inherited by the servers pg_rewind runs; never on their command line. */
    failed = setenv(UNWRAP_VARIABLE, command, 1) != 0;
    fe_datakey_free(command);
    if (failed) {
        *err = oom();
        return NULL;
    }
    /* An empty setting makes the server take the variable. */
    return " -c " FE_DATAKEY_UNWRAP_SETTING "=";
}

int rewind_datakey_is_key_store_path(const char* path) {
    size_t len = strlen(FE_DATAKEY_KEY_DIR);

    return strncmp(path, FE_DATAKEY_KEY_DIR, len) == 0 && (path[len] == '\0' || path[len] == '/');
}
