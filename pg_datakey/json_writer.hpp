// Just enough JSON for status --json: objects, arrays, strings, numbers,
// booleans and null, with strings escaped per RFC 8259.
#pragma once

#include <string>

namespace pg_datakey {

std::string json_string(const std::string& text);

class JsonWriter {
public:
    void begin_object();
    void end_object();
    void begin_array();
    void end_array();
    void key(const std::string& name);
    void string(const std::string& value);
    void number(long long value);
    void boolean(bool value);
    void null();
    const std::string& text() const { return out_; }

private:
    void separate();
    std::string out_;
    bool need_comma_ = false;
};

} // namespace pg_datakey
