/* libFuzzer target: JSON measured before it is parsed (proto/http/json_scan.c), the reals
 * rewriter (base/json_real.c) and the UTF-8 cleaner of error messages. Whatever the input,
 * nothing reads outside it; against jansson: a text jansson accepts, the scanner accepts, and an
 * array walked element by element gives jansson's elements; a text jansson accepts still
 * denotes the same JSON once its reals are shortened; a cleaned string is always one that
 * jansson takes. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "proto/http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t cost;
    size_t pos;
    const char *why = NULL;
    int rc = http_json_measure(data, size, &cost, &pos, &why);
    if (pos > size || (rc != 0 && (!why || (rc != TD_EAGAIN && rc != TD_EPROTO))))
        abort();
    json_t *whole = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (whole && rc != 0)
        abort(); /* the scanner refused what jansson accepts */

    http_json_iter it;
    if (http_json_array_open(&it, data, size)) {
        td_slice e;
        uint64_t c = 0;
        int r;
        size_t i = 0;
        while ((r = http_json_array_next(&it, &e, &c)) == 1) {
            if (e.p < data || e.p + e.n > data + size)
                abort();
            if (json_is_array(whole)) {
                json_t *one = json_loadb((const char *)e.p, e.n, JSON_DECODE_ANY, NULL);
                if (!json_equal(one, json_array_get(whole, i)))
                    abort();
                json_decref(one);
            }
            i++;
        }
        if (r != 0 && (r != TD_EAGAIN && r != TD_EPROTO))
            abort();
        if (json_is_array(whole) && (r != 0 || i != json_array_size(whole)))
            abort();
    }

    char *copy = malloc(size + 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    copy[size] = 0;
    size_t n = td_json_shorten_reals(copy, size);
    if (n > size)
        abort();
    if (whole) {
        json_t *again = json_loadb(copy, n, JSON_DECODE_ANY, NULL);
        if (!json_equal(whole, again))
            abort();
        json_decref(again);
    }

    /* The cleaner takes a C string: the input up to its first NUL. */
    memcpy(copy, data, size);
    copy[size] = 0;
    char out[256];
    json_t *s = json_string(http_utf8_clean(copy, out, sizeof(out)));
    if (!s)
        abort();
    json_decref(s);
    free(copy);
    json_decref(whole);
    return 0;
}
