// The key check reader: any text is parsed or refused with check_invalid,
// and what it accepts serializes to a text that parses back the same.
#include "fe_datakey/error.hpp"
#include "fe_datakey/key.hpp"

#include "fuzz_support.hpp"

#include <cstdint>
#include <string>

using namespace fe_datakey;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    KeyCheck check;
    try {
        check = KeyCheck::parse(text);
    } catch (const Error& e) {
        FUZZ_CHECK(e.code() == ErrorCode::check_invalid);
        return 0;
    }
    FUZZ_CHECK(check.bits == 128 || check.bits == 256);
    FUZZ_CHECK(check.kcv.size() == 32);
    KeyCheck again = KeyCheck::parse(check.serialize());
    FUZZ_CHECK(again == check && again.version == check.version);
    return 0;
}
