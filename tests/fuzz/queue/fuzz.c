/* libFuzzer target: the queue groups' parsers (broker/queue.c): delivery ids, which clients send
 * back, and the saved state's entries, which come from the catalog. An id that parses must format
 * back to an id that parses to the same numbers; the entry reader must stay inside its input,
 * give strictly increasing offsets inside (after, below), and point its error text into the
 * input. And the delayed-delivery headers (queue_sched.c), which any producer sets: the input as
 * the value of tidings-deliver-at and of tidings-delay-ms must give what a reference reading of
 * it gives (a decimal of 1 to 18 digits; a delay may have a '-'). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/queue.h"
#include "broker/queue_int.h"

/* The reference: the decimal number the bytes are, or -1 (not one). */
static int64_t ref_decimal(const uint8_t *s, size_t n, bool sign)
{
    size_t i = sign && n && s[0] == '-' ? 1 : 0;
    if (n - i < 1 || n - i > 18)
        return INT64_MIN;
    int64_t v = 0;
    for (size_t k = i; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return INT64_MIN;
        v = v * 10 + (s[k] - '0');
    }
    return i ? -v : v;
}

static void check_due(const uint8_t *data, size_t size)
{
    td_header h = {TD_DELIVER_AT_HEADER, strlen(TD_DELIVER_AT_HEADER), data, size};
    td_event ev = {.headers = &h, .header_count = 1, .timestamp_ms = 1000};
    int64_t v = ref_decimal(data, size, false);
    int64_t want = v == INT64_MIN ? 77 + 1000 : v > 0 ? v : 0; /* not a number: the default */
    if (qsched_due_of(&ev, 77, NULL) != want)
        abort();
    h.key = TD_DELAY_HEADER;
    h.key_len = strlen(TD_DELAY_HEADER);
    v = ref_decimal(data, size, true);
    want = v == INT64_MIN ? 77 + 1000 : v > 0 ? 1000 + v : 0;
    if (qsched_due_of(&ev, 77, NULL) != want)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *id = malloc(size + 1);
    if (!id)
        return 0;
    memcpy(id, data, size);
    id[size] = 0;
    int64_t t, o, t2, o2;
    int32_t p, d, p2, d2;
    if (queue_id_parse(id, &t, &p, &o, &d)) {
        char again[96];
        snprintf(again, sizeof(again), "%" PRId64 ".%" PRId32 ".%" PRId64 ".%" PRId32, t, p, o, d);
        if (!queue_id_parse(again, &t2, &p2, &o2, &d2) || t != t2 || p != p2 || o != o2 ||
            d != d2 || t < 0 || p < 0 || o < 0 || d < 0)
            abort();
    }
    free(id);
    check_due(data, size);
    if (size < 8)
        return 0;
    int64_t below = 0;
    memcpy(&below, data, 8);
    const unsigned char *r = data + 8, *end = data + size;
    int64_t after = -1;
    queue_saved_entry se;
    int rc;
    while ((rc = queue_saved_entry_next(&r, end, below, after, &se)) == 1) {
        if (se.offset <= after || se.offset >= below || r > end || se.state < 1 || se.state > 4)
            abort();
        if (se.error && ((const unsigned char *)se.error < data + 8 ||
                         (const unsigned char *)se.error + se.error_len > end))
            abort();
        after = se.offset;
    }
    if ((rc != 0 && rc != -1) || r > end)
        abort();
    return 0;
}
