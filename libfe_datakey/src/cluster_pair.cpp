// The comparison of two clusters that must share one data encryption key,
// cheapest first: pg_control fields, key checks, unwrapped keys; then the
// hand-over of the unwrap command to the servers through the environment.
#include "fe_datakey/cluster_pair.hpp"

#include "fe_datakey/conf.hpp"
#include "fe_datakey/error.hpp"
#include "fe_datakey/fe_datakey.h"
#include "fe_datakey/key_state.hpp"
#include "fe_datakey/store.hpp"

#include <cstdlib>
#include <new>

namespace fe_datakey {

namespace {

// Added to a server's options: an empty setting makes it take the variable.
constexpr const char* take_variable = " -c " FE_DATAKEY_UNWRAP_SETTING "=";

Error prefixed(const std::string& prefix, const Error& e) {
    return Error(e.code(), prefix + e.message(), e.detail(), e.hint());
}

std::string state(unsigned version, unsigned bits) {
    return "version " + std::to_string(version) + " with a " + std::to_string(bits) + "-bit key";
}

} // namespace

ClusterPair::ClusterPair(ClusterPairNames names, KeyOptions options)
    : names_(std::move(names)), options_(std::move(options)) {}

void ClusterPair::set_directory(int which, const std::string& datadir,
                                const std::optional<std::string>& config_file, unsigned version,
                                unsigned bits, bool unwrap) {
    const std::string& name = names_.name.at(which);
    try {
        check_key_state(datadir, version, bits);
    } catch (const Error& e) {
        throw prefixed(name + " cluster: ", e);
    }
    Cluster c;
    c.datadir = datadir;
    c.config_file = config_file;
    c.version = version;
    c.bits = bits;
    c.unwrap = unwrap;
    if (version != 0)
        c.check = read_key_check(datadir);
    c.known = true;
    clusters_.at(which) = c;
}

void ClusterPair::set_remote(int which, unsigned version, unsigned bits,
                             const std::optional<std::string>& check) {
    const std::string& name = names_.name.at(which);
    Cluster c;
    c.version = version;
    c.bits = bits;
    if (version != 0) {
        if (!check)
            throw Error(ErrorCode::check_invalid, name + " server has no key check file",
                        "The " + name +
                            " cluster's pg_control says it is encrypted, but it has no \"" +
                            key_check_file + "\".");
        c.check = KeyCheck::parse(*check);
        if (static_cast<unsigned>(c.check.bits) != bits)
            throw Error(ErrorCode::check_invalid,
                        name + " server's key check does not match its pg_control");
    }
    c.known = true;
    clusters_.at(which) = c;
}

void ClusterPair::differ() const {
    const Cluster& a = clusters_[0];
    const Cluster& b = clusters_[1];
    const std::string& na = names_.name[0];
    const std::string& nb = names_.name[1];
    std::string detail;
    if ((a.version != 0) != (b.version != 0))
        detail = "The " + na + " cluster is " + (a.version != 0 ? "" : "not ") + "encrypted, the " +
                 nb + " cluster is " + (b.version != 0 ? "" : "not ") +
                 "encrypted, as their control files record.";
    else
        detail = "The " + na + " cluster's pg_control says data encryption " +
                 state(a.version, a.bits) + ", the " + nb + " cluster's " +
                 state(b.version, b.bits) + ".";
    throw Error(ErrorCode::not_encrypted, names_.clusters + " differ in data encryption", detail,
                a.version != 0 ? names_.hint_differ : names_.hint_differ_unencrypted);
}

std::string ClusterPair::unwrap_command(const Cluster& c) const {
    // The command the cluster's server will run: the one given, else the
    // configured one; unset everywhere, the options' error names both.
    if (options_.setting(Role::unwrap).source == Source::unset && c.config_file)
        if (auto configured = configured_unwrap_command_from(c.datadir, *c.config_file))
            return *configured;
    return options_.command(Role::unwrap);
}

KeyCheck ClusterPair::unwrapped_check(int which) const {
    const Cluster& c = clusters_[which];
    std::string command = unwrap_command(c);
    try {
        return KeyCheck::of(load_key(c.datadir, command, RunOptions{}));
    } catch (const Error& e) {
        // Say which cluster failed; keep the library's detail and hint.
        throw prefixed("could not load the data encryption key of the " + names_.name[which] +
                           " cluster: ",
                       e);
    }
}

void ClusterPair::compare() {
    for (int i = 0; i < 2; i++)
        if (!clusters_[i].known)
            throw Error(ErrorCode::internal,
                        "key state of the " + names_.name[i] + " cluster is unknown");
    const Cluster& a = clusters_[0];
    const Cluster& b = clusters_[1];
    if (a.version != b.version || a.bits != b.bits)
        differ();
    if (a.version == 0)
        return;

    // The key checks first: that needs no secret.
    if (a.check != b.check)
        throw Error(
            ErrorCode::key_mismatch, names_.clusters + " use different data encryption keys",
            "Both clusters are encrypted, the " + names_.name[0] + " with a " +
                std::to_string(a.check.bits) + "-bit key whose check value is " + a.check.kcv +
                ", the " + names_.name[1] + " with a " + std::to_string(b.check.bits) +
                "-bit key whose check value is " + b.check.kcv + ".",
            names_.hint_other_key);
    for (int i = 0; i < 2; i++) {
        if (!clusters_[i].unwrap)
            continue;
        if (unwrapped_check(i) != clusters_[1 - i].check)
            throw Error(
                ErrorCode::key_mismatch, names_.clusters + " use different data encryption keys",
                "The key unwrapped from the " + names_.name[i] + " cluster does not match the " +
                    names_.name[1 - i] + " cluster's key check.");
    }

    // Inherited by the servers the utility starts; never on their command line.
    if (options_.setting(Role::unwrap).source == Source::unset)
        return;
    std::string command = options_.command(Role::unwrap);
    if (setenv(FE_DATAKEY_UNWRAP_VARIABLE, command.c_str(), 1) != 0)
        throw std::bad_alloc();
    handed_over_ = true;
}

const char* ClusterPair::server_options() const {
    return handed_over_ ? take_variable : "";
}

} // namespace fe_datakey
