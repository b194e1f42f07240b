// The JSON writer behind status --json: string escaping and comma bookkeeping only.
#include "json_writer.hpp"

#include <cstdio>

namespace pg_datakey {

std::string json_string(const std::string& text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out + "\"";
}

void JsonWriter::separate() {
    if (need_comma_)
        out_ += ",";
    need_comma_ = true;
}

void JsonWriter::begin_object() {
    separate();
    out_ += "{";
    need_comma_ = false;
}
void JsonWriter::end_object() {
    out_ += "}";
    need_comma_ = true;
}
void JsonWriter::begin_array() {
    separate();
    out_ += "[";
    need_comma_ = false;
}
void JsonWriter::end_array() {
    out_ += "]";
    need_comma_ = true;
}
void JsonWriter::key(const std::string& name) {
    separate();
    out_ += json_string(name) + ":";
    need_comma_ = false;
}
void JsonWriter::string(const std::string& value) {
    separate();
    out_ += json_string(value);
}
void JsonWriter::number(long long value) {
    separate();
    out_ += std::to_string(value);
}
void JsonWriter::boolean(bool value) {
    separate();
    out_ += value ? "true" : "false";
}
void JsonWriter::null() {
    separate();
    out_ += "null";
}

} // namespace pg_datakey
