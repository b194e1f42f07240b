/*
 * fe_datakey.h
 *	  C interface of libfe_datakey: protection of a PostgreSQL cluster's data
 *	  encryption key by external wrap and unwrap commands.
 *
 * Conventions (after LevelDB's c.h): opaque handles with create/free pairs;
 * every fallible call takes a fe_datakey_error ** last, returns 0 / NULL on
 * failure and stores an error the caller frees. Strings returned to the caller
 * are malloc'ed and freed with fe_datakey_free(). No C++ type or exception
 * crosses this interface; the library never prints and never exits.
 *
 * Arguments: every call has a defined result for any argument, NULL included.
 * - A NULL handle or string that a fallible call needs fails the call with
 *   FE_DATAKEY_E_INVALID_ARGUMENT naming the argument. Arguments documented
 *   as optional (longopts, shortopts, config_file, check, check_found) may
 *   be NULL.
 * - err itself may be NULL: the call still fails (0 / NULL), with no error
 *   object. A previous *err is freed before a new one is stored.
 * - Calls without an error argument return 0 / NULL for a NULL handle or
 *   string; free functions accept NULL.
 * - Out of memory anywhere is a failure with an error object whose message
 *   is "out of memory", never success with a NULL result: a call that
 *   returns NULL with *err NULL (fe_datakey_conf_get_unwrap_command) always
 *   means "not set".
 * - A fe_datakey_check's kcv is read no further than its array, NUL or not.
 */
#ifndef FE_DATAKEY_H
#define FE_DATAKEY_H

#include <stddef.h>

#ifdef __cplusplus
/* No call throws: every failure is an error object or a documented result. */
#define FE_DATAKEY_NOEXCEPT noexcept
extern "C" {
#else
#define FE_DATAKEY_NOEXCEPT
#endif

struct option; /* <getopt.h> */

/* ---- errors ---- */

typedef struct fe_datakey_error fe_datakey_error;

enum {
    FE_DATAKEY_E_OK = 0,
    FE_DATAKEY_E_USAGE = 1,
    FE_DATAKEY_E_COMMAND_MISSING = 2,
    FE_DATAKEY_E_COMMAND_EMPTY = 3,
    FE_DATAKEY_E_COMMAND_INVALID = 4,
    FE_DATAKEY_E_UNSAFE_PATH = 5,
    FE_DATAKEY_E_SPAWN_FAILED = 6,
    FE_DATAKEY_E_COMMAND_FAILED = 7,
    FE_DATAKEY_E_COMMAND_SIGNALED = 8,
    FE_DATAKEY_E_COMMAND_TIMEOUT = 9,
    FE_DATAKEY_E_OUTPUT_EMPTY = 10,
    FE_DATAKEY_E_OUTPUT_SHORT = 11,
    FE_DATAKEY_E_OUTPUT_LONG = 12,
    FE_DATAKEY_E_KEY_MISMATCH = 13,
    FE_DATAKEY_E_CHECK_INVALID = 14,
    FE_DATAKEY_E_NOT_ENCRYPTED = 15,
    FE_DATAKEY_E_IO = 16,
    FE_DATAKEY_E_INTERNAL = 17,
    FE_DATAKEY_E_INTERRUPTED = 18,
    FE_DATAKEY_E_INVALID_ARGUMENT = 19 /* a NULL handle or string (C API only) */
};

/* Primary message, lower case, no trailing period. Never NULL. */
extern const char* fe_datakey_error_message(const fe_datakey_error* err) FE_DATAKEY_NOEXCEPT;
/* Detail and hint as full sentences, or NULL when there is none. */
extern const char* fe_datakey_error_detail(const fe_datakey_error* err) FE_DATAKEY_NOEXCEPT;
extern const char* fe_datakey_error_hint(const fe_datakey_error* err) FE_DATAKEY_NOEXCEPT;
extern int fe_datakey_error_code(const fe_datakey_error* err) FE_DATAKEY_NOEXCEPT;
extern void fe_datakey_error_free(fe_datakey_error* err) FE_DATAKEY_NOEXCEPT;

/*
 * For adapters that report errors of their own through the same channel.
 * detail and hint may be NULL. When out of memory, a static "out of memory"
 * error, which fe_datakey_error_free leaves alone. Never NULL.
 */
extern fe_datakey_error* fe_datakey_error_new(int code, const char* message, const char* detail,
                                              const char* hint) FE_DATAKEY_NOEXCEPT;

/*
 * Stores a new error in *err, freeing the one there before (LevelDB's
 * SaveError); nothing when err is NULL. When out of memory, *err is the
 * static "out of memory" error. Returns 0, so that a failing
 * call can end with "return fe_datakey_error_set(err, ...);".
 */
extern int fe_datakey_error_set(fe_datakey_error** err, int code, const char* message,
                                const char* detail, const char* hint) FE_DATAKEY_NOEXCEPT;

/*
 * Puts prefix before the primary message of err (e.g. to say which cluster
 * failed), keeping its code, detail and hint. On out of memory err is left
 * as it was.
 */
extern void fe_datakey_error_prefix(fe_datakey_error* err, const char* prefix) FE_DATAKEY_NOEXCEPT;

extern void fe_datakey_free(void* ptr) FE_DATAKEY_NOEXCEPT;

/* ---- options ---- */

#define FE_DATAKEY_OPT_WRAP 1u        /* --key-wrap-command */
#define FE_DATAKEY_OPT_UNWRAP 2u      /* --key-unwrap-command */
#define FE_DATAKEY_OPT_NO_KEY_WRAP 4u /* --no-key-wrap */

#define FE_DATAKEY_ROLE_WRAP 0
#define FE_DATAKEY_ROLE_UNWRAP 1

typedef struct fe_datakey_options fe_datakey_options;

/*
 * Removes the options in `accepted` from argv (*argc shrinks, argv stays
 * NULL-terminated) and reads PGDATAKEYWRAPCMD / PGDATAKEYUNWRAPCMD. The
 * utility's own shortopts/longopts (as passed to getopt_long) tell which
 * arguments are values of its options, which are never taken as ours.
 */
extern fe_datakey_options* fe_datakey_options_extract(int* argc, char** argv, unsigned accepted,
                                                      const char* shortopts,
                                                      const struct option* longopts,
                                                      fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;
extern void fe_datakey_options_free(fe_datakey_options* opts) FE_DATAKEY_NOEXCEPT;

/* 1 when any of our options was on the command line (variables don't count). */
extern int fe_datakey_options_on_command_line(const fe_datakey_options* opts) FE_DATAKEY_NOEXCEPT;
/* 1 when a value for the role is set by option or variable (maybe empty). */
extern int fe_datakey_options_is_set(const fe_datakey_options* opts, int role) FE_DATAKEY_NOEXCEPT;

/*
 * The validated command for a role ("-" for no wrapping). NULL with an error
 * when it is unset, empty or has no %p.
 */
extern char* fe_datakey_options_command(const fe_datakey_options* opts, int role,
                                        fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/*
 * Both commands, validated, and checked to be both "-" or both commands.
 * Returns 1, or 0 with an error (then *wrap and *unwrap are NULL).
 */
extern int fe_datakey_options_command_pair(const fe_datakey_options* opts, char** wrap,
                                           char** unwrap,
                                           fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/*
 * Checks one command value given some other way than by our options (e.g.
 * the server's data_encryption_key_unwrap_command) by the same rules: not
 * empty, "-" or containing %p. origin names where the value came from, for
 * the detail. Returns 1, or 0 with an error.
 */
extern int fe_datakey_command_validate(int role, const char* command, const char* origin,
                                       fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/*
 * 1 when a key file path given by the user (initdb --copy-key-from) can be
 * used by fe_datakey_load_key_file: the part it substitutes into %p (the
 * file name, or pg_encryption/NAME) holds only ASCII letters, digits and
 * / . _ - + , : @ = and does not start with -, so that it is one word however
 * the command quotes %p; the directory above is only the working directory.
 * Else 0 with FE_DATAKEY_E_UNSAFE_PATH naming the class of character.
 */
extern int fe_datakey_check_path(const char* path, fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/*
 * 1 when a key file given by the user can be used: fe_datakey_check_path
 * passes, and the path names a regular file (a symbolic link is followed:
 * the user named it). Else 0: FE_DATAKEY_E_UNSAFE_PATH, or FE_DATAKEY_E_IO
 * for a file that is missing or is a FIFO, a directory, a socket, a device
 * (the detail names the type). Opens nothing.
 */
extern int fe_datakey_check_key_file(const char* path, fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/* ---- running commands ---- */

/*
 * Called about every 100 ms while a command runs; when it returns non-zero
 * the command's process group is killed and the call fails with
 * FE_DATAKEY_E_INTERRUPTED. Process-wide; NULL (the default) for none.
 */
typedef int (*fe_datakey_interrupt_fn)(void);
extern void fe_datakey_set_interrupt_check(fe_datakey_interrupt_fn fn) FE_DATAKEY_NOEXCEPT;

/* ---- keys ---- */

typedef struct fe_datakey_key fe_datakey_key;

#define FE_DATAKEY_KCV_HEX_LEN 32

typedef struct fe_datakey_check {
    int version;
    int bits;                             /* AES key length: 128 or 256 */
    char kcv[FE_DATAKEY_KCV_HEX_LEN + 1]; /* key check value, hex */
} fe_datakey_check;

/* bits: 128 or 256. */
extern fe_datakey_key* fe_datakey_key_generate(int bits,
                                               fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;
extern void fe_datakey_key_free(fe_datakey_key* key) FE_DATAKEY_NOEXCEPT;
extern int fe_datakey_key_bits(const fe_datakey_key* key) FE_DATAKEY_NOEXCEPT;
extern size_t fe_datakey_key_length(const fe_datakey_key* key) FE_DATAKEY_NOEXCEPT;
/* The plaintext bytes, for a cipher layer. Valid until the key is freed. */
extern const unsigned char* fe_datakey_key_bytes(const fe_datakey_key* key) FE_DATAKEY_NOEXCEPT;
/* On a failure (out of memory, OpenSSL, a NULL key) *out is all zero: a check
 * that fe_datakey_check_equal never finds equal to any. A NULL out: nothing. */
extern void fe_datakey_key_check_of(const fe_datakey_key* key,
                                    fe_datakey_check* out) FE_DATAKEY_NOEXCEPT;

/* Parses the contents of a key check file (e.g. read over a connection). */
extern int fe_datakey_check_parse(const char* text, size_t len, fe_datakey_check* out,
                                  fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;
/* 1 when two key checks identify the same key; 0 for an empty or NULL check. */
extern int fe_datakey_check_equal(const fe_datakey_check* a,
                                  const fe_datakey_check* b) FE_DATAKEY_NOEXCEPT;

/* ---- key store in a data directory ---- */

/* Relative to the data directory. */
#define FE_DATAKEY_KEY_DIR "pg_encryption"
#define FE_DATAKEY_KEY_FILE "pg_encryption/key.bin"
#define FE_DATAKEY_CHECK_FILE "pg_encryption/key.check"

/* pg_control's data_encryption_version for this key layout (0: none). */
#define FE_DATAKEY_CONTROL_VERSION 1

/*
 * Checks the key files of a data directory against the encryption state its
 * pg_control records (data_encryption_version, data_encryption_key_length):
 * version 0 and neither key.bin nor key.check (a lone key.check is refused
 * too), or version 1 with a readable regular key.bin and a valid key check
 * for a key of that many bits. Runs no command. Returns 1, or 0 with the
 * first disagreement as the error (files named relative to the data
 * directory).
 */
extern int fe_datakey_store_check_state(const char* datadir, unsigned version, unsigned bits,
                                        fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/* timeout_seconds: 0 for none. */
extern int fe_datakey_store_create(const char* datadir, const char* wrap_command,
                                   const fe_datakey_key* key, int timeout_seconds,
                                   fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;
extern fe_datakey_key* fe_datakey_store_load(const char* datadir, const char* unwrap_command,
                                             int timeout_seconds,
                                             fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;
extern int fe_datakey_store_read_check(const char* datadir, fe_datakey_check* out,
                                       fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/*
 * Unwraps a key file named by the user (initdb --copy-key-from). *check_found
 * is set to 1 and *check filled when a key check beside it verified the key.
 */
extern fe_datakey_key* fe_datakey_load_key_file(const char* path, const char* unwrap_command,
                                                int timeout_seconds, fe_datakey_check* check,
                                                int* check_found,
                                                fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/* ---- two clusters that must share one data encryption key ---- */

/*
 * pg_rewind's target and source, pg_upgrade's old and new cluster: the same
 * data encryption state in both pg_control files, each cluster's key files
 * agreeing with its own, the same key check, and the key of each cluster to
 * be unwrapped produced by the command its server will use. The clusters
 * are "first" and "second", in the order the details name them.
 */
typedef struct fe_datakey_pair fe_datakey_pair;

/* What the messages call the clusters, and the hints they give. */
typedef struct fe_datakey_pair_names {
    const char* clusters;                /* "source and target clusters": message subject */
    const char* first;                   /* "target" */
    const char* second;                  /* "source" */
    const char* hint_differ;             /* states differ, the first cluster encrypted */
    const char* hint_differ_unencrypted; /* states differ, the first one not */
    const char* hint_other_key;          /* both encrypted, with different keys */
} fe_datakey_pair_names;

#define FE_DATAKEY_PAIR_FIRST 0
#define FE_DATAKEY_PAIR_SECOND 1

/*
 * Removes --key-unwrap-command from argv and reads PGDATAKEYUNWRAPCMD, as
 * fe_datakey_options_extract does with FE_DATAKEY_OPT_UNWRAP. The names
 * are copied.
 */
extern fe_datakey_pair* fe_datakey_pair_new(const fe_datakey_pair_names* names, int* argc,
                                            char** argv, const char* shortopts,
                                            const struct option* longopts,
                                            fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;
extern void fe_datakey_pair_free(fe_datakey_pair* pair) FE_DATAKEY_NOEXCEPT;

/*
 * Records cluster `which` from its data directory and pg_control fields:
 * its key files must agree with them (fe_datakey_store_check_state; the
 * error's message then starts with "NAME cluster: "), and its key check is
 * read. When unwrap is 1, fe_datakey_pair_compare unwraps its key with the
 * command given by option or variable, else (config_file not NULL) the one
 * the cluster's server reads from config_file and postgresql.auto.conf.
 */
extern int fe_datakey_pair_set_directory(fe_datakey_pair* pair, int which, const char* datadir,
                                         const char* config_file, unsigned version, unsigned bits,
                                         int unwrap, fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/*
 * Records cluster `which` from a server: its pg_control fields and the
 * contents of its key check file (NULL when it has none). Never unwrapped.
 */
extern int fe_datakey_pair_set_remote(fe_datakey_pair* pair, int which, unsigned version,
                                      unsigned bits, const char* check, size_t check_len,
                                      fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/*
 * Compares the two recorded clusters, cheapest first: pg_control fields,
 * key checks, then the unwrapped keys. When both are encrypted and a
 * command was given by option or variable, it is put into this process's
 * environment as PGDATAKEYUNWRAPCMD, for the servers the utility starts
 * (see fe_datakey_pair_server_options). Returns 1, or 0 with an error.
 */
extern int fe_datakey_pair_compare(fe_datakey_pair* pair,
                                   fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;

/*
 * After a successful compare that handed a command over: " -c
 * data_encryption_key_unwrap_command=" (an empty setting makes the server
 * take the variable), for the servers' command lines; else "". Never the
 * command itself. Static.
 */
extern const char* fe_datakey_pair_server_options(const fe_datakey_pair* pair) FE_DATAKEY_NOEXCEPT;

/* ---- postgresql.conf ---- */

#define FE_DATAKEY_UNWRAP_SETTING "data_encryption_key_unwrap_command"
/*
 * The environment variables a command is read from when its option is
 * absent; the server takes the unwrap one when its setting is empty.
 */
#define FE_DATAKEY_WRAP_VARIABLE "PGDATAKEYWRAPCMD"
#define FE_DATAKEY_UNWRAP_VARIABLE "PGDATAKEYUNWRAPCMD"

extern int fe_datakey_conf_set_unwrap_command(const char* conf_path, const char* command,
                                              fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;
/* NULL without an error when the file does not set it. */
extern char* fe_datakey_conf_get_unwrap_command(const char* conf_path,
                                                fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;
/*
 * The data_encryption_key_unwrap_command a cluster's server reads from its
 * configuration: DATADIR/postgresql.auto.conf over config_file (NULL:
 * DATADIR/postgresql.conf); a missing file sets nothing. Include files are
 * not followed. NULL without an error when neither file sets it.
 */
extern char* fe_datakey_configured_unwrap_command(const char* datadir, const char* config_file,
                                                  fe_datakey_error** err) FE_DATAKEY_NOEXCEPT;
/* 'value' for postgresql.conf and a single-quoted shell word. NULL only when
 * out of memory or the argument is NULL. */
extern char* fe_datakey_conf_quote(const char* value) FE_DATAKEY_NOEXCEPT;
extern char* fe_datakey_shell_quote(const char* word) FE_DATAKEY_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* FE_DATAKEY_H */
