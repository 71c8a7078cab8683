/*
 * libFuzzer target for the SCRAM server exchange and SASL PLAIN (base/sasl.c). The input is
 * two client messages separated by the first NUL-free line break ('\n'): the client-first
 * message and the client-final message; the whole input is also parsed as a PLAIN token. A
 * fixed credential and server nonce keep runs reproducible. Every message must be accepted or
 * refused with an "e=" answer, without reading out of bounds, leaking, or signing a proof that
 * is not the credential's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/sasl.h"
#include "base/scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static td_scram_credential cred;
    static int ready;
    if (!ready) {
        static const uint8_t salt[16] = "0123456789abcdef";
        if (scram_derive(TD_SCRAM_SHA_256, "pencil", 6, salt, sizeof(salt), 4096, &cred))
            abort();
        ready = 1;
    }
    char *plain = malloc(size + 1);
    const char *u, *p;
    size_t pl;
    if (plain && sasl_plain_parse(data, size, plain, &u, &p, &pl) == 0 && (!*u || !pl))
        abort();
    free(plain);

    const uint8_t *nl = memchr(data, '\n', size);
    size_t n1 = nl ? (size_t)(nl - data) : size;
    scram_server s;
    scram_server_init(&s, TD_SCRAM_SHA_256);
    scram_client_first cf;
    const char *err = NULL;
    td_buf out;
    td_buf_init(&out);
    if (scram_parse_client_first(&s, data, n1, &cf, &err) == 0) {
        if (!cf.user[0])
            abort();
        if (scram_server_first_nonce(&s, &cred, false, "SERVERNONCE", &out) == 0 && nl) {
            td_buf_reset(&out);
            int rc = scram_server_final(&s, nl + 1, size - n1 - 1, &out, &err);
            if (out.len < 2 || (rc == 0 && memcmp(out.p, "v=", 2)) ||
                (rc != 0 && memcmp(out.p, "e=", 2)))
                abort();
        }
    } else if (!err) {
        abort();
    }
    td_buf_free(&out);
    scram_server_clear(&s);
    return 0;
}
