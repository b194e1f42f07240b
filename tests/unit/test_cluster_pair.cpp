// Two clusters that must share one data encryption key, through the C API
// the pg_rewind and pg_upgrade adapters call: the comparison, its messages,
// and the hand-over of the unwrap command to the servers.
#include "env_guard.hpp"
#include "fe_datakey/fe_datakey.h"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace {

const fe_datakey_pair_names names = {"old and new clusters", "old",         "new", "Copy the key.",
                                     "Do not encrypt.",      "Use one key."};

// A data directory with a key store made with "cat", or none.
struct Dir {
    TempDir dir;
    explicit Dir(const fe_datakey_key* key) {
        ::chmod(dir.path().c_str(), 0700);
        fe_datakey_error* err = nullptr;
        if (key != nullptr &&
            !fe_datakey_store_create(dir.path().c_str(), "cat > \"%p\"", key, 0, &err))
            throw std::runtime_error(fe_datakey_error_message(err));
    }
    const char* path() const { return dir.path().c_str(); }
};

// A pair made from a command line with the given arguments after "prog".
struct Pair {
    std::vector<std::string> args;
    std::vector<char*> argv;
    fe_datakey_pair* pair = nullptr;
    fe_datakey_error* err = nullptr;
    explicit Pair(std::vector<std::string> extra) : args(std::move(extra)) {
        args.insert(args.begin(), "prog");
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        int argc = static_cast<int>(args.size());
        pair = fe_datakey_pair_new(&names, &argc, argv.data(), "", nullptr, &err);
    }
    ~Pair() {
        fe_datakey_pair_free(pair);
        fe_datakey_error_free(err);
    }
    std::string message() const { return fe_datakey_error_message(err); }
    std::string detail() const {
        const char* d = fe_datakey_error_detail(err);
        return d != nullptr ? d : "";
    }
    std::string hint() const {
        const char* h = fe_datakey_error_hint(err);
        return h != nullptr ? h : "";
    }
};

struct Keys {
    fe_datakey_error* err = nullptr;
    fe_datakey_key* a = fe_datakey_key_generate(128, &err);
    fe_datakey_key* b = fe_datakey_key_generate(128, &err);
    ~Keys() {
        fe_datakey_key_free(a);
        fe_datakey_key_free(b);
    }
};

} // namespace

TEST(ClusterPair, UnencryptedClustersAgree) {
    EnvGuard env;
    env.set(FE_DATAKEY_UNWRAP_VARIABLE, std::nullopt);
    Dir a(nullptr), b(nullptr);
    Pair p({});
    ASSERT_NE(p.pair, nullptr);
    ASSERT_EQ(fe_datakey_pair_set_directory(p.pair, FE_DATAKEY_PAIR_FIRST, a.path(), nullptr, 0, 0,
                                            1, &p.err),
              1);
    ASSERT_EQ(fe_datakey_pair_set_directory(p.pair, FE_DATAKEY_PAIR_SECOND, b.path(), nullptr, 0, 0,
                                            1, &p.err),
              1);
    EXPECT_EQ(fe_datakey_pair_compare(p.pair, &p.err), 1);
    EXPECT_STREQ(fe_datakey_pair_server_options(p.pair), "");
}

TEST(ClusterPair, StatesThatDifferNameBothClustersInOrder) {
    Keys keys;
    Dir a(keys.a), b(nullptr);
    Pair p({});
    ASSERT_EQ(fe_datakey_pair_set_directory(p.pair, 0, a.path(), nullptr, 1, 128, 1, &p.err), 1);
    ASSERT_EQ(fe_datakey_pair_set_directory(p.pair, 1, b.path(), nullptr, 0, 0, 1, &p.err), 1);
    EXPECT_EQ(fe_datakey_pair_compare(p.pair, &p.err), 0);
    EXPECT_EQ(fe_datakey_error_code(p.err), FE_DATAKEY_E_NOT_ENCRYPTED);
    EXPECT_EQ(p.message(), "old and new clusters differ in data encryption");
    EXPECT_EQ(p.detail(),
              "The old cluster is encrypted, the new cluster is not encrypted, as their "
              "control files record.");
    EXPECT_EQ(p.hint(), "Copy the key.");

    Pair q({});
    ASSERT_EQ(fe_datakey_pair_set_directory(q.pair, 0, b.path(), nullptr, 0, 0, 1, &q.err), 1);
    ASSERT_EQ(fe_datakey_pair_set_remote(q.pair, 1, 1, 256, "x", 1, &q.err), 0);
    EXPECT_EQ(fe_datakey_error_code(q.err), FE_DATAKEY_E_CHECK_INVALID);
    ASSERT_EQ(fe_datakey_pair_set_remote(q.pair, 1, 1, 256, nullptr, 0, &q.err), 0);
    EXPECT_EQ(q.message(), "new server has no key check file");
    ASSERT_EQ(fe_datakey_pair_set_remote(q.pair, 1, 0, 0, nullptr, 0, &q.err), 1);
    Pair r({});
    ASSERT_EQ(fe_datakey_pair_set_directory(r.pair, 0, a.path(), nullptr, 1, 128, 0, &r.err), 1);
    fe_datakey_check check;
    fe_datakey_key_check_of(keys.a, &check);
    std::string text = "fe_datakey key check 1\nbits 128\nkcv " + std::string(check.kcv) + "\n";
    ASSERT_EQ(fe_datakey_pair_set_remote(r.pair, 1, 1, 256, text.c_str(), text.size(), &r.err), 0);
    EXPECT_EQ(r.message(), "new server's key check does not match its pg_control");
    ASSERT_EQ(fe_datakey_pair_set_remote(r.pair, 1, 1, 128, text.c_str(), text.size(), &r.err), 1);
    EXPECT_EQ(fe_datakey_pair_compare(r.pair, &r.err), 1);
}

TEST(ClusterPair, AClusterWhoseFilesDisagreeIsNamed) {
    Keys keys;
    Dir a(keys.a);
    Pair p({});
    EXPECT_EQ(fe_datakey_pair_set_directory(p.pair, 1, a.path(), nullptr, 0, 0, 1, &p.err), 0);
    EXPECT_EQ(p.message(), "new cluster: data directory holds a data encryption key, but "
                           "pg_control says the cluster is not encrypted");
    Pair q({});
    EXPECT_EQ(fe_datakey_pair_compare(q.pair, &q.err), 0);
    EXPECT_EQ(q.message(), "key state of the old cluster is unknown");
}

TEST(ClusterPair, DifferentKeysAreFoundBeforeAnyCommandRuns) {
    Keys keys;
    Dir a(keys.a), b(keys.b);
    Pair p({"--key-unwrap-command=false %p"});
    ASSERT_EQ(fe_datakey_pair_set_directory(p.pair, 0, a.path(), nullptr, 1, 128, 1, &p.err), 1);
    ASSERT_EQ(fe_datakey_pair_set_directory(p.pair, 1, b.path(), nullptr, 1, 128, 1, &p.err), 1);
    EXPECT_EQ(fe_datakey_pair_compare(p.pair, &p.err), 0);
    EXPECT_EQ(fe_datakey_error_code(p.err), FE_DATAKEY_E_KEY_MISMATCH);
    EXPECT_EQ(p.message(), "old and new clusters use different data encryption keys");
    EXPECT_EQ(p.detail().rfind("Both clusters are encrypted, the old with a 128-bit key whose "
                               "check value is ",
                               0),
              0u)
        << p.detail();
    EXPECT_EQ(p.hint(), "Use one key.");
}

TEST(ClusterPair, TheKeyIsUnwrappedAndTheCommandHandedOver) {
    EnvGuard env;
    env.set(FE_DATAKEY_UNWRAP_VARIABLE, std::nullopt);
    Keys keys;
    Dir a(keys.a);
    TempDir copy;
    ::chmod(copy.path().c_str(), 0700);
    fe_datakey_error* err = nullptr;
    ASSERT_EQ(fe_datakey_store_create(copy.path().c_str(), "cat > \"%p\"", keys.a, 0, &err), 1);

    // A failing command: the cluster is named, the library's detail kept.
    Pair bad({"--key-unwrap-command=exit 3; %p"});
    ASSERT_EQ(fe_datakey_pair_set_directory(bad.pair, 0, a.path(), nullptr, 1, 128, 1, &bad.err),
              1);
    ASSERT_EQ(fe_datakey_pair_set_directory(bad.pair, 1, copy.path().c_str(), nullptr, 1, 128, 0,
                                            &bad.err),
              1);
    EXPECT_EQ(fe_datakey_pair_compare(bad.pair, &bad.err), 0);
    EXPECT_EQ(bad.message().rfind("could not load the data encryption key of the old cluster: ", 0),
              0u)
        << bad.message();
    EXPECT_EQ(std::getenv(FE_DATAKEY_UNWRAP_VARIABLE), nullptr);
    EXPECT_STREQ(fe_datakey_pair_server_options(bad.pair), "");

    Pair p({"--key-unwrap-command=cat \"%p\""});
    ASSERT_EQ(fe_datakey_pair_set_directory(p.pair, 0, a.path(), nullptr, 1, 128, 1, &p.err), 1);
    ASSERT_EQ(
        fe_datakey_pair_set_directory(p.pair, 1, copy.path().c_str(), nullptr, 1, 128, 1, &p.err),
        1);
    EXPECT_EQ(fe_datakey_pair_compare(p.pair, &p.err), 1) << p.message();
    ASSERT_NE(std::getenv(FE_DATAKEY_UNWRAP_VARIABLE), nullptr);
    EXPECT_STREQ(std::getenv(FE_DATAKEY_UNWRAP_VARIABLE), "cat \"%p\"");
    EXPECT_STREQ(fe_datakey_pair_server_options(p.pair), " -c " FE_DATAKEY_UNWRAP_SETTING "=");
}

TEST(ClusterPair, WithoutAGivenCommandTheConfiguredOneIsUsedAndNothingHandedOver) {
    EnvGuard env;
    env.set(FE_DATAKEY_UNWRAP_VARIABLE, std::nullopt);
    Keys keys;
    Dir a(keys.a);
    std::string conf = a.dir / "postgresql.conf";
    write_text(conf, "data_encryption_key_unwrap_command = 'cat \"%p\"'\n");
    Pair p({});
    ASSERT_EQ(fe_datakey_pair_set_directory(p.pair, 0, a.path(), conf.c_str(), 1, 128, 1, &p.err),
              1);
    ASSERT_EQ(fe_datakey_pair_set_directory(p.pair, 1, a.path(), nullptr, 1, 128, 0, &p.err), 1);
    EXPECT_EQ(fe_datakey_pair_compare(p.pair, &p.err), 1) << p.message();
    EXPECT_EQ(std::getenv(FE_DATAKEY_UNWRAP_VARIABLE), nullptr);
    EXPECT_STREQ(fe_datakey_pair_server_options(p.pair), "");

    // Nowhere a command: the options' error, naming option and variable.
    Pair q({});
    ASSERT_EQ(fe_datakey_pair_set_directory(q.pair, 0, a.path(), nullptr, 1, 128, 1, &q.err), 1);
    ASSERT_EQ(fe_datakey_pair_set_directory(q.pair, 1, a.path(), nullptr, 1, 128, 0, &q.err), 1);
    EXPECT_EQ(fe_datakey_pair_compare(q.pair, &q.err), 0);
    EXPECT_EQ(fe_datakey_error_code(q.err), FE_DATAKEY_E_COMMAND_MISSING);
}

TEST(CApi, ErrorSetFreesThePreviousError) {
    fe_datakey_error* err = nullptr;
    EXPECT_EQ(fe_datakey_error_set(&err, FE_DATAKEY_E_IO, "first", "d", nullptr), 0);
    EXPECT_EQ(fe_datakey_error_set(&err, FE_DATAKEY_E_USAGE, "second", nullptr, "h"), 0);
    ASSERT_NE(err, nullptr);
    EXPECT_STREQ(fe_datakey_error_message(err), "second");
    EXPECT_EQ(fe_datakey_error_detail(err), nullptr);
    EXPECT_STREQ(fe_datakey_error_hint(err), "h");
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_USAGE);
    fe_datakey_error_free(err);
    EXPECT_EQ(fe_datakey_error_set(nullptr, FE_DATAKEY_E_IO, "x", nullptr, nullptr), 0);
}
