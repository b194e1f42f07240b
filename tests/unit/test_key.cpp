// Key layout, generation, key check value and verification of unwrapped keys.
#include "fe_datakey/error.hpp"
#include "fe_datakey/key.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <string>

using namespace fe_datakey;

namespace {

SecureBuffer bytes_of(const std::string& s) {
    SecureBuffer b(s.size() + 1);
    b.resize(s.size());
    if (!s.empty())
        std::memcpy(b.data(), s.data(), s.size());
    return b;
}

SecureBuffer counting(std::size_t n) {
    SecureBuffer b(n);
    b.resize(n);
    for (std::size_t i = 0; i < n; i++)
        b.data()[i] = static_cast<unsigned char>(i);
    return b;
}

SecureBuffer copy_of(const SecureBuffer& from) {
    SecureBuffer b(from.size());
    b.resize(from.size());
    std::memcpy(b.data(), from.data(), from.size());
    return b;
}

// PostgreSQL style: lower-case primary message without a trailing period;
// detail and hint are sentences.
void expect_style(const Error& e) {
    ASSERT_FALSE(e.message().empty());
    EXPECT_TRUE(std::islower(static_cast<unsigned char>(e.message()[0]))) << e.message();
    EXPECT_NE(e.message().back(), '.') << e.message();
    for (const std::string* s : {&e.detail(), &e.hint()})
        if (!s->empty()) {
            EXPECT_TRUE(std::isupper(static_cast<unsigned char>((*s)[0]))) << *s;
            EXPECT_EQ(s->back(), '.') << *s;
        }
}

ErrorCode code_of_parse(const std::string& text) {
    try {
        KeyCheck::parse(text);
    } catch (const Error& e) {
        expect_style(e);
        return e.code();
    }
    return ErrorCode::ok;
}

Error verify_error(SecureBuffer b, const KeyCheck& check,
                   KeyOrigin origin = KeyOrigin::unwrap_command) {
    try {
        verify_key(std::move(b), check,
                   origin == KeyOrigin::unwrap_command ? "key unwrap command"
                                                       : "key file \"pg_encryption/key.bin\"",
                   origin);
    } catch (const Error& e) {
        expect_style(e);
        return e;
    }
    return Error(ErrorCode::ok, "no error");
}

const std::string valid_check = "fe_datakey key check 1\nbits 128\n"
                                "kcv 5f44f307dfa5b4abaf51eb4dad34ab7f\n";

} // namespace

TEST(Key, LayoutLengths) {
    EXPECT_EQ(key_length_for_bits(128), 64u);
    EXPECT_EQ(key_length_for_bits(256), 96u);
    EXPECT_EQ(key_bits_for_length(64), 128);
    EXPECT_EQ(key_bits_for_length(96), 256);
    EXPECT_EQ(key_bits_for_length(65), 0);
    EXPECT_EQ(key_bits_for_length(0), 0);
    EXPECT_GE(max_key_length, key_length_for_bits(256));
    try {
        key_length_for_bits(192);
        FAIL() << "192 bits accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::usage);
        expect_style(e);
    }
}

TEST(Key, GeneratedKeysHaveTheLayoutLengthAndDiffer) {
    for (int bits : {128, 256}) {
        Key a = Key::generate(bits);
        Key b = Key::generate(bits);
        EXPECT_EQ(a.bits(), bits);
        EXPECT_EQ(a.bytes().size(), key_length_for_bits(bits));
        EXPECT_EQ(b.bytes().size(), key_length_for_bits(bits));
        EXPECT_FALSE(a.bytes().equals(b.bytes()));
        EXPECT_NE(a.check_value(), b.check_value());
    }
    EXPECT_THROW(Key::generate(512), Error);
}

TEST(Key, FromBytesRequiresALayoutLength) {
    EXPECT_EQ(Key::from_bytes(counting(64)).bits(), 128);
    EXPECT_EQ(Key::from_bytes(counting(96)).bits(), 256);
    EXPECT_THROW(Key::from_bytes(counting(63)), Error);
}

TEST(Key, CheckValueKnownAnswer) {
    // HMAC-SHA256(key, "fe_datakey key check v1"), first 16 bytes, computed
    // independently (Python's hmac module).
    EXPECT_EQ(Key::from_bytes(counting(64)).check_value(), "5f44f307dfa5b4abaf51eb4dad34ab7f");
    EXPECT_EQ(Key::from_bytes(counting(96)).check_value(), "2c88945acfb18872b28c9f1cfa5fec03");
}

TEST(KeyCheck, SerializesToTheDocumentedFormat) {
    KeyCheck c = KeyCheck::of(Key::from_bytes(counting(64)));
    EXPECT_EQ(c.version, 1);
    EXPECT_EQ(c.bits, 128);
    EXPECT_EQ(c.serialize(), valid_check);
    KeyCheck back = KeyCheck::parse(c.serialize());
    EXPECT_EQ(back, c);
    EXPECT_EQ(back.kcv, c.kcv);
}

TEST(KeyCheck, AcceptsAMissingFinalNewline) {
    KeyCheck c = KeyCheck::parse(valid_check.substr(0, valid_check.size() - 1));
    EXPECT_EQ(c.bits, 128);
    EXPECT_EQ(c.kcv, "5f44f307dfa5b4abaf51eb4dad34ab7f");
}

TEST(KeyCheck, RejectsMalformedText) {
    const char* bad[] = {
        "",
        "\n",
        "fe_datakey key check 1\n",
        "fe_datakey key check 1\nbits 128\n",
        "fe_datakey key check\nbits 128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\n",
        "fe_datakey key check 2\nbits 128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\n",
        "FE_DATAKEY key check 1\nbits 128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\n",
        "fe_datakey key check 1\nbits 192\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\n",
        "fe_datakey key check 1\nbits  128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\n",
        "fe_datakey key check 1\nbits 128\nkcv 5F44F307DFA5B4ABAF51EB4DAD34AB7F\n",
        "fe_datakey key check 1\nbits 128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7\n",
        "fe_datakey key check 1\nbits 128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f0\n",
        "fe_datakey key check 1\nbits 128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7g\n",
        "fe_datakey key check 1\nbits 128\nkcv  5f44f307dfa5b4abaf51eb4dad34ab7f\n",
        "fe_datakey key check 1\nbits 128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f \n",
        "fe_datakey key check 1\r\nbits 128\r\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\r\n",
        "fe_datakey key check 1\nbits 128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\n\n",
        "fe_datakey key check 1\nbits 128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\nextra\n",
        "bits 128\nfe_datakey key check 1\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\n",
    };
    for (const char* text : bad)
        EXPECT_EQ(code_of_parse(text), ErrorCode::check_invalid) << "accepted: " << text;
    EXPECT_EQ(code_of_parse(valid_check), ErrorCode::ok);
    static const char with_nul[] =
        "fe_datakey key check 1\nbits 128\0\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\n";
    EXPECT_EQ(code_of_parse(std::string(with_nul, sizeof with_nul - 1)), ErrorCode::check_invalid);
}

TEST(KeyCheck, NamesAnUnsupportedVersion) {
    try {
        KeyCheck::parse("fe_datakey key check 7\nbits 128\nkcv 5f44f307dfa5b4abaf51eb4dad34ab7f\n");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(e.detail().find("version 7"), std::string::npos) << e.detail();
    }
}

TEST(VerifyKey, AcceptsTheCheckedKey) {
    Key k = Key::generate(256);
    Key back = verify_key(copy_of(k.bytes()), KeyCheck::of(k), "key unwrap command");
    EXPECT_EQ(back.bits(), 256);
    EXPECT_TRUE(back.bytes().equals(k.bytes()));
}

TEST(VerifyKey, EmptyShortLongAndWrongAreDistinct) {
    Key k = Key::generate(128);
    KeyCheck check = KeyCheck::of(k);

    Error empty = verify_error(bytes_of(""), check);
    EXPECT_EQ(empty.code(), ErrorCode::output_empty);
    EXPECT_EQ(empty.message(), "key unwrap command produced no output");

    Error short_ = verify_error(counting(10), check);
    EXPECT_EQ(short_.code(), ErrorCode::output_short);
    EXPECT_NE(short_.detail().find("Expected 64 bytes, got 10."), std::string::npos)
        << short_.detail();

    Error long_ = verify_error(counting(65), check);
    EXPECT_EQ(long_.code(), ErrorCode::output_long);
    EXPECT_NE(long_.detail().find("Expected 64 bytes, got 65."), std::string::npos)
        << long_.detail();

    Error wrong = verify_error(counting(64), check);
    EXPECT_EQ(wrong.code(), ErrorCode::key_mismatch);
    EXPECT_NE(wrong.hint().find("passphrase or master key"), std::string::npos) << wrong.hint();

    // A 128-bit key checked against a 256-bit key check is too short.
    EXPECT_EQ(verify_error(copy_of(k.bytes()), KeyCheck::of(Key::generate(256))).code(),
              ErrorCode::output_short);
}

// "-" mode: no command ran, the key file was read as it is.
TEST(VerifyKey, PlaintextFileErrorsSpeakOfTheFile) {
    Key k = Key::generate(128);
    KeyCheck check = KeyCheck::of(k);
    auto plain = KeyOrigin::plaintext_file;

    Error empty = verify_error(bytes_of(""), check, plain);
    EXPECT_EQ(empty.code(), ErrorCode::output_empty);
    EXPECT_EQ(empty.message(), "key file \"pg_encryption/key.bin\" is empty");
    EXPECT_EQ(empty.detail(), "The data encryption key (64 bytes) was expected in it.");

    Error short_ = verify_error(counting(10), check, plain);
    EXPECT_EQ(short_.code(), ErrorCode::output_short);
    EXPECT_EQ(short_.message(),
              "data encryption key from key file \"pg_encryption/key.bin\" is too short");
    EXPECT_EQ(short_.detail(), "Expected 64 bytes, got 10.");

    Error long_ = verify_error(counting(65), check, plain);
    EXPECT_EQ(long_.code(), ErrorCode::output_long);

    Error wrong = verify_error(counting(64), check, plain);
    EXPECT_EQ(wrong.code(), ErrorCode::key_mismatch);

    for (const Error* e : {&empty, &short_, &long_, &wrong}) {
        EXPECT_EQ(e->hint().find("unwrap command must write"), std::string::npos) << e->hint();
        EXPECT_EQ(e->hint().find("passphrase"), std::string::npos) << e->hint();
        EXPECT_EQ(e->detail().find("standard output"), std::string::npos) << e->detail();
        EXPECT_EQ(e->detail().find("unwrapped"), std::string::npos) << e->detail();
        EXPECT_NE(e->hint().find("key file"), std::string::npos) << e->hint();
    }

    try {
        verify_key_length(counting(20), "key file \"k.bin\"", plain);
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::output_short);
        EXPECT_EQ(e.hint().find("unwrap command must write"), std::string::npos) << e.hint();
    }
}

TEST(VerifyKey, MessagesNeverHoldKeyBytes) {
    Key k = Key::generate(128);
    SecureBuffer printable(70);
    printable.resize(70);
    std::memset(printable.data(), 'Q', 70);
    Error e = verify_error(std::move(printable), KeyCheck::of(k));
    EXPECT_EQ(e.code(), ErrorCode::output_long);
    for (const std::string* s : {&e.message(), &e.detail(), &e.hint()})
        EXPECT_EQ(s->find("QQ"), std::string::npos) << *s;
}

TEST(VerifyKey, LengthOnlyWithoutACheck) {
    EXPECT_EQ(verify_key_length(counting(96), "key unwrap command").bits(), 256);
    auto code = [](std::size_t n) {
        try {
            verify_key_length(counting(n), "key unwrap command");
        } catch (const Error& e) {
            return e.code();
        }
        return ErrorCode::ok;
    };
    EXPECT_EQ(code(0), ErrorCode::output_empty);
    EXPECT_EQ(code(20), ErrorCode::output_short);
    EXPECT_EQ(code(97), ErrorCode::output_long);
    EXPECT_EQ(code(64), ErrorCode::ok);
}
