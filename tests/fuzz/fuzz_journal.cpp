// The rewrap journal reader (pg_datakey): any text is parsed or refused with
// an Error, and what it accepts serializes to a text that parses back the
// same.
#include "journal.hpp"

#include "fe_datakey/error.hpp"

#include "fuzz_support.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    pg_datakey::Journal journal;
    try {
        journal = pg_datakey::Journal::parse(text);
    } catch (const fe_datakey::Error&) {
        return 0;
    }
    pg_datakey::Journal again = pg_datakey::Journal::parse(journal.serialize());
    FUZZ_CHECK(again.new_unwrap_command == journal.new_unwrap_command);
    FUZZ_CHECK(again.new_key_sha256 == journal.new_key_sha256);
    return 0;
}
