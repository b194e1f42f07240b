// Reading and writing data_encryption_key_unwrap_command in postgresql.conf
// with the quoting rules of PostgreSQL's configuration file parser.
#include "fe_datakey/conf.hpp"

#include "fe_datakey/durable_file.hpp"
#include "fe_datakey/error.hpp"
#include "fe_datakey/regular_file.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace fe_datakey {
namespace {

struct ConfLine {
    std::string text;   // without the line ending
    std::string ending; // "\n", "\r\n" or "" (last line without one)
};

std::vector<ConfLine> split_lines(const std::string& content) {
    std::vector<ConfLine> lines;
    std::size_t pos = 0;
    while (pos < content.size()) {
        std::size_t nl = content.find('\n', pos);
        if (nl == std::string::npos) {
            lines.push_back({content.substr(pos), ""});
            break;
        }
        std::size_t end = nl;
        if (end > pos && content[end - 1] == '\r')
            --end;
        lines.push_back({content.substr(pos, end - pos), content.substr(end, nl + 1 - end)});
        pos = nl + 1;
    }
    return lines;
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\f' || c == '\r';
}

// The value a line sets for our parameter, or nullopt when the line is a
// comment, blank, or about another parameter. The raw value token is
// returned undecoded.
std::optional<std::string> setting_value_token(const std::string& line) {
    std::size_t i = 0;
    while (i < line.size() && is_space(line[i]))
        ++i;
    std::size_t name_start = i;
    while (i < line.size() &&
           (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == '.'))
        ++i;
    std::string name = line.substr(name_start, i - name_start);
    if (name.empty() || strcasecmp(name.c_str(), unwrap_command_setting) != 0)
        return std::nullopt;
    while (i < line.size() && is_space(line[i]))
        ++i;
    if (i < line.size() && line[i] == '=')
        ++i;
    while (i < line.size() && is_space(line[i]))
        ++i;
    if (i < line.size() && line[i] == '\'') {
        std::size_t j = i + 1;
        while (j < line.size()) {
            if (line[j] == '\\' && j + 1 < line.size())
                j += 2;
            else if (line[j] == '\'' && j + 1 < line.size() && line[j + 1] == '\'')
                j += 2;
            else if (line[j] == '\'')
                return line.substr(i, j + 1 - i);
            else
                ++j;
        }
        return line.substr(i); // unterminated: the server rejects it; decode what is there
    }
    std::size_t j = i;
    while (j < line.size() && !is_space(line[j]) && line[j] != '#')
        ++j;
    return line.substr(i, j - i);
}

// Larger than any configuration file PostgreSQL would be given.
constexpr std::size_t conf_read_limit = 64 << 20;

std::string read_whole_file(const std::string& path) {
    return read_regular_file(path, "configuration file", path, Links::follow, conf_read_limit);
}

// The file a path names, through any symbolic links: replacing a link by a
// renamed file would cut it off from where the administrator keeps the file.
std::string link_target(const std::string& path) {
    std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr),
                                                         &std::free);
    if (!resolved)
        throw_io_error("could not resolve file \"" + path + "\"", errno);
    return resolved.get();
}

// Replaces `path` (a link's target) by `content` durably, keeping its mode,
// owner and group: the server must still be able to read the file, and an
// administrator's choice of group stays.
void replace_file_atomically(const std::string& path, const std::string& content) {
    std::string target = link_target(path);
    struct stat st {};
    if (::stat(target.c_str(), &st) != 0)
        throw_io_error("could not stat file \"" + target + "\"", errno);
    replace_file_durably(target, target + conf_temporary_suffix, content.data(), content.size(),
                         st.st_mode & 07777, FileOwner{st.st_uid, st.st_gid});
}

} // namespace

std::string quote_conf_value(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        switch (c) {
        case '\'':
            out += "''";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            out += c;
        }
    }
    return out + "'";
}

std::string unquote_conf_value(const std::string& token) {
    if (token.size() < 2 || token.front() != '\'' || token.back() != '\'')
        return token; // an unquoted value is taken as it is
    std::string in = token.substr(1, token.size() - 2);
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '\'' && i + 1 < in.size() && in[i + 1] == '\'') {
            out += '\'';
            ++i;
        } else if (c == '\\' && i + 1 < in.size()) {
            char e = in[++i];
            switch (e) {
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case '0':
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
            case '7': {
                int octal = e - '0';
                for (int k = 0; k < 2 && i + 1 < in.size() && in[i + 1] >= '0' && in[i + 1] <= '7';
                     ++k)
                    octal = octal * 8 + (in[++i] - '0');
                out += static_cast<char>(octal);
                break;
            }
            default:
                out += e;
            }
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::string> get_conf_unwrap_command(const std::string& path) {
    std::optional<std::string> value;
    for (const auto& line : split_lines(read_whole_file(path)))
        if (auto token = setting_value_token(line.text))
            value = unquote_conf_value(*token); // the last setting wins, as in the server
    return value;
}

void set_conf_unwrap_command(const std::string& path, const std::string& command) {
    auto lines = split_lines(read_whole_file(path));
    std::string setting = std::string(unwrap_command_setting) + " = " + quote_conf_value(command);
    ConfLine* last = nullptr;
    for (auto& line : lines)
        if (setting_value_token(line.text))
            last = &line;
    if (last != nullptr) {
        last->text = setting;
    } else {
        if (!lines.empty() && lines.back().ending.empty())
            lines.back().ending = "\n";
        lines.push_back({setting, "\n"});
    }
    std::string content;
    for (const auto& line : lines)
        content += line.text + line.ending;
    replace_file_atomically(path, content);
}

std::optional<std::string> configured_unwrap_command(const std::string& datadir) {
    std::optional<std::string> value;
    for (const char* name : {"postgresql.conf", "postgresql.auto.conf"}) {
        std::string path = datadir + "/" + name;
        if (::access(path.c_str(), F_OK) != 0)
            continue;
        if (auto v = get_conf_unwrap_command(path))
            value = v;
    }
    return value;
}

std::string shell_quote(const std::string& word) {
    std::string out = "'";
    for (char c : word) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

std::optional<std::string> configured_unwrap_command_from(const std::string& datadir,
                                                          const std::string& config_file) {
    std::optional<std::string> value;
    for (const std::string& path : {config_file, datadir + "/postgresql.auto.conf"}) {
        if (::access(path.c_str(), F_OK) != 0)
            continue;
        if (auto v = get_conf_unwrap_command(path))
            value = v;
    }
    return value;
}

} // namespace fe_datakey
