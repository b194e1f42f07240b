/* A program outside the project that uses the installed C API. */
#include <stdio.h>
#include <string.h>

#include "fe_datakey/fe_datakey.h"

int main(void) {
    fe_datakey_error* err = NULL;
    fe_datakey_key* key = fe_datakey_key_generate(128, &err);
    fe_datakey_check check;

    if (key == NULL) {
        fprintf(stderr, "%s\n", fe_datakey_error_message(err));
        fe_datakey_error_free(err);
        return 1;
    }
    fe_datakey_key_check_of(key, &check);
    printf("key of %zu bytes, key check of %d bits, %zu hex digits\n", fe_datakey_key_length(key),
           check.bits, strlen(check.kcv));
    fe_datakey_key_free(key);
    return 0;
}
