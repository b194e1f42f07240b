// SecureBuffer: a move-only, wiped, dump-excluded home for key bytes.
#include "fe_datakey/error.hpp"
#include "fe_datakey/secure_buffer.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using fe_datakey::ErrorCode;
using fe_datakey::SecureBuffer;

namespace {

SecureBuffer filled(const std::string& text) {
    SecureBuffer b(text.size() + 8);
    b.resize(text.size());
    std::memcpy(b.data(), text.data(), text.size());
    return b;
}

// The VmFlags line of the /proc/self/smaps entry that maps `p`.
std::string vm_flags_of(const void* p) {
    auto addr = reinterpret_cast<std::uintptr_t>(p);
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    bool inside = false;
    while (std::getline(smaps, line)) {
        unsigned long lo, hi;
        char dash;
        std::istringstream head(line);
        if (line.find(':') > line.find(' ') && (head >> std::hex >> lo >> dash >> hi) &&
            dash == '-') {
            inside = addr >= lo && addr < hi;
            continue;
        }
        if (inside && line.rfind("VmFlags:", 0) == 0)
            return line;
    }
    return {};
}

} // namespace

TEST(SecureBuffer, StartsEmptyAndZeroed) {
    SecureBuffer b(100);
    EXPECT_EQ(b.size(), 0u);
    EXPECT_EQ(b.capacity(), 100u);
    ASSERT_NE(b.data(), nullptr);
    b.resize(100);
    for (std::size_t i = 0; i < 100; i++)
        ASSERT_EQ(b.data()[i], 0) << i;
}

TEST(SecureBuffer, DefaultIsEmpty) {
    SecureBuffer b;
    EXPECT_EQ(b.data(), nullptr);
    EXPECT_EQ(b.size(), 0u);
    EXPECT_EQ(b.capacity(), 0u);
    EXPECT_TRUE(b.equals(SecureBuffer()));
}

TEST(SecureBuffer, ResizeBeyondCapacityThrows) {
    SecureBuffer b(10);
    b.resize(10);
    try {
        b.resize(11);
        FAIL() << "resize past the capacity succeeded";
    } catch (const fe_datakey::Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::internal);
    }
    EXPECT_EQ(b.size(), 10u);
}

TEST(SecureBuffer, ShrinkingWipesTheTail) {
    SecureBuffer b = filled("secret key bytes");
    b.resize(3);
    b.resize(16);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(b.data()), 3), "sec");
    for (std::size_t i = 3; i < 16; i++)
        EXPECT_EQ(b.data()[i], 0) << i;
}

TEST(SecureBuffer, EqualsComparesContents) {
    EXPECT_TRUE(filled("abcdef").equals(filled("abcdef")));
    EXPECT_FALSE(filled("abcdef").equals(filled("abcdeg")));
    EXPECT_FALSE(filled("abcdef").equals(filled("abcde")));
    EXPECT_FALSE(filled("").equals(filled("a")));
    EXPECT_TRUE(filled("").equals(SecureBuffer()));
}

TEST(SecureBuffer, MoveTransfersOwnership) {
    SecureBuffer a = filled("key");
    const unsigned char* p = a.data();
    SecureBuffer b(std::move(a));
    EXPECT_EQ(b.data(), p);
    EXPECT_EQ(b.size(), 3u);
    EXPECT_EQ(a.data(), nullptr); // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(a.size(), 0u);

    SecureBuffer c = filled("other");
    c = std::move(b);
    EXPECT_EQ(c.data(), p);
    EXPECT_TRUE(c.equals(filled("key")));
    EXPECT_EQ(b.data(), nullptr);
}

TEST(SecureBuffer, MappingIsExcludedFromCoreDumpsAndLockedWhenReported) {
    SecureBuffer b(64);
    std::string flags = vm_flags_of(b.data());
    ASSERT_FALSE(flags.empty()) << "mapping not found in /proc/self/smaps";
    EXPECT_NE(flags.find(" dd"), std::string::npos) << flags;
    if (b.locked())
        EXPECT_NE(flags.find(" lo"), std::string::npos) << flags;
    else
        EXPECT_EQ(flags.find(" lo"), std::string::npos) << flags;
}

TEST(SecureBuffer, ForkedChildSeesZeroesNotTheKey) {
    SecureBuffer b = filled("secret key bytes");
    ASSERT_TRUE(b.wiped_on_fork()) << "MADV_WIPEONFORK not applied (Linux 4.14 or later has it)";
    EXPECT_NE(vm_flags_of(b.data()).find(" wf"), std::string::npos) << vm_flags_of(b.data());
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // The child: exit 0 only if every byte it sees is zero.
        for (std::size_t i = 0; i < b.size(); i++)
            if (b.data()[i] != 0)
                _exit(1);
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the child saw the key bytes";
    // The parent keeps its copy.
    EXPECT_TRUE(b.equals(filled("secret key bytes")));
}
