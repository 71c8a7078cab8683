/* libFuzzer target: the producer-state snapshot decoder (storage/producer.c). Whatever the
 * input, decoding must not crash or leak, and a snapshot it accepts must encode back to the
 * same bytes' meaning: re-decoding the re-encoding gives the same producers. */
#include <stdlib.h>
#include <string.h>

#include "storage/producer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    td_pstate s, t;
    pstate_init(&s);
    pstate_init(&t);
    int64_t off, off2;
    if (pstate_decode(data, size, &s, &off) == 0) {
        td_buf b;
        td_buf_init(&b);
        if (pstate_encode(&s, off, &b) == 0) {
            if (pstate_decode(b.p, b.len, &t, &off2) != 0 || off2 != off || t.n != s.n)
                abort();
            for (size_t i = 0; i < s.cap; i++) {
                const td_producer *e = &s.slots[i];
                if (e->pid < 0)
                    continue;
                const td_producer *f = pstate_find(&t, e->pid);
                if (!f || f->epoch != e->epoch || f->n != e->n ||
                    memcmp(f->b, e->b, e->n * sizeof(e->b[0])) != 0)
                    abort();
            }
        }
        td_buf_free(&b);
    }
    pstate_free(&s);
    pstate_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    /* Random input rarely passes the CRC: a second pass with magic, version and CRC fixed up
     * reaches the field checks. */
    if (size >= 24 && size < (1u << 20)) {
        uint8_t *c = malloc(size);
        if (!c)
            return 0;
        memcpy(c, data, size);
        memcpy(c, "TDPS", 4);
        td_store_be16(c + 4, 1);
        td_store_be16(c + 6, 0);
        td_store_be32(c + 8, td_crc32c(0, c + 12, size - 12));
        check(c, size);
        free(c);
    }
    return 0;
}
