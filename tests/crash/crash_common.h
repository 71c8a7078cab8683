/* crash_common.h: helpers shared by the crash tests: events numbered by sequence (event n has
 * value "s<n>", so the value says which offset it must have), and a full read-back check. */
#ifndef TD_CRASH_COMMON_H
#define TD_CRASH_COMMON_H

#include "storage/storage.h"
#include "test.h"

/* Appends `count` events numbered from `first` as one batch; returns part_append's rc. */
static inline int crash_append(td_part *p, int64_t first, int count, td_append_result *r)
{
    td_event ev[16];
    char vals[16][32];
    for (int i = 0; i < count; i++) {
        snprintf(vals[i], sizeof(vals[i]), "s%lld", (long long)(first + i));
        ev[i] = (td_event){.value = vals[i], .value_len = strlen(vals[i]),
                           .timestamp_ms = 1700000000000LL + first + i};
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    int rc = batch_encode(&b, &o, ev, (size_t)count);
    if (rc == 0)
        rc = part_append(p, b.p, b.len, 1700000000000LL, r);
    td_buf_free(&b);
    return rc;
}

/* Reads the whole partition and checks it is a valid prefix: offsets dense from 0, every
 * batch CRC-valid, event n holds "s<n>". Returns the number of events. */
static inline int64_t crash_check_log(td_part *p)
{
    int64_t off = part_log_start(p);
    ASSERT_EQ(off, 0);
    td_buf b;
    td_buf_init(&b);
    td_batch_reader rd;
    batch_reader_init(&rd);
    for (;;) {
        td_range r;
        int rc = part_read(p, off, 1 << 16, &r);
        if (rc == TD_EEND)
            break;
        ASSERT_OK(rc);
        td_buf_reset(&b);
        ASSERT_OK(part_range_copy(&r, &b));
        part_range_release(&r);
        size_t pos = 0;
        while (pos < b.len) {
            ASSERT_OK(batch_validate(b.p + pos, b.len - pos, true, 1 << 20, NULL));
            ASSERT_OK(batch_reader_open(&rd, b.p + pos, b.len - pos, 1 << 20));
            td_record rec;
            while (batch_reader_next(&rd, &rec) == 1) {
                if (rec.offset < off)
                    continue;
                ASSERT_EQ(rec.offset, off);
                char want[32];
                snprintf(want, sizeof(want), "s%lld", (long long)off);
                ASSERT_EQ(rec.value.n, strlen(want));
                ASSERT_MEM_EQ(rec.value.p, want, rec.value.n);
                off++;
            }
            pos += batch_total_size(&rd.h);
        }
    }
    batch_reader_free(&rd);
    td_buf_free(&b);
    ASSERT_EQ(off, part_high_watermark(p));
    return off;
}

#endif
