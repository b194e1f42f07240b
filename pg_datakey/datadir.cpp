#include "datadir.hpp"

#include "exit_status.hpp"

#include "fe_datakey/store.hpp"

#include <cerrno>
#include <cstdlib>
#include <sys/stat.h>

namespace pg_datakey {

std::string resolve_data_directory(const std::optional<std::string>& option) {
    std::string datadir;
    if (option && !option->empty())
        datadir = *option;
    else if (const char* env = std::getenv("PGDATA"); env && *env)
        datadir = env;
    else
        throw ToolError(exit_usage, "no data directory specified");
    while (datadir.size() > 1 && datadir.back() == '/')
        datadir.pop_back();

    struct stat st;
    if (::stat(datadir.c_str(), &st) != 0)
        fe_datakey::throw_io_error("could not access directory \"" + datadir + "\"", errno);
    if (!S_ISDIR(st.st_mode))
        throw ToolError(exit_io, "\"" + datadir + "\" is not a directory");
    if (::stat((datadir + "/PG_VERSION").c_str(), &st) != 0)
        throw ToolError(exit_io, "\"" + datadir + "\" is not a database cluster directory",
                        "The file \"PG_VERSION\" is missing.");
    return datadir;
}

void require_encrypted(const std::string& datadir) {
    if (!fe_datakey::is_encrypted(datadir))
        throw fe_datakey::Error(fe_datakey::ErrorCode::not_encrypted,
                                "data directory \"" + datadir + "\" is not encrypted",
                                "There is no key file \"" + std::string(fe_datakey::key_file) +
                                    "\".");
}

} // namespace pg_datakey
