/* A program outside the project that uses the installed C API. */
#include <stdio.h>
#include <string.h>

#include "fe_datakey/fe_datakey.h"

int main(void) {
    fe_datakey_error* err = NULL;
    fe_datakey_key* key = fe_datakey_key_generate(128, &err);

    if (key == NULL) {
        fprintf(stderr, "%s\n", fe_datakey_error_message(err));
        fe_datakey_error_free(err);
        return 1;
    }
    printf("key of %zu bytes, help %s --key-unwrap-command\n", fe_datakey_key_length(key),
           strstr(fe_datakey_options_help(FE_DATAKEY_OPT_UNWRAP), "--key-unwrap-command")
               ? "lists"
               : "lacks");
    fe_datakey_key_free(key);
    return 0;
}
