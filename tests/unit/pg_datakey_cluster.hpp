// A minimal data directory for pg_datakey's unit tests: PG_VERSION, a
// pg_control that says "encrypted", postgresql.conf naming the unwrap
// command, and a key store made by the library.
#pragma once

#include "control_file_helpers.hpp"
#include "temp_dir.hpp"

#include "fe_datakey/conf.hpp"
#include "fe_datakey/store.hpp"

#include <sys/stat.h>

struct FakeCluster {
    TempDir dir;
    fe_datakey::Key key = fe_datakey::Key::generate(128);

    explicit FakeCluster(const std::string& wrap = "-", const std::string& unwrap = "-") {
        ::chmod(dir.path().c_str(), 0700);
        write_text(dir / "PG_VERSION", "15\n");
        write_control_file(dir.path(), make_control_file(1301, 1, 128));
        write_text(dir / "postgresql.conf", "shared_buffers = 16MB\n");
        fe_datakey::set_conf_unwrap_command(dir / "postgresql.conf", unwrap);
        fe_datakey::create_key_store(dir.path(), wrap, key, {});
    }
    const std::string& path() const { return dir.path(); }
    std::string conf() const { return dir / "postgresql.conf"; }
    std::string conf_command() const {
        return fe_datakey::configured_unwrap_command(dir.path()).value_or("<unset>");
    }
    bool exists(const std::string& rel) const {
        struct stat st;
        return ::lstat((dir / rel).c_str(), &st) == 0;
    }
};
