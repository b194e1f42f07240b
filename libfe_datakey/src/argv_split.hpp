// Splitting our options out of a utility's argv without disturbing the
// utility's own getopt_long: the scan follows getopt_long's rules, so a
// value of the utility's option (pg_upgrade -o '--key-unwrap-command=x',
// -o --key-unwrap-command=x, -o--key...) is never taken for ours.
#pragma once

#include "fe_datakey/options.hpp"

#include <string>
#include <vector>

namespace fe_datakey::detail {

struct OwnedOption {
    const char* name; // without the leading "--"
    bool takes_value;
};

// Removes the options named in `owned` from argv (compacting it, keeping the
// terminating NULL, shrinking argc) and returns them normalised as
// "--name=value" or "--name"; a value missing at the end of argv is returned
// as "--name" so that the option parser reports it.
std::vector<std::string> split_owned_options(int& argc, char** argv,
                                             const std::vector<OwnedOption>& owned,
                                             const UtilityOptions& utility);

} // namespace fe_datakey::detail
