// Test-only: gives a data directory made by a stock initdb a key store, as
// initdb -y would, so that pg_datakey's end-to-end tests can run before the
// patched initdb exists. Usage: pg_datakey_test_keystore DATADIR BITS WRAP UNWRAP
#include "fe_datakey/conf.hpp"
#include "fe_datakey/error.hpp"
#include "fe_datakey/store.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s DATADIR BITS WRAP UNWRAP\n", argv[0]);
        return 1;
    }
    try {
        std::string datadir = argv[1];
        fe_datakey::Key key = fe_datakey::Key::generate(std::atoi(argv[2]));
        fe_datakey::create_key_store(datadir, argv[3], key, {});
        fe_datakey::set_conf_unwrap_command(datadir + "/postgresql.conf", argv[4]);
    } catch (const fe_datakey::Error& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.message().c_str());
        return 1;
    }
    return 0;
}
