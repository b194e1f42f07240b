// The data key: generation, layout and the key check value that verifies an
// unwrapped key without revealing it.
#pragma once

#include "fe_datakey/secure_buffer.hpp"

#include <cstddef>
#include <string>

namespace fe_datakey {

// The plaintext key is several sub-keys concatenated, a fixed layout per AES
// key length: relation data key, WAL key (each bits/8 bytes) and a 32-byte
// HMAC key. Its length therefore identifies the AES key length.
constexpr std::size_t hmac_subkey_length = 32;
std::size_t key_length_for_bits(int bits);   // 128 -> 64, 256 -> 96; throws on other bits
int key_bits_for_length(std::size_t length); // inverse; 0 if no layout has that length
constexpr std::size_t max_key_length = 96;

class Key {
public:
    static Key generate(int bits); // 128 or 256, from OpenSSL's private CSPRNG
    // Takes ownership of bytes that must have a valid layout length.
    static Key from_bytes(SecureBuffer bytes);

    int bits() const noexcept { return bits_; }
    const SecureBuffer& bytes() const noexcept { return bytes_; }
    std::string check_value() const; // hex of the truncated HMAC, see KeyCheck

private:
    Key(int bits, SecureBuffer bytes) : bits_(bits), bytes_(std::move(bytes)) {}
    int bits_;
    SecureBuffer bytes_;
};

// The non-secret key check file (pg_encryption/key.check):
//   fe_datakey key check 1
//   bits 128
//   kcv <32 hex digits: HMAC-SHA256 under the key of a fixed label, truncated to 16 bytes>
struct KeyCheck {
    int version = 1;
    int bits = 0;
    std::string kcv;

    static KeyCheck of(const Key& key);
    static KeyCheck parse(const std::string& text); // throws check_invalid
    std::string serialize() const;
    bool operator==(const KeyCheck& o) const { return bits == o.bits && kcv == o.kcv; }
    bool operator!=(const KeyCheck& o) const { return !(*this == o); }
};

// Where the bytes to verify came from, for the detail and hint of errors.
enum class KeyOrigin {
    unwrap_command, // the standard output of an unwrap command
    plaintext_file, // a key file read as it is ("-" mode)
};

// Verifies unwrapped output against a key check: empty, short (shorter than
// the checked key), long, and wrong key are each a distinct error.
// `source` names who produced the bytes in messages ("key unwrap command",
// "key file \"...\"").
Key verify_key(SecureBuffer unwrapped, const KeyCheck& check, const std::string& source,
               KeyOrigin origin = KeyOrigin::unwrap_command);

// The same checks for a key with no key check to compare with (a key file
// given by the user with no key.check beside it): only its length is checked.
Key verify_key_length(SecureBuffer unwrapped, const std::string& source,
                      KeyOrigin origin = KeyOrigin::unwrap_command);

} // namespace fe_datakey
