// The rewrap journal: its text format, durable write, read, and the new key file's SHA-256.
#include "journal.hpp"

#include "exit_status.hpp"
#include "paths.hpp"

#include "fe_datakey/conf.hpp"
#include "fe_datakey/regular_file.hpp"
#include "fe_datakey/secure_buffer.hpp"
#include "fe_datakey/store.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <memory>
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
        << "new_key_sha256 " << new_key_sha256 << "\n";
    if (!config_file.empty())
        out << "config_file " << fe_datakey::quote_conf_value(config_file) << "\n";
    out << "new_key_verified " << (new_key_verified ? "yes" : "no") << "\n";
    return out.str();
}

Journal Journal::parse(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    if (!std::getline(in, line) || line != header)
        corrupt("The first line is not \"" + std::string(header) + "\".");
    Journal j;
    bool have_command = false, have_digest = false;
    while (std::getline(in, line)) {
        auto space = line.find(' ');
        if (space == std::string::npos)
            corrupt("A line has no value.");
        std::string name = line.substr(0, space), value = line.substr(space + 1);
        if (name == "new_unwrap_command") {
            if (value.size() < 2 || value.front() != '\'' || value.back() != '\'')
                corrupt("The command is not quoted.");
            j.new_unwrap_command = fe_datakey::unquote_conf_value(value);
            have_command = true;
        } else if (name == "new_key_sha256") {
            if (value.size() != 64 ||
                value.find_first_not_of("0123456789abcdef") != std::string::npos)
                corrupt("Field \"new_key_sha256\" has an invalid value.");
            j.new_key_sha256 = value;
            have_digest = true;
        } else if (name == "config_file") {
            if (value.size() < 2 || value.front() != '\'' || value.back() != '\'')
                corrupt("The configuration file is not quoted.");
            j.config_file = fe_datakey::unquote_conf_value(value);
        } else if (name == "new_key_verified") {
            if (value != "yes" && value != "no")
                corrupt("Field \"new_key_verified\" has an invalid value.");
            j.new_key_verified = value == "yes";
        } else {
            corrupt("Unknown field \"" + name + "\".");
        }
    }
    if (!have_command || !have_digest)
        corrupt("A field is missing.");
    return j;
}

std::string file_sha256(const std::string& path) {
    fe_datakey::FileHandle file =
        fe_datakey::open_regular_file(path, "file", path, fe_datakey::Links::refuse);
    if (file.get() < 0)
        fe_datakey::throw_io_error("could not open file \"" + path + "\"", ENOENT);
    int fd = file.get();
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
        throw fe_datakey::Error(fe_datakey::ErrorCode::internal, "could not compute a SHA-256");
    }
    // In "-" mode the file is the plaintext key: no stream or stack buffer
    // holds it, only locked memory that is wiped when freed.
    fe_datakey::SecureBuffer buf(4096);
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.capacity());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fe_datakey::throw_io_error("could not read file \"" + path + "\"", errno);
        if (n == 0)
            break;
        EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

void write_journal(const std::string& datadir, const Journal& journal) {
    fe_datakey::write_file_durably(datadir, journal_file, journal.serialize());
}

std::optional<Journal> read_journal(const std::string& datadir) {
    std::string path = datadir + "/" + journal_file;
    std::optional<std::string> text = fe_datakey::read_regular_file_if_exists(
        path, "rewrap journal", path, fe_datakey::Links::refuse, 1 << 20);
    if (!text)
        return std::nullopt;
    return Journal::parse(*text);
}

void remove_journal(const std::string& datadir) {
    std::string path = datadir + "/" + journal_file;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        fe_datakey::throw_io_error("could not remove file \"" + path + "\"", errno);
    fe_datakey::fsync_path(datadir + "/" + fe_datakey::key_directory, true);
}

} // namespace pg_datakey
