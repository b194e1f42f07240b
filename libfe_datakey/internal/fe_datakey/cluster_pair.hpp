// Two clusters that must share one data encryption key (pg_rewind's target
// and source, pg_upgrade's old and new cluster): the one comparison both
// adapters make, and the hand-over of the unwrap command to the servers the
// utility starts.
#pragma once

#include "fe_datakey/key.hpp"
#include "fe_datakey/options.hpp"

#include <array>
#include <optional>
#include <string>

namespace fe_datakey {

struct ClusterPairNames {
    std::string clusters;                // "source and target clusters"
    std::array<std::string, 2> name;     // "target", "source": in the details' order
    std::string hint_differ;             // states differ, the first cluster encrypted
    std::string hint_differ_unencrypted; // states differ, the first one not
    std::string hint_other_key;          // both encrypted, different keys
};

class ClusterPair {
public:
    ClusterPair(ClusterPairNames names, KeyOptions options);

    // Cluster `which` (0: first, 1: second) from its data directory: checks
    // its key files against its pg_control fields (key_state.hpp) and reads
    // its key check. With `unwrap`, compare() unwraps its key with the given
    // command, else (a config_file) the one its server reads from there.
    void set_directory(int which, const std::string& datadir,
                       const std::optional<std::string>& config_file, unsigned version,
                       unsigned bits, bool unwrap);
    // Cluster `which` from a server: its pg_control fields and the contents of
    // its key check file (nothing when it has none).
    void set_remote(int which, unsigned version, unsigned bits,
                    const std::optional<std::string>& check);

    // Throws the first difference; on success with encrypted clusters and a
    // given command, puts that into the environment for the servers.
    void compare();
    // " -c data_encryption_key_unwrap_command=" after compare() handed a
    // command over, else "".
    const char* server_options() const;

private:
    struct Cluster {
        bool known = false;
        std::string datadir; // empty for a server
        std::optional<std::string> config_file;
        unsigned version = 0;
        unsigned bits = 0;
        bool unwrap = false;
        KeyCheck check;
    };

    std::string unwrap_command(const Cluster& c) const;
    KeyCheck unwrapped_check(int which) const;
    [[noreturn]] void differ() const;

    ClusterPairNames names_;
    KeyOptions options_;
    std::array<Cluster, 2> clusters_;
    bool handed_over_ = false;
};

} // namespace fe_datakey
