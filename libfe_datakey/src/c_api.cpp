// The C ABI over the C++ library: every entry point is noexcept and catches
// everything, so no exception crosses into PostgreSQL's C code (where it
// would be std::terminate inside initdb or the postmaster).
#include "fe_datakey/fe_datakey.h"

#include "fe_datakey/cluster_pair.hpp"
#include "fe_datakey/command.hpp"
#include "fe_datakey/conf.hpp"
#include "fe_datakey/error.hpp"
#include "fe_datakey/key.hpp"
#include "fe_datakey/key_state.hpp"
#include "fe_datakey/options.hpp"
#include "fe_datakey/store.hpp"

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>
#include <optional>

using namespace fe_datakey;

struct fe_datakey_error {
    int code;
    std::string message;
    std::string detail;
    std::string hint;
};

struct fe_datakey_options {
    KeyOptions options;
};

struct fe_datakey_key {
    Key key;
};

struct fe_datakey_pair {
    ClusterPair pair;
};

namespace {

// The C codes are the C++ ones: tie each pair, and let the switch (no
// default, -Wswitch) catch a C++ code without a C one.
#define SAME_CODE(c, cpp) static_assert(c == static_cast<int>(ErrorCode::cpp), #c)
SAME_CODE(FE_DATAKEY_E_OK, ok);
SAME_CODE(FE_DATAKEY_E_USAGE, usage);
SAME_CODE(FE_DATAKEY_E_COMMAND_MISSING, command_missing);
SAME_CODE(FE_DATAKEY_E_COMMAND_EMPTY, command_empty);
SAME_CODE(FE_DATAKEY_E_COMMAND_INVALID, command_invalid);
SAME_CODE(FE_DATAKEY_E_UNSAFE_PATH, unsafe_path);
SAME_CODE(FE_DATAKEY_E_SPAWN_FAILED, spawn_failed);
SAME_CODE(FE_DATAKEY_E_COMMAND_FAILED, command_failed);
SAME_CODE(FE_DATAKEY_E_COMMAND_SIGNALED, command_signaled);
SAME_CODE(FE_DATAKEY_E_COMMAND_TIMEOUT, command_timeout);
SAME_CODE(FE_DATAKEY_E_OUTPUT_EMPTY, output_empty);
SAME_CODE(FE_DATAKEY_E_OUTPUT_SHORT, output_short);
SAME_CODE(FE_DATAKEY_E_OUTPUT_LONG, output_long);
SAME_CODE(FE_DATAKEY_E_KEY_MISMATCH, key_mismatch);
SAME_CODE(FE_DATAKEY_E_CHECK_INVALID, check_invalid);
SAME_CODE(FE_DATAKEY_E_NOT_ENCRYPTED, not_encrypted);
SAME_CODE(FE_DATAKEY_E_IO, io);
SAME_CODE(FE_DATAKEY_E_INTERNAL, internal);
SAME_CODE(FE_DATAKEY_E_INTERRUPTED, interrupted);
#undef SAME_CODE
// C only: a NULL argument cannot reach the C++ API.
static_assert(FE_DATAKEY_E_INVALID_ARGUMENT == FE_DATAKEY_E_INTERRUPTED + 1,
              "FE_DATAKEY_E_INVALID_ARGUMENT follows the C++ codes");

constexpr int c_code(ErrorCode code) {
    switch (code) {
    case ErrorCode::ok:
    case ErrorCode::usage:
    case ErrorCode::command_missing:
    case ErrorCode::command_empty:
    case ErrorCode::command_invalid:
    case ErrorCode::unsafe_path:
    case ErrorCode::spawn_failed:
    case ErrorCode::command_failed:
    case ErrorCode::command_signaled:
    case ErrorCode::command_timeout:
    case ErrorCode::output_empty:
    case ErrorCode::output_short:
    case ErrorCode::output_long:
    case ErrorCode::key_mismatch:
    case ErrorCode::check_invalid:
    case ErrorCode::not_encrypted:
    case ErrorCode::io:
    case ErrorCode::internal:
    case ErrorCode::interrupted:
        return static_cast<int>(code);
    }
    return FE_DATAKEY_E_INTERNAL;
}

// The error stored when no other can be allocated: static, never freed, so
// that a failed call always leaves an error object, and a NULL result with
// *err still NULL always means "not set".
fe_datakey_error out_of_memory{FE_DATAKEY_E_INTERNAL, "out of memory", {}, {}};

void free_error(fe_datakey_error* err) noexcept {
    if (err != &out_of_memory)
        delete err;
}

// Replaces *err by the error `make` builds, or by out_of_memory when that
// fails too.
template <typename Make>
void set_error_with(fe_datakey_error** err, Make&& make) noexcept {
    if (err == nullptr)
        return;
    free_error(*err);
    *err = &out_of_memory;
    try {
        *err = new fe_datakey_error(make());
    } catch (...) {
    }
}

void set_error(fe_datakey_error** err, int code, const char* message) noexcept {
    set_error_with(err, [&] { return fe_datakey_error{code, message, {}, {}}; });
}

// Runs `body`; any exception becomes an error object. Returns whether it succeeded.
template <typename Body>
bool guarded(fe_datakey_error** err, Body&& body) noexcept {
    try {
        body();
        return true;
    } catch (const Error& e) {
        set_error_with(err, [&] {
            return fe_datakey_error{c_code(e.code()), e.message(), e.detail(), e.hint()};
        });
    } catch (const std::bad_alloc&) {
        set_error(err, FE_DATAKEY_E_INTERNAL, "out of memory");
    } catch (const std::exception& e) {
        set_error_with(err, [&] {
            return fe_datakey_error{
                FE_DATAKEY_E_INTERNAL, std::string("internal error: ") + e.what(), {}, {}};
        });
    } catch (...) {
        set_error(err, FE_DATAKEY_E_INTERNAL, "internal error");
    }
    return false;
}

// A pointer argument and its name, for args_given.
struct Arg {
    const void* value;
    const char* name;
};
#define ARG(x)                                                                                     \
    Arg {                                                                                          \
        static_cast<const void*>(x), #x                                                            \
    }

// False, with FE_DATAKEY_E_INVALID_ARGUMENT naming the first NULL argument of
// `function`, when one of `args` is NULL.
bool args_given(fe_datakey_error** err, const char* function,
                std::initializer_list<Arg> args) noexcept {
    for (const Arg& a : args) {
        if (a.value == nullptr) {
            set_error_with(err, [&] {
                return fe_datakey_error{FE_DATAKEY_E_INVALID_ARGUMENT,
                                        std::string("invalid argument to ") + function,
                                        std::string("The argument ") + a.name + " is NULL.",
                                        {}};
            });
            return false;
        }
    }
    return true;
}

// For calls without an error argument: `fallback` when `body` throws.
template <typename T, typename Body>
T or_fallback(T fallback, Body&& body) noexcept {
    try {
        return body();
    } catch (...) {
        return fallback;
    }
}

char* copy_string(const std::string& s) noexcept {
    char* out = static_cast<char*>(std::malloc(s.size() + 1));
    if (out != nullptr)
        std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
}

// copy_string for a result that must not be NULL: out of memory throws.
char* copy_result(const std::string& s) {
    char* out = copy_string(s);
    if (out == nullptr)
        throw std::bad_alloc();
    return out;
}

Role role_of(int role) {
    return role == FE_DATAKEY_ROLE_WRAP ? Role::wrap : Role::unwrap;
}

void fill_check(const KeyCheck& check, fe_datakey_check* out) {
    out->version = check.version;
    out->bits = check.bits;
    std::snprintf(out->kcv, sizeof out->kcv, "%s", check.kcv.c_str());
}

KeyCheck to_check(const fe_datakey_check* c) {
    KeyCheck check;
    check.version = c->version;
    check.bits = c->bits;
    // The array need not be NUL-terminated: read no further than its end.
    check.kcv.assign(c->kcv, strnlen(c->kcv, sizeof c->kcv));
    return check;
}

RunOptions run_options(const std::string& datadir, int timeout_seconds) {
    RunOptions options;
    options.working_directory = datadir;
    options.timeout_seconds = timeout_seconds;
    return options;
}

const char* or_null(const std::string& s) {
    return s.empty() ? nullptr : s.c_str();
}

} // namespace

extern "C" {

const char* fe_datakey_error_message(const fe_datakey_error* err) noexcept {
    return err != nullptr ? err->message.c_str() : "out of memory";
}
const char* fe_datakey_error_detail(const fe_datakey_error* err) noexcept {
    return err != nullptr ? or_null(err->detail) : nullptr;
}
const char* fe_datakey_error_hint(const fe_datakey_error* err) noexcept {
    return err != nullptr ? or_null(err->hint) : nullptr;
}
int fe_datakey_error_code(const fe_datakey_error* err) noexcept {
    return err != nullptr ? err->code : FE_DATAKEY_E_INTERNAL;
}
void fe_datakey_error_free(fe_datakey_error* err) noexcept {
    free_error(err);
}

fe_datakey_error* fe_datakey_error_new(int code, const char* message, const char* detail,
                                       const char* hint) noexcept {
    return or_fallback<fe_datakey_error*>(&out_of_memory, [&] {
        return new fe_datakey_error{code, message != nullptr ? message : "",
                                    detail != nullptr ? detail : "", hint != nullptr ? hint : ""};
    });
}

int fe_datakey_error_set(fe_datakey_error** err, int code, const char* message, const char* detail,
                         const char* hint) noexcept {
    set_error_with(err, [&] {
        return fe_datakey_error{code, message != nullptr ? message : "",
                                detail != nullptr ? detail : "", hint != nullptr ? hint : ""};
    });
    return 0;
}

void fe_datakey_error_prefix(fe_datakey_error* err, const char* prefix) noexcept {
    if (err == nullptr || err == &out_of_memory || prefix == nullptr)
        return;
    try {
        err->message = prefix + err->message;
    } catch (...) {
        // out of memory: the message stays as it was
    }
}

void fe_datakey_free(void* ptr) noexcept {
    std::free(ptr);
}

fe_datakey_options* fe_datakey_options_extract(int* argc, char** argv, unsigned accepted,
                                               const char* shortopts, const struct option* longopts,
                                               fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(argc), ARG(argv)}))
        return nullptr;
    fe_datakey_options* result = nullptr;
    guarded(err, [&] {
        UtilityOptions utility{shortopts != nullptr ? shortopts : "", longopts};
        result = new fe_datakey_options{KeyOptions::extract(*argc, argv, accepted, utility)};
    });
    return result;
}

void fe_datakey_options_free(fe_datakey_options* opts) noexcept {
    delete opts;
}

int fe_datakey_options_on_command_line(const fe_datakey_options* opts) noexcept {
    if (opts == nullptr)
        return 0;
    return or_fallback(0, [&] { return opts->options.given_on_command_line() ? 1 : 0; });
}

int fe_datakey_options_is_set(const fe_datakey_options* opts, int role) noexcept {
    if (opts == nullptr)
        return 0;
    return or_fallback(0, [&] {
        return opts->options.no_key_wrap() ||
                       opts->options.setting(role_of(role)).source != Source::unset
                   ? 1
                   : 0;
    });
}

char* fe_datakey_options_command(const fe_datakey_options* opts, int role,
                                 fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(opts)}))
        return nullptr;
    char* result = nullptr;
    guarded(err, [&] { result = copy_result(opts->options.command(role_of(role))); });
    return result;
}

int fe_datakey_options_command_pair(const fe_datakey_options* opts, char** wrap, char** unwrap,
                                    fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(opts), ARG(wrap), ARG(unwrap)}))
        return 0;
    *wrap = nullptr;
    *unwrap = nullptr;
    if (guarded(err, [&] {
            auto pair = opts->options.command_pair();
            *wrap = copy_result(pair.first);
            *unwrap = copy_result(pair.second);
        }))
        return 1;
    std::free(*wrap);
    std::free(*unwrap);
    *wrap = nullptr;
    *unwrap = nullptr;
    return 0;
}

int fe_datakey_command_validate(int role, const char* command, const char* origin,
                                fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(command), ARG(origin)}))
        return 0;
    return guarded(err, [&] { validate_command(role_of(role), command, origin); });
}

int fe_datakey_check_path(const char* path, fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(path)}))
        return 0;
    return guarded(err, [&] { check_key_file_path(path); });
}

int fe_datakey_check_key_file(const char* path, fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(path)}))
        return 0;
    return guarded(err, [&] { check_key_file(path); });
}

void fe_datakey_set_interrupt_check(fe_datakey_interrupt_fn fn) noexcept {
    set_interrupt_check(fn);
}

fe_datakey_key* fe_datakey_key_generate(int bits, fe_datakey_error** err) noexcept {
    fe_datakey_key* result = nullptr;
    guarded(err, [&] { result = new fe_datakey_key{Key::generate(bits)}; });
    return result;
}

void fe_datakey_key_free(fe_datakey_key* key) noexcept {
    delete key;
}
int fe_datakey_key_bits(const fe_datakey_key* key) noexcept {
    return key != nullptr ? key->key.bits() : 0;
}
size_t fe_datakey_key_length(const fe_datakey_key* key) noexcept {
    return key != nullptr ? key->key.bytes().size() : 0;
}
const unsigned char* fe_datakey_key_bytes(const fe_datakey_key* key) noexcept {
    return key != nullptr ? key->key.bytes().data() : nullptr;
}
void fe_datakey_key_check_of(const fe_datakey_key* key, fe_datakey_check* out) noexcept {
    if (out == nullptr)
        return;
    if (key == nullptr) {
        std::memset(out, 0, sizeof *out);
        return;
    }
    try {
        fill_check(KeyCheck::of(key->key), out);
    } catch (...) {
        std::memset(out, 0, sizeof *out);
    }
}

int fe_datakey_check_parse(const char* text, size_t len, fe_datakey_check* out,
                           fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(text), ARG(out)}))
        return 0;
    return guarded(err, [&] { fill_check(KeyCheck::parse(std::string(text, len)), out); });
}

int fe_datakey_check_equal(const fe_datakey_check* a, const fe_datakey_check* b) noexcept {
    if (a == nullptr || b == nullptr || a->kcv[0] == '\0' || b->kcv[0] == '\0')
        return 0;
    return or_fallback(0, [&] { return to_check(a) == to_check(b) ? 1 : 0; });
}

static_assert(FE_DATAKEY_CONTROL_VERSION == control_encryption_version,
              "pg_control's data encryption version, C and C++");

int fe_datakey_store_check_state(const char* datadir, unsigned version, unsigned bits,
                                 fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(datadir)}))
        return 0;
    return guarded(err, [&] { check_key_state(datadir, version, bits); });
}

int fe_datakey_store_create(const char* datadir, const char* wrap_command,
                            const fe_datakey_key* key, int timeout_seconds,
                            fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(datadir), ARG(wrap_command), ARG(key)}))
        return 0;
    return guarded(err, [&] {
        create_key_store(datadir, wrap_command, key->key, run_options(datadir, timeout_seconds));
    });
}

fe_datakey_key* fe_datakey_store_load(const char* datadir, const char* unwrap_command,
                                      int timeout_seconds, fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(datadir), ARG(unwrap_command)}))
        return nullptr;
    fe_datakey_key* result = nullptr;
    guarded(err, [&] {
        result = new fe_datakey_key{
            load_key(datadir, unwrap_command, run_options(datadir, timeout_seconds))};
    });
    return result;
}

int fe_datakey_store_read_check(const char* datadir, fe_datakey_check* out,
                                fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(datadir), ARG(out)}))
        return 0;
    return guarded(err, [&] { fill_check(read_key_check(datadir), out); });
}

fe_datakey_key* fe_datakey_load_key_file(const char* path, const char* unwrap_command,
                                         int timeout_seconds, fe_datakey_check* check,
                                         int* check_found, fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(path), ARG(unwrap_command)}))
        return nullptr;
    fe_datakey_key* result = nullptr;
    guarded(err, [&] {
        std::optional<KeyCheck> found;
        RunOptions options;
        options.timeout_seconds = timeout_seconds;
        result = new fe_datakey_key{load_key_file(path, unwrap_command, options, &found)};
        if (check_found != nullptr)
            *check_found = found ? 1 : 0;
        if (found && check != nullptr)
            fill_check(*found, check);
    });
    return result;
}

fe_datakey_pair* fe_datakey_pair_new(const fe_datakey_pair_names* names, int* argc, char** argv,
                                     const char* shortopts, const struct option* longopts,
                                     fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(names), ARG(argc), ARG(argv)}))
        return nullptr;
    fe_datakey_pair* result = nullptr;
    guarded(err, [&] {
        auto text = [](const char* s) { return std::string(s != nullptr ? s : ""); };
        ClusterPairNames n{text(names->clusters),
                           {text(names->first), text(names->second)},
                           text(names->hint_differ),
                           text(names->hint_differ_unencrypted),
                           text(names->hint_other_key)};
        UtilityOptions utility{shortopts != nullptr ? shortopts : "", longopts};
        result = new fe_datakey_pair{
            ClusterPair(std::move(n), KeyOptions::extract(*argc, argv, option_unwrap, utility))};
    });
    return result;
}

void fe_datakey_pair_free(fe_datakey_pair* pair) noexcept {
    delete pair;
}

int fe_datakey_pair_set_directory(fe_datakey_pair* pair, int which, const char* datadir,
                                  const char* config_file, unsigned version, unsigned bits,
                                  int unwrap, fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(pair), ARG(datadir)}))
        return 0;
    return guarded(err, [&] {
        std::optional<std::string> conf;
        if (config_file != nullptr)
            conf = config_file;
        pair->pair.set_directory(which == FE_DATAKEY_PAIR_SECOND ? 1 : 0, datadir, conf, version,
                                 bits, unwrap != 0);
    });
}

int fe_datakey_pair_set_remote(fe_datakey_pair* pair, int which, unsigned version, unsigned bits,
                               const char* check, size_t check_len,
                               fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(pair)}))
        return 0;
    return guarded(err, [&] {
        std::optional<std::string> text;
        if (check != nullptr)
            text = std::string(check, check_len);
        pair->pair.set_remote(which == FE_DATAKEY_PAIR_SECOND ? 1 : 0, version, bits, text);
    });
}

int fe_datakey_pair_compare(fe_datakey_pair* pair, fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(pair)}))
        return 0;
    return guarded(err, [&] { pair->pair.compare(); });
}

const char* fe_datakey_pair_server_options(const fe_datakey_pair* pair) noexcept {
    return pair != nullptr ? pair->pair.server_options() : "";
}

int fe_datakey_conf_set_unwrap_command(const char* conf_path, const char* command,
                                       fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(conf_path), ARG(command)}))
        return 0;
    return guarded(err, [&] { set_conf_unwrap_command(conf_path, command); });
}

char* fe_datakey_conf_get_unwrap_command(const char* conf_path, fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(conf_path)}))
        return nullptr;
    char* result = nullptr;
    guarded(err, [&] {
        if (auto value = get_conf_unwrap_command(conf_path))
            result = copy_result(*value);
    });
    return result;
}

char* fe_datakey_configured_unwrap_command(const char* datadir, const char* config_file,
                                           fe_datakey_error** err) noexcept {
    if (!args_given(err, __func__, {ARG(datadir)}))
        return nullptr;
    char* result = nullptr;
    guarded(err, [&] {
        if (auto value = config_file != nullptr
                             ? configured_unwrap_command_from(datadir, config_file)
                             : configured_unwrap_command(datadir))
            result = copy_result(*value);
    });
    return result;
}

char* fe_datakey_conf_quote(const char* value) noexcept {
    if (value == nullptr)
        return nullptr;
    return or_fallback<char*>(nullptr, [&] { return copy_string(quote_conf_value(value)); });
}
char* fe_datakey_shell_quote(const char* word) noexcept {
    if (word == nullptr)
        return nullptr;
    return or_fallback<char*>(nullptr, [&] { return copy_string(shell_quote(word)); });
}

} // extern "C"
