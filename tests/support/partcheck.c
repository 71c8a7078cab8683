/* partcheck.c: see partcheck.h. */
#include "support/partcheck.h"
#include "test.h"

int64_t check_part_values(td_part *p, int64_t from, const char *prefix)
{
    int64_t off = from;
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
        ASSERT_LE(r.first_offset, off);
        size_t pos = 0;
        while (pos < b.len) {
            ASSERT_OK(batch_validate(b.p + pos, b.len - pos, true, 1 << 20, NULL));
            ASSERT_OK(batch_reader_open(&rd, b.p + pos, b.len - pos, 1 << 20));
            td_record rec;
            while (batch_reader_next(&rd, &rec) == 1) {
                if (rec.offset < off)
                    continue;
                ASSERT_EQ(rec.offset, off);
                char want[64];
                snprintf(want, sizeof(want), "%s%lld", prefix, (long long)off);
                ASSERT_EQ(rec.value.n, strlen(want));
                ASSERT_MEM_EQ(rec.value.p, want, rec.value.n);
                off++;
            }
            pos += batch_total_size(&rd.h);
        }
        ASSERT_EQ(off, r.next_offset);
        part_range_release(&r);
    }
    batch_reader_free(&rd);
    td_buf_free(&b);
    ASSERT_EQ(off, part_high_watermark(p));
    return off - from;
}
