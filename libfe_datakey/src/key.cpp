// Data key generation, layout and key check value.
#include "fe_datakey/key.hpp"

#include "fe_datakey/error.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>
#include <vector>

namespace fe_datakey {

namespace {

constexpr const char* check_label = "fe_datakey key check v1";
constexpr std::size_t kcv_bytes = 16;
constexpr const char* check_header = "fe_datakey key check ";

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    if (e == 0)
        return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

Error invalid_check(const std::string& detail) {
    return Error(ErrorCode::check_invalid, "invalid key check data", detail);
}

bool is_lower_hex(const std::string& s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

std::string bytes_count(std::size_t n) {
    return std::to_string(n) + (n == 1 ? " byte" : " bytes");
}

const char* length_hint(KeyOrigin origin) {
    if (origin == KeyOrigin::plaintext_file)
        return "A key stored without wrapping (\"-\") must be exactly the plaintext key, and "
               "nothing else. If the key file is wrapped, give its unwrap command instead of "
               "\"-\".";
    return "An unwrap command must write exactly the plaintext key to its standard output, and "
           "nothing else.";
}

// Nothing came: what was expected, and where.
Error empty_key(const std::string& source, const std::string& expected, KeyOrigin origin) {
    if (origin == KeyOrigin::plaintext_file)
        return Error(ErrorCode::output_empty, source + " is empty",
                     expected + " was expected in it.", length_hint(origin));
    return Error(ErrorCode::output_empty, source + " produced no output",
                 expected + " was expected on its standard output.", length_hint(origin));
}

} // namespace

std::size_t key_length_for_bits(int bits) {
    switch (bits) {
    case 128:
        return 16 + 16 + hmac_subkey_length;
    case 256:
        return 32 + 32 + hmac_subkey_length;
    default:
        throw Error(ErrorCode::usage,
                    "invalid data encryption key length: " + std::to_string(bits) + " bits",
                    std::string(), "Valid key lengths are 128 and 256 bits.");
    }
}

int key_bits_for_length(std::size_t length) {
    if (length == key_length_for_bits(128))
        return 128;
    if (length == key_length_for_bits(256))
        return 256;
    return 0;
}

Key Key::generate(int bits) {
    std::size_t length = key_length_for_bits(bits);
    SecureBuffer bytes(length);
    bytes.resize(length);
    if (RAND_priv_bytes(bytes.data(), static_cast<int>(length)) != 1)
        throw Error(ErrorCode::internal, "could not generate a data encryption key",
                    "The random number generator failed: " + openssl_error() + ".");
    return Key(bits, std::move(bytes));
}

Key Key::from_bytes(SecureBuffer bytes) {
    int bits = key_bits_for_length(bytes.size());
    if (bits == 0)
        throw Error(ErrorCode::internal, "invalid data encryption key length",
                    "A key has " + bytes_count(key_length_for_bits(128)) + " or " +
                        bytes_count(key_length_for_bits(256)) + ", not " +
                        std::to_string(bytes.size()) + ".");
    return Key(bits, std::move(bytes));
}

std::string Key::check_value() const {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_length = 0;
    if (HMAC(EVP_sha256(), bytes_.data(), static_cast<int>(bytes_.size()),
             reinterpret_cast<const unsigned char*>(check_label), std::strlen(check_label), mac,
             &mac_length) == nullptr ||
        mac_length < kcv_bytes)
        throw Error(ErrorCode::internal, "could not compute the key check value",
                    "HMAC-SHA256 failed: " + openssl_error() + ".");
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    for (std::size_t i = 0; i < kcv_bytes; i++) {
        hex += digits[mac[i] >> 4];
        hex += digits[mac[i] & 0xf];
    }
    OPENSSL_cleanse(mac, sizeof mac);
    return hex;
}

KeyCheck KeyCheck::of(const Key& key) {
    KeyCheck check;
    check.bits = key.bits();
    check.kcv = key.check_value();
    return check;
}

std::string KeyCheck::serialize() const {
    return std::string(check_header) + std::to_string(version) + "\nbits " + std::to_string(bits) +
           "\nkcv " + kcv + "\n";
}

KeyCheck KeyCheck::parse(const std::string& text) {
    // Exactly three newline-terminated lines; the final newline may be missing.
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    if (lines.empty())
        throw invalid_check("The key check is empty.");

    KeyCheck check;
    const std::string& first = lines[0];
    if (first.compare(0, std::strlen(check_header), check_header) != 0)
        throw invalid_check("The first line must be \"fe_datakey key check 1\".");
    std::string version = first.substr(std::strlen(check_header));
    if (version != "1") {
        if (!version.empty() && version.size() < 6 &&
            version.find_first_not_of("0123456789") == std::string::npos)
            throw invalid_check("Key check format version " + version +
                                " is not supported; this version of fe_datakey reads "
                                "version 1.");
        throw invalid_check("The first line must be \"fe_datakey key check 1\".");
    }

    if (lines.size() < 2 || (lines[1] != "bits 128" && lines[1] != "bits 256"))
        throw invalid_check("The second line must be \"bits 128\" or \"bits 256\".");
    check.bits = lines[1] == "bits 128" ? 128 : 256;

    if (lines.size() < 3 || lines[2].compare(0, 4, "kcv ") != 0 ||
        lines[2].size() != 4 + 2 * kcv_bytes || !is_lower_hex(lines[2].substr(4)))
        throw invalid_check("The third line must be \"kcv\" followed by " +
                            std::to_string(2 * kcv_bytes) + " lower-case hexadecimal digits.");
    check.kcv = lines[2].substr(4);

    if (lines.size() > 3)
        throw invalid_check("Unexpected data follows the key check value.");
    return check;
}

Key verify_key(SecureBuffer unwrapped, const KeyCheck& check, const std::string& source,
               KeyOrigin origin) {
    std::size_t expected = key_length_for_bits(check.bits);
    std::size_t got = unwrapped.size();
    if (got == 0)
        throw empty_key(source, "The data encryption key (" + bytes_count(expected) + ")", origin);
    if (got < expected)
        throw Error(ErrorCode::output_short, "data encryption key from " + source + " is too short",
                    "Expected " + bytes_count(expected) + ", got " + std::to_string(got) + ".",
                    length_hint(origin));
    if (got > expected)
        throw Error(ErrorCode::output_long, "data encryption key from " + source + " is too long",
                    "Expected " + bytes_count(expected) + ", got " + std::to_string(got) + ".",
                    length_hint(origin));
    Key key = Key::from_bytes(std::move(unwrapped));
    // Check values are not secret, but compare them in constant time anyway.
    std::string kcv = key.check_value();
    if (kcv.size() != check.kcv.size() ||
        CRYPTO_memcmp(kcv.data(), check.kcv.data(), kcv.size()) != 0) {
        std::string message =
            "data encryption key from " + source + " does not match the key check";
        if (origin == KeyOrigin::plaintext_file)
            throw Error(ErrorCode::key_mismatch, message,
                        "The key in the file has the right length, but its key check value "
                        "differs from the stored one.",
                        "The key file probably belongs to another cluster, or it is wrapped and "
                        "needs its unwrap command instead of \"-\".");
        throw Error(ErrorCode::key_mismatch, message,
                    "The unwrapped key has the right length, but its key check value differs "
                    "from the stored one.",
                    "The passphrase or master key used to unwrap the key is probably wrong, or "
                    "the key file belongs to another cluster.");
    }
    return key;
}

Key verify_key_length(SecureBuffer unwrapped, const std::string& source, KeyOrigin origin) {
    std::size_t got = unwrapped.size();
    std::string expected =
        bytes_count(key_length_for_bits(128)) + " or " + bytes_count(key_length_for_bits(256));
    if (got == 0)
        throw empty_key(source, "A data encryption key (" + expected + ")", origin);
    if (key_bits_for_length(got) == 0) {
        bool is_short = got < key_length_for_bits(256);
        throw Error(is_short ? ErrorCode::output_short : ErrorCode::output_long,
                    "data encryption key from " + source + " has an invalid length",
                    "Expected " + expected + ", got " + std::to_string(got) + ".",
                    length_hint(origin));
    }
    return Key::from_bytes(std::move(unwrapped));
}

} // namespace fe_datakey
