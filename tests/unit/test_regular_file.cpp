// The regular-file rule: every kind of file that is not one is refused by
// name and type before it is opened, a FIFO never blocks, and symbolic
// links are refused or followed as the caller says.
#include "fe_datakey/error.hpp"
#include "fe_datakey/regular_file.hpp"

#include "library_helpers.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

using namespace fe_datakey;

namespace {

class RegularFile : public ::testing::Test {
protected:
    TempDir dir;
    void write(const std::string& name, const std::string& text) {
        std::ofstream(dir / name, std::ios::binary) << text;
    }
    // The error of opening, checking and reading `name` under `links`: all
    // three must agree.
    Error refusal(const std::string& name, Links links) {
        Error check =
            error_of([&] { check_regular_file(dir / name, "key check file", name, links); });
        Error open =
            error_of([&] { open_regular_file(dir / name, "key check file", name, links); });
        Error read =
            error_of([&] { read_regular_file(dir / name, "key check file", name, links, 100); });
        EXPECT_EQ(check.message(), open.message());
        EXPECT_EQ(check.message(), read.message());
        EXPECT_EQ(check.detail(), open.detail());
        return check;
    }
};

void make_socket(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof addr.sun_path);
    std::strcpy(addr.sun_path, path.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    close(fd);
}

} // namespace

TEST_F(RegularFile, ARegularFileIsReadWhole) {
    write("key.check", "version 1\n");
    EXPECT_TRUE(
        check_regular_file(dir / "key.check", "key check file", "key.check", Links::refuse));
    EXPECT_EQ(
        read_regular_file(dir / "key.check", "key check file", "key.check", Links::refuse, 100),
        "version 1\n");
    // Blocking again once opened: the reader sees the file as usual.
    FileHandle fd =
        open_regular_file(dir / "key.check", "key check file", "key.check", Links::refuse);
    ASSERT_GE(fd.get(), 0);
    EXPECT_EQ(fcntl(fd.get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST_F(RegularFile, NothingThereIsNotAnErrorToCheckOrOpen) {
    EXPECT_FALSE(check_regular_file(dir / "none", "key check file", "none", Links::refuse));
    EXPECT_LT(open_regular_file(dir / "none", "key check file", "none", Links::refuse).get(), 0);
    Error e = error_of([&] { read_regular_file(dir / "none", "file", "none", Links::refuse, 10); });
    EXPECT_EQ(e.code(), ErrorCode::io);
    EXPECT_EQ(e.message(), "could not open file \"none\": No such file or directory");
}

TEST_F(RegularFile, AFifoIsRefusedAtOnceWithoutAWriter) {
    // open() of a FIFO for reading waits for a writer: none ever comes.
    ASSERT_EQ(mkfifo((dir / "key.check").c_str(), 0600), 0);
    auto start = std::chrono::steady_clock::now();
    Error e = refusal("key.check", Links::refuse);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    EXPECT_EQ(e.code(), ErrorCode::io);
    EXPECT_EQ(e.message(), "key check file \"key.check\" is not a regular file");
    EXPECT_EQ(e.detail(), "It is a FIFO.");
    EXPECT_EQ(refusal("key.check", Links::follow).detail(), "It is a FIFO.");
    EXPECT_TRUE(is_not_regular_file_error(e));
    EXPECT_FALSE(is_not_regular_file_error(
        error_of([&] { read_regular_file(dir / "none", "file", "none", Links::refuse, 10); })));
    EXPECT_FALSE(read_regular_file_if_exists(dir / "none", "file", "none", Links::refuse, 10));
}

TEST_F(RegularFile, EachOtherTypeIsNamed) {
    ASSERT_EQ(mkdir((dir / "d").c_str(), 0700), 0);
    EXPECT_EQ(refusal("d", Links::refuse).detail(), "It is a directory.");
    make_socket(dir / "s");
    EXPECT_EQ(refusal("s", Links::refuse).detail(), "It is a socket.");
    // A device through a link the caller follows: /dev/null is one everywhere.
    ASSERT_EQ(symlink("/dev/null", (dir / "dev").c_str()), 0);
    EXPECT_EQ(refusal("dev", Links::follow).detail(), "It is a character device.");
}

TEST_F(RegularFile, ASymbolicLinkIsRefusedOrFollowedAsAsked) {
    write("target", "data");
    ASSERT_EQ(symlink((dir / "target").c_str(), (dir / "link").c_str()), 0);
    Error e = refusal("link", Links::refuse);
    EXPECT_EQ(e.message(), "key check file \"link\" is not a regular file");
    EXPECT_EQ(e.detail(), "It is a symbolic link.");
    EXPECT_NE(e.hint().find("base backups skip symbolic links"), std::string::npos) << e.hint();
    EXPECT_EQ(read_regular_file(dir / "link", "file", "link", Links::follow, 100), "data");
    // A dangling link: refused as a link, missing when followed.
    ASSERT_EQ(symlink((dir / "gone").c_str(), (dir / "dangling").c_str()), 0);
    EXPECT_EQ(refusal("dangling", Links::refuse).detail(), "It is a symbolic link.");
    EXPECT_FALSE(check_regular_file(dir / "dangling", "file", "dangling", Links::follow));
}

TEST_F(RegularFile, AFileLargerThanTheLimitIsRefused) {
    write("big", std::string(101, 'x'));
    Error e = error_of(
        [&] { read_regular_file(dir / "big", "rewrap journal", "big", Links::refuse, 100); });
    EXPECT_EQ(e.message(), "rewrap journal \"big\" is too large");
    EXPECT_EQ(e.detail(), "It is larger than 100 bytes.");
}
