#include "journal.hpp"

#include "exit_status.hpp"
#include "paths.hpp"

#include "fe_datakey/conf.hpp"
#include "fe_datakey/store.hpp"

#include <cerrno>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace pg_datakey {

namespace {
constexpr const char* header = "fe_datakey rewrap journal 1";

[[noreturn]] void corrupt(const std::string& why) {
    throw ToolError(exit_io, "invalid rewrap journal \"" + std::string(journal_file) + "\"", why,
                    "Inspect the data directory by hand; the journal names the unwrap command "
                    "that opens the new key file.");
}
} // namespace

std::string Journal::serialize() const {
    std::ostringstream out;
    out << header << "\n"
        << "new_unwrap_command " << fe_datakey::quote_conf_value(new_unwrap_command) << "\n"
        << "new_key_device " << new_key_device << "\n"
        << "new_key_inode " << new_key_inode << "\n";
    return out.str();
}

Journal Journal::parse(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    if (!std::getline(in, line) || line != header)
        corrupt("The first line is not \"" + std::string(header) + "\".");
    Journal j;
    bool have_command = false, have_device = false, have_inode = false;
    while (std::getline(in, line)) {
        auto space = line.find(' ');
        if (space == std::string::npos)
            corrupt("A line has no value.");
        std::string name = line.substr(0, space), value = line.substr(space + 1);
        try {
            if (name == "new_unwrap_command") {
                if (value.size() < 2 || value.front() != '\'' || value.back() != '\'')
                    corrupt("The command is not quoted.");
                j.new_unwrap_command = fe_datakey::unquote_conf_value(value);
                have_command = true;
            } else if (name == "new_key_device") {
                j.new_key_device = std::stoull(value);
                have_device = true;
            } else if (name == "new_key_inode") {
                j.new_key_inode = std::stoull(value);
                have_inode = true;
            } else {
                corrupt("Unknown field \"" + name + "\".");
            }
        } catch (const std::logic_error&) {
            corrupt("Field \"" + name + "\" has an invalid value.");
        }
    }
    if (!have_command || !have_device || !have_inode)
        corrupt("A field is missing.");
    return j;
}

void write_journal(const std::string& datadir, const Journal& journal) {
    fe_datakey::write_file_durably(datadir, journal_file, journal.serialize());
}

std::optional<Journal> read_journal(const std::string& datadir) {
    std::string path = datadir + "/" + journal_file;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT)
            return std::nullopt;
        fe_datakey::throw_io_error("could not open file \"" + path + "\"", errno);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return Journal::parse(text.str());
}

void remove_journal(const std::string& datadir) {
    std::string path = datadir + "/" + journal_file;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        fe_datakey::throw_io_error("could not remove file \"" + path + "\"", errno);
    fe_datakey::fsync_path(datadir + "/" + fe_datakey::key_directory, true);
}

} // namespace pg_datakey
