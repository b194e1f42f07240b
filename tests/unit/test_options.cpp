// The contract of the command options and variables (docs/design.md): an
// option beats its variable (PGDATAKEYWRAPCMD, PGDATAKEYUNWRAPCMD); "-" means
// no wrapping and must be given for both roles or neither; an empty command
// or one without %p is refused; and argv is handed over to the utility's
// getopt_long without our options, never taking a value of its own options
// for one of ours.
#include "env_guard.hpp"
#include "fe_datakey/error.hpp"
#include "fe_datakey/options.hpp"

#include <getopt.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace fe_datakey;

namespace {

constexpr unsigned all_options = option_wrap | option_unwrap | option_no_key_wrap;

// argv as a utility receives it, owned by the test.
struct Argv {
    explicit Argv(std::vector<std::string> args) : storage(std::move(args)) {
        for (auto& s : storage)
            pointers.push_back(s.data());
        pointers.push_back(nullptr);
        argc = static_cast<int>(storage.size());
    }
    std::vector<std::string> remaining() const {
        std::vector<std::string> out;
        for (int i = 0; i < argc; ++i)
            out.emplace_back(pointers[i]);
        EXPECT_EQ(pointers[argc], nullptr);
        return out;
    }
    std::vector<std::string> storage;
    std::vector<char*> pointers;
    int argc;
};

// pg_upgrade-like option table: -o/--old-options and -b take values.
const struct option upgrade_longopts[] = {{"old-options", required_argument, nullptr, 'o'},
                                          {"new-options", required_argument, nullptr, 'O'},
                                          {"old-bindir", required_argument, nullptr, 'b'},
                                          {"check", no_argument, nullptr, 'c'},
                                          {"verbose", no_argument, nullptr, 'v'},
                                          {nullptr, 0, nullptr, 0}};
const UtilityOptions upgrade{"b:cO:o:v", upgrade_longopts};

ErrorCode error_code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.code();
    }
    return ErrorCode::ok;
}

class OptionsTest : public ::testing::Test {
protected:
    void SetUp() override {
        env.set("PGDATAKEYWRAPCMD", std::nullopt);
        env.set("PGDATAKEYUNWRAPCMD", std::nullopt);
        env.set("POSIXLY_CORRECT", std::nullopt);
    }
    EnvGuard env;
};

} // namespace

// --- precedence matrix: option x variable, each unset/empty/-/command -----

enum class V { unset, empty, dash, command };

std::optional<std::string> value_of(V v, const std::string& command) {
    switch (v) {
    case V::unset:
        return std::nullopt;
    case V::empty:
        return std::string();
    case V::dash:
        return std::string("-");
    case V::command:
        return command;
    }
    return std::nullopt;
}

TEST_F(OptionsTest, PrecedenceMatrixForBothRoles) {
    const V values[] = {V::unset, V::empty, V::dash, V::command};
    for (Role role : {Role::wrap, Role::unwrap}) {
        for (V opt : values) {
            for (V var : values) {
                SCOPED_TRACE(std::string(option_name(role)) + " option=" +
                             std::to_string(int(opt)) + " variable=" + std::to_string(int(var)));
                env.set(environment_name(role), value_of(var, "from-variable %p"));
                std::vector<std::string> args{"prog"};
                if (auto v = value_of(opt, "from-option %p"))
                    args.push_back(std::string(option_name(role)) + "=" + *v);
                Argv argv(args);
                auto o = KeyOptions::extract(argv.argc, argv.pointers.data(), all_options, {});
                EXPECT_EQ(argv.remaining(), std::vector<std::string>{"prog"});

                // The effective value: the option when present, else the variable.
                V effective = opt != V::unset ? opt : var;
                Source source = opt != V::unset   ? Source::command_line
                                : var != V::unset ? Source::environment
                                                  : Source::unset;
                EXPECT_EQ(o.setting(role).source, source);
                switch (effective) {
                case V::unset:
                    EXPECT_EQ(error_code_of([&] { o.command(role); }), ErrorCode::command_missing);
                    break;
                case V::empty:
                    EXPECT_EQ(error_code_of([&] { o.command(role); }), ErrorCode::command_empty);
                    break;
                case V::dash:
                    EXPECT_EQ(o.command(role), "-");
                    break;
                case V::command:
                    EXPECT_EQ(o.command(role),
                              opt != V::unset ? "from-option %p" : "from-variable %p");
                    break;
                }
                EXPECT_EQ(o.given_on_command_line(), opt != V::unset);
            }
        }
    }
}

TEST_F(OptionsTest, SeparateAndAttachedValuesIncludingDash) {
    Argv argv({"initdb", "--key-wrap-command", "-", "-D", "data", "--key-unwrap-command=-"});
    auto o = KeyOptions::extract(argv.argc, argv.pointers.data(), all_options, {"D:y", nullptr});
    EXPECT_EQ(o.command(Role::wrap), "-");
    EXPECT_EQ(o.command(Role::unwrap), "-");
    EXPECT_EQ(argv.remaining(), (std::vector<std::string>{"initdb", "-D", "data"}));
}

TEST_F(OptionsTest, SeparateValueThatLooksLikeAnOption) {
    Argv argv({"prog", "--key-unwrap-command", "--weird %p", "x"});
    auto o = KeyOptions::extract(argv.argc, argv.pointers.data(), option_unwrap, {});
    EXPECT_EQ(o.command(Role::unwrap), "--weird %p");
    EXPECT_EQ(argv.remaining(), (std::vector<std::string>{"prog", "x"}));
}

TEST_F(OptionsTest, FromArgumentsAcceptsSeparateDash) {
    auto o = KeyOptions::from_arguments({"--key-unwrap-command", "-"}, option_unwrap);
    EXPECT_EQ(o.command(Role::unwrap), "-");
}

TEST_F(OptionsTest, UtilityValuesThatLookLikeOursStayTheUtilitys) {
    // pg_upgrade -o '--key-unwrap-command=x', -o --key-unwrap-command=x,
    // --old-options --key-unwrap-command=x, -o--key-unwrap-command=x
    for (auto args : std::vector<std::vector<std::string>>{
             {"pg_upgrade", "-o", "--key-unwrap-command=x %p"},
             {"pg_upgrade", "-o", "--key-unwrap-command", "-c"},
             {"pg_upgrade", "--old-options", "--key-unwrap-command=x %p"},
             {"pg_upgrade", "--old-opt", "--key-unwrap-command=x %p"}, // unique prefix
             {"pg_upgrade", "-vo", "--key-unwrap-command=x %p"},
             {"pg_upgrade", "-o--key-unwrap-command=x %p"},
             {"pg_upgrade", "--old-options=--key-unwrap-command=x %p"}}) {
        SCOPED_TRACE(args[1]);
        Argv argv(args);
        auto o = KeyOptions::extract(argv.argc, argv.pointers.data(), option_unwrap, upgrade);
        EXPECT_EQ(o.setting(Role::unwrap).source, Source::unset);
        EXPECT_EQ(argv.remaining(), args);
    }
}

TEST_F(OptionsTest, OursAroundTheUtilitysOptions) {
    Argv argv({"pg_upgrade", "-b", "/old/bin", "--key-unwrap-command", "cat %p", "-o",
               "-c work_mem=1MB", "--check"});
    auto o = KeyOptions::extract(argv.argc, argv.pointers.data(), option_unwrap, upgrade);
    EXPECT_EQ(o.command(Role::unwrap), "cat %p");
    EXPECT_EQ(argv.remaining(), (std::vector<std::string>{"pg_upgrade", "-b", "/old/bin", "-o",
                                                          "-c work_mem=1MB", "--check"}));
}

TEST_F(OptionsTest, NothingAfterDoubleDashIsOurs) {
    Argv argv({"prog", "--", "--key-unwrap-command=x %p"});
    auto o = KeyOptions::extract(argv.argc, argv.pointers.data(), option_unwrap, {});
    EXPECT_EQ(o.setting(Role::unwrap).source, Source::unset);
    EXPECT_EQ(argv.remaining(),
              (std::vector<std::string>{"prog", "--", "--key-unwrap-command=x %p"}));
}

TEST_F(OptionsTest, OptionsNotAcceptedAreLeftForTheUtility) {
    Argv argv({"pg_rewind", "--key-wrap-command=x %p"});
    auto o = KeyOptions::extract(argv.argc, argv.pointers.data(), option_unwrap, {});
    EXPECT_EQ(argv.remaining(), (std::vector<std::string>{"pg_rewind", "--key-wrap-command=x %p"}));
    // PGDATAKEYWRAPCMD means nothing to a utility that takes no wrap command.
    env.set("PGDATAKEYWRAPCMD", "w %p");
    auto o2 = KeyOptions::from_arguments({}, option_unwrap);
    EXPECT_EQ(o2.setting(Role::wrap).source, Source::unset);
}

TEST_F(OptionsTest, MissingValueAtEndIsAnError) {
    Argv argv({"prog", "--key-wrap-command"});
    try {
        KeyOptions::extract(argv.argc, argv.pointers.data(), all_options, {});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::usage);
        EXPECT_EQ(e.message(), "option --key-wrap-command requires a value");
    }
}

TEST_F(OptionsTest, GivenTwiceIsAnError) {
    try {
        KeyOptions::from_arguments({"--key-wrap-command=a %p", "--key-wrap-command=b %p"},
                                   all_options);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::usage);
        EXPECT_EQ(e.message(), "option --key-wrap-command specified more than once");
    }
}

TEST_F(OptionsTest, NoKeyWrapTakesNoValue) {
    EXPECT_EQ(error_code_of([] { KeyOptions::from_arguments({"--no-key-wrap=yes"}, all_options); }),
              ErrorCode::usage);
}

TEST_F(OptionsTest, NoKeyWrapMeansDashForBothAndBeatsVariables) {
    env.set("PGDATAKEYWRAPCMD", "w %p");
    env.set("PGDATAKEYUNWRAPCMD", "u %p");
    auto o = KeyOptions::from_arguments({"--no-key-wrap"}, all_options);
    EXPECT_TRUE(o.no_key_wrap());
    EXPECT_TRUE(o.given_on_command_line());
    EXPECT_EQ(o.command_pair(), std::make_pair(std::string("-"), std::string("-")));
}

TEST_F(OptionsTest, NoKeyWrapWithACommandOptionIsAnError) {
    try {
        KeyOptions::from_arguments({"--no-key-wrap", "--key-unwrap-command=u %p"}, all_options);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::usage);
        EXPECT_NE(e.message().find("--no-key-wrap"), std::string::npos);
    }
}

TEST_F(OptionsTest, VariablesAloneAreNotOnTheCommandLine) {
    env.set("PGDATAKEYWRAPCMD", "w %p");
    env.set("PGDATAKEYUNWRAPCMD", "u %p");
    auto o = KeyOptions::from_arguments({}, all_options);
    EXPECT_FALSE(o.given_on_command_line());
    EXPECT_EQ(o.setting(Role::wrap).source, Source::environment);
}

TEST_F(OptionsTest, MissingCommandNamesOptionAndVariableWithDashHint) {
    auto o = KeyOptions::from_arguments({}, all_options);
    for (Role role : {Role::wrap, Role::unwrap}) {
        try {
            o.command(role);
            FAIL() << "no error";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::command_missing);
            std::string all = e.message() + e.detail() + e.hint();
            EXPECT_NE(all.find(option_name(role)), std::string::npos);
            EXPECT_NE(all.find(environment_name(role)), std::string::npos);
            EXPECT_NE(e.hint().find("\"-\""), std::string::npos);
        }
    }
}

TEST_F(OptionsTest, EmptyVariableIsAnErrorNamingTheVariable) {
    env.set("PGDATAKEYUNWRAPCMD", "");
    auto o = KeyOptions::from_arguments({}, all_options);
    try {
        o.command(Role::unwrap);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::command_empty);
        EXPECT_NE(e.detail().find("PGDATAKEYUNWRAPCMD"), std::string::npos);
    }
}

TEST_F(OptionsTest, PlaceholderRules) {
    EXPECT_NO_THROW(validate_command(Role::wrap, "cat > %p", "x"));
    EXPECT_NO_THROW(validate_command(Role::wrap, "-", "x"));
    EXPECT_NO_THROW(validate_command(Role::wrap, "a %% b %p", "x"));
    for (const char* bad : {"cat > key", "cat > %%p", "echo 100%", "%P", " - "}) {
        SCOPED_TRACE(bad);
        EXPECT_EQ(error_code_of([&] { validate_command(Role::wrap, bad, "x"); }),
                  ErrorCode::command_invalid);
    }
}

TEST_F(OptionsTest, PairMustBeBothDashOrBothCommands) {
    EXPECT_NO_THROW(validate_command_pair("-", "-"));
    EXPECT_NO_THROW(validate_command_pair("w %p", "u %p"));
    EXPECT_EQ(error_code_of([] { validate_command_pair("-", "u %p"); }),
              ErrorCode::command_invalid);
    EXPECT_EQ(error_code_of([] { validate_command_pair("w %p", "-"); }),
              ErrorCode::command_invalid);
    auto o = KeyOptions::from_arguments({"--key-wrap-command=-", "--key-unwrap-command=u %p"},
                                        all_options);
    EXPECT_EQ(error_code_of([&] { o.command_pair(); }), ErrorCode::command_invalid);
}

TEST_F(OptionsTest, MessagesNeverCarryTheCommandText) {
    auto o =
        KeyOptions::from_arguments({"--key-wrap-command=openssl -pass pass:SECRET42"}, all_options);
    try {
        o.command(Role::wrap);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ((e.message() + e.detail() + e.hint()).find("SECRET42"), std::string::npos);
    }
}

TEST(SplitEmptyValues, HandsAnEmptyValueOverAsItsOwnArgument) {
    using V = std::vector<std::string>;
    EXPECT_EQ(split_empty_values({"--key-unwrap-command=", "--key-wrap-command=c %p"}),
              (V{"--key-unwrap-command", "", "--key-wrap-command=c %p"}));
    // Not "--opt=": too short, more than one '=', or not a long option.
    EXPECT_EQ(split_empty_values({"--=", "--a=b=", "-x=", "value="}),
              (V{"--=", "--a=b=", "-x=", "value="}));
    // Operands after "--" stay as they are.
    EXPECT_EQ(split_empty_values({"--json=", "--", "--pgdata="}),
              (V{"--json", "", "--", "--pgdata="}));
    EXPECT_EQ(split_empty_values({}), V{});
}
