/* Unit tests for the record batch v2 codec and the compression codecs (storage/batch.c,
 * storage/compress.c). */
#include <errno.h>

#include "storage/batch.h"
#include "test.h"

#define MAXU (16u << 20)

static void make_events(td_event *ev, td_header *hd, size_t n)
{
    static char keys[64][32], vals[64][80];
    for (size_t i = 0; i < n; i++) {
        memset(&ev[i], 0, sizeof(ev[i]));
        snprintf(keys[i], sizeof(keys[i]), "key-%zu", i);
        snprintf(vals[i], sizeof(vals[i]), "value number %zu with some text", i);
        if (i % 5 == 1) {
            ev[i].key = NULL; /* null key */
        } else if (i % 5 == 2) {
            ev[i].key = "";
            ev[i].key_len = 0;
        } else {
            ev[i].key = keys[i];
            ev[i].key_len = strlen(keys[i]);
        }
        if (i % 7 == 3) {
            ev[i].value = NULL; /* tombstone */
        } else {
            ev[i].value = vals[i];
            ev[i].value_len = strlen(vals[i]);
        }
        ev[i].timestamp_ms = 1700000000000LL + (int64_t)(i * 37 % 11) * 1000;
        if (i % 3 == 0) {
            ev[i].headers = hd;
            ev[i].header_count = 3;
        }
    }
    hd[0] = (td_header){"trace", 5, "abc", 3};
    hd[1] = (td_header){"trace", 5, NULL, 0}; /* repeated key, null value */
    hd[2] = (td_header){"bin", 3, "\0\1\2", 3};
}

static void check_roundtrip(const td_event *ev, size_t n, const uint8_t *p, size_t len,
                            int64_t base)
{
    td_batch_reader r;
    batch_reader_init(&r);
    ASSERT_OK(batch_reader_open(&r, p, len, MAXU));
    ASSERT_EQ(r.h.base_offset, base);
    ASSERT_EQ(r.h.record_count, n);
    td_record rec;
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(batch_reader_next(&r, &rec), 1);
        ASSERT_EQ(rec.offset, base + (int64_t)i);
        ASSERT_EQ(rec.timestamp, ev[i].timestamp_ms);
        ASSERT_EQ(rec.key_null, ev[i].key == NULL);
        ASSERT_EQ(rec.key.n, ev[i].key_len);
        if (ev[i].key_len)
            ASSERT_MEM_EQ(rec.key.p, ev[i].key, ev[i].key_len);
        ASSERT_EQ(rec.value_null, ev[i].value == NULL);
        ASSERT_EQ(rec.value.n, ev[i].value_len);
        if (ev[i].value_len)
            ASSERT_MEM_EQ(rec.value.p, ev[i].value, ev[i].value_len);
        ASSERT_EQ(rec.header_count, ev[i].header_count);
        for (size_t k = 0; k < rec.header_count; k++) {
            ASSERT_EQ(rec.headers[k].key.n, ev[i].headers[k].key_len);
            ASSERT_MEM_EQ(rec.headers[k].key.p, ev[i].headers[k].key, rec.headers[k].key.n);
            ASSERT_EQ(rec.headers[k].value_null, ev[i].headers[k].value == NULL);
            ASSERT_EQ(rec.headers[k].value.n, ev[i].headers[k].value_len);
            if (rec.headers[k].value.n)
                ASSERT_MEM_EQ(rec.headers[k].value.p, ev[i].headers[k].value,
                              rec.headers[k].value.n);
        }
    }
    ASSERT_EQ(batch_reader_next(&r, &rec), 0);
    /* The key-only walk gives the same offsets and keys. */
    ASSERT_OK(batch_reader_open(&r, p, len, MAXU));
    int64_t off;
    td_slice key;
    bool null;
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(batch_reader_next_key(&r, &off, &key, &null), 1);
        ASSERT_EQ(off, base + (int64_t)i);
        ASSERT_EQ(null, ev[i].key == NULL);
        ASSERT_EQ(key.n, ev[i].key_len);
        if (ev[i].key_len)
            ASSERT_MEM_EQ(key.p, ev[i].key, ev[i].key_len);
    }
    ASSERT_EQ(batch_reader_next_key(&r, &off, &key, &null), 0);
    batch_reader_free(&r);
}

/* The key-only walk over a records area cut anywhere (in a buffer of exactly that size, so
 * that ASan sees any read past it) fails with TD_ECORRUPT, never reads past the end; bytes
 * after the last record are refused too. */
static void test_next_key_truncated(void)
{
    td_event ev[20];
    td_header hd[3];
    make_events(ev, hd, 20);
    td_buf b;
    td_buf_init(&b);
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    ASSERT_OK(batch_encode(&b, &o, ev, 20));
    td_batch_reader r;
    batch_reader_init(&r);
    ASSERT_OK(batch_reader_open(&r, b.p, b.len, MAXU));
    const uint8_t *recs = r.records;
    size_t full = r.records_len;
    for (size_t cut = 0; cut <= full + 1; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, recs, TD_MIN(cut, full));
        if (cut > full)
            copy[full] = 0; /* one byte too many */
        td_batch_reader t = r;
        t.records = copy;
        t.records_len = cut;
        t.pos = 0;
        t.index = 0;
        t.prev_delta = -1;
        int64_t off;
        td_slice key;
        bool null;
        int rc, got = 0;
        while ((rc = batch_reader_next_key(&t, &off, &key, &null)) == 1)
            got++;
        if (cut == full) {
            ASSERT_EQ(rc, 0);
            ASSERT_EQ(got, 20);
        } else {
            ASSERT_EQ(rc, TD_ECORRUPT);
        }
        free(copy);
    }
    batch_reader_free(&r);
    td_buf_free(&b);
}

/* batch_reader_next_key_headers: the same offsets and keys as the full reader, the values of
 * the named headers but null ones (at most max), and over a records area cut anywhere
 * TD_ECORRUPT, never a read past its end. */
static void test_next_key_headers(void)
{
    td_event ev[20];
    td_header hd[3];
    make_events(ev, hd, 20);
    td_buf b;
    td_buf_init(&b);
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    ASSERT_OK(batch_encode(&b, &o, ev, 20));
    td_batch_reader r;
    batch_reader_init(&r);
    ASSERT_OK(batch_reader_open(&r, b.p, b.len, MAXU));
    const td_slice trace = td_slice_make("trace", 5), bin = td_slice_make("bin", 3);
    int64_t off;
    td_slice key, vals[2];
    bool null;
    size_t nv;
    for (size_t i = 0; i < 20; i++) {
        ASSERT_EQ(batch_reader_next_key_headers(&r, &off, &key, &null, i % 2 ? trace : bin, vals,
                                                2, &nv),
                  1);
        ASSERT_EQ(off, (int64_t)i);
        ASSERT_EQ(null, ev[i].key == NULL);
        ASSERT_EQ(key.n, ev[i].key_len);
        ASSERT_EQ(nv, ev[i].header_count ? 1u : 0u); /* "trace": one of two is null */
        if (nv)
            ASSERT_MEM_EQ(vals[0].p, i % 2 ? "abc" : "\0\1\2", 3);
    }
    ASSERT_EQ(batch_reader_next_key_headers(&r, &off, &key, &null, bin, vals, 0, &nv), 0);
    const uint8_t *recs = r.records;
    size_t full = r.records_len;
    for (size_t cut = 0; cut <= full; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, recs, cut);
        td_batch_reader t = r;
        t.records = copy;
        t.records_len = cut;
        t.pos = 0;
        t.index = 0;
        t.prev_delta = -1;
        int rc, got = 0;
        while ((rc = batch_reader_next_key_headers(&t, &off, &key, &null, trace, vals, 2, &nv)) ==
               1)
            got++;
        ASSERT_EQ(rc, cut == full ? 0 : TD_ECORRUPT);
        ASSERT(got <= 20);
        free(copy);
    }
    batch_reader_free(&r);
    td_buf_free(&b);
}

static void test_roundtrip_every_codec(void)
{
    td_event ev[40];
    td_header hd[3];
    make_events(ev, hd, 40);
    for (int codec = TD_COMPRESS_NONE; codec <= TD_COMPRESS_ZSTD; codec++) {
        td_buf b;
        td_buf_init(&b);
        td_batch_encode_opts o;
        batch_encode_opts_init(&o);
        o.compression = codec;
        o.base_offset = 1000;
        ASSERT_OK(batch_encode(&b, &o, ev, 40));
        td_batch_header h;
        ASSERT_OK(batch_validate(b.p, b.len, true, MAXU, &h));
        ASSERT_EQ(batch_total_size(&h), b.len);
        ASSERT_EQ(batch_compression(&h), codec);
        ASSERT_EQ(h.last_offset_delta, 39);
        ASSERT_EQ(h.producer_id, -1);
        ASSERT_EQ(h.base_timestamp, ev[0].timestamp_ms);
        int64_t mx = 0;
        for (int i = 0; i < 40; i++)
            mx = TD_MAX(mx, ev[i].timestamp_ms);
        ASSERT_EQ(h.max_timestamp, mx);
        check_roundtrip(ev, 40, b.p, b.len, 1000);
        /* The base offset lives outside the CRC. */
        batch_set_base_offset(b.p, 77);
        batch_set_leader_epoch(b.p, 5);
        ASSERT_OK(batch_validate(b.p, b.len, true, MAXU, &h));
        ASSERT_EQ(h.leader_epoch, 5);
        check_roundtrip(ev, 40, b.p, b.len, 77);
        td_buf_free(&b);
    }
}

/* The exact bytes of a one-record batch, built field by field from the layout in batch.h. */
static void test_known_answer(void)
{
    td_event e = {.key = "k", .key_len = 1, .value = "v", .value_len = 1,
                  .timestamp_ms = 1600000000000LL};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    o.base_offset = 5;
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, &e, 1));
    uint8_t x[80];
    size_t n = 0;
    /* record: attrs 0, tsDelta 0, offDelta 0, keyLen 1 'k', valLen 1 'v', 0 headers */
    const uint8_t rec[] = {0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00};
    td_store_be64(x, 5);
    td_store_be32(x + 8, (uint32_t)(61 - 12 + 1 + sizeof(rec)));
    td_store_be32(x + 12, 0);
    x[16] = 2;
    td_store_be16(x + 21, 0);
    td_store_be32(x + 23, 0);
    td_store_be64(x + 27, 1600000000000ULL);
    td_store_be64(x + 35, 1600000000000ULL);
    td_store_be64(x + 43, UINT64_MAX);
    td_store_be16(x + 51, 0xffff);
    td_store_be32(x + 53, UINT32_MAX);
    td_store_be32(x + 57, 1);
    n = 61;
    x[n++] = (uint8_t)(sizeof(rec) * 2); /* zigzag varint length */
    memcpy(x + n, rec, sizeof(rec));
    n += sizeof(rec);
    td_store_be32(x + 17, td_crc32c(0, x + 21, n - 21));
    ASSERT_EQ(b.len, n);
    ASSERT_MEM_EQ(b.p, x, n);
    td_buf_free(&b);
}

/* Every strict prefix needs more bytes; every single-byte change is caught (never accepted
 * with different contents). */
static void test_prefixes_and_corruption(void)
{
    td_event ev[4];
    td_header hd[3];
    make_events(ev, hd, 4);
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, ev, 4));
    for (size_t k = 0; k < b.len; k++) {
        int rc = batch_validate(b.p, k, true, MAXU, NULL);
        ASSERT_EQ(rc, TD_EAGAIN);
    }
    uint8_t *c = malloc(b.len);
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(c, b.p, b.len);
            c[i] ^= (uint8_t)(1 << bit);
            int rc = batch_validate(c, b.len, true, MAXU, NULL);
            if (i < 8 || (i >= 12 && i < 16)) {
                /* base offset and leader epoch are outside the CRC */
                if (i < 8 && (c[0] & 0x80))
                    ASSERT_EQ(rc, TD_ECORRUPT);
                else
                    ASSERT_OK(rc);
            } else {
                ASSERT(rc == TD_ECRC || rc == TD_ECORRUPT || rc == TD_EAGAIN);
            }
        }
    }
    free(c);
    td_buf_free(&b);
}

/* Deep validation catches records that disagree with the header even when the CRC is right. */
static void test_deep_validation(void)
{
    td_event ev[3];
    td_header hd[3];
    make_events(ev, hd, 3);
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, ev, 3));
    /* Wrong last offset delta. */
    td_store_be32(b.p + 23, 5);
    batch_update_crc(b.p, b.len);
    ASSERT_OK(batch_validate(b.p, b.len, false, MAXU, NULL));
    ASSERT_EQ(batch_validate(b.p, b.len, true, MAXU, NULL), TD_ECORRUPT);
    td_store_be32(b.p + 23, 2);
    /* Record count larger than the records. */
    td_store_be32(b.p + 57, 4);
    batch_update_crc(b.p, b.len);
    ASSERT_EQ(batch_validate(b.p, b.len, true, MAXU, NULL), TD_ECORRUPT);
    /* A huge record count is rejected before anything is allocated. */
    td_store_be32(b.p + 57, 0x7fffffff);
    batch_update_crc(b.p, b.len);
    ASSERT_EQ(batch_validate(b.p, b.len, true, MAXU, NULL), TD_ECORRUPT);
    td_batch_reader r;
    batch_reader_init(&r);
    ASSERT_EQ(batch_reader_open(&r, b.p, b.len, MAXU), TD_ECORRUPT);
    batch_reader_free(&r);
    td_store_be32(b.p + 57, 3);
    /* Trailing garbage after the last record (grow the batch by one byte). */
    ASSERT_OK(td_buf_append_u8(&b, 0));
    td_store_be32(b.p + 8, (uint32_t)(b.len - 12));
    batch_update_crc(b.p, b.len);
    ASSERT_EQ(batch_validate(b.p, b.len, true, MAXU, NULL), TD_ECORRUPT);
    /* Wrong magic. */
    b.p[16] = 1;
    ASSERT_EQ(batch_validate(b.p, b.len, false, MAXU, NULL), TD_ECORRUPT);
    ASSERT_CONTAINS(td_last_error(), "magic");
    td_buf_free(&b);
}

static void test_log_append_time(void)
{
    td_event ev[2];
    td_header hd[3];
    make_events(ev, hd, 2);
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, ev, 2));
    batch_set_log_append_time(b.p, b.len, 1234567);
    td_batch_header h;
    ASSERT_OK(batch_validate(b.p, b.len, true, MAXU, &h));
    ASSERT(h.attributes & TD_BATCH_ATTR_LOG_APPEND_TIME);
    td_batch_reader r;
    batch_reader_init(&r);
    ASSERT_OK(batch_reader_open(&r, b.p, b.len, MAXU));
    td_record rec;
    ASSERT_EQ(batch_reader_next(&r, &rec), 1);
    ASSERT_EQ(rec.timestamp, 1234567);
    batch_reader_free(&r);
    td_buf_free(&b);
}

static void test_compression_bounds_and_corruption(void)
{
    /* 1 MiB of zeros compresses to little: decompressing it with a 64 KiB cap must refuse. */
    size_t big = 1 << 20;
    uint8_t *zeros = calloc(1, big);
    for (int codec = TD_COMPRESS_GZIP; codec <= TD_COMPRESS_ZSTD; codec++) {
        td_buf c, d;
        td_buf_init(&c);
        td_buf_init(&d);
        ASSERT_OK(td_compress(codec, td_slice_make(zeros, big), &c, 0));
        ASSERT(c.len < big / 4);
        ASSERT_EQ(td_decompress(codec, td_buf_slice(&c), &d, 65536), TD_ETOOBIG);
        ASSERT_EQ(d.len, 0);
        ASSERT_OK(td_decompress(codec, td_buf_slice(&c), &d, big));
        ASSERT_EQ(d.len, big);
        ASSERT_MEM_EQ(d.p, zeros, big);
        /* Truncations and corruptions fail cleanly (or, rarely, decode to something: never
         * crash, never exceed the cap). */
        for (size_t k = 0; k < c.len; k += 1 + c.len / 64) {
            td_buf_reset(&d);
            int rc = td_decompress(codec, td_slice_make(c.p, k), &d, big);
            ASSERT(rc == TD_ECORRUPT || rc == TD_ETOOBIG || rc == 0);
            ASSERT_LE(d.len, big);
        }
        for (size_t k = 0; k < c.len; k += 1 + c.len / 64) {
            uint8_t saved = c.p[k];
            c.p[k] ^= 0x5a;
            td_buf_reset(&d);
            int rc = td_decompress(codec, td_buf_slice(&c), &d, big);
            ASSERT(rc == TD_ECORRUPT || rc == TD_ETOOBIG || rc == 0);
            c.p[k] = saved;
        }
        td_buf_free(&c);
        td_buf_free(&d);
    }
    free(zeros);
    /* Snappy: a raw block (no xerial framing) decodes too, as librdkafka may write. */
    td_buf c, d;
    td_buf_init(&c);
    td_buf_init(&d);
    ASSERT_OK(td_compress(TD_COMPRESS_SNAPPY, td_slice_make("hello hello hello", 17), &c, 0));
    ASSERT(c.len > 16 && c.p[0] == 0x82);
    /* The xerial body's first block, minus the 16-byte header and 4-byte length, is raw. */
    ASSERT_OK(td_decompress(TD_COMPRESS_SNAPPY, td_slice_make(c.p + 20, c.len - 20), &d, 100));
    ASSERT_EQ(d.len, 17);
    ASSERT_MEM_EQ(d.p, "hello hello hello", 17);
    ASSERT_EQ(td_decompress(9, td_buf_slice(&c), &d, 100), TD_EUNSUPPORTED);
    td_buf_free(&c);
    td_buf_free(&d);
    /* Two concatenated gzip members are one stream. */
    td_buf_init(&c);
    td_buf_init(&d);
    ASSERT_OK(td_compress(TD_COMPRESS_GZIP, td_slice_make("abc", 3), &c, 0));
    ASSERT_OK(td_compress(TD_COMPRESS_GZIP, td_slice_make("def", 3), &c, 0));
    ASSERT_OK(td_decompress(TD_COMPRESS_GZIP, td_buf_slice(&c), &d, 100));
    ASSERT_EQ(d.len, 6);
    ASSERT_MEM_EQ(d.p, "abcdef", 6);
    td_buf_free(&c);
    td_buf_free(&d);
}

/* Empty data through every codec, into buffers that own no storage yet (p is NULL): compressing
 * nothing and decompressing it gives nothing back, and a snappy block that decodes to zero bytes
 * (raw: the single length byte 0; xerial: a header and one such block) is empty output, not an
 * error. Before the fix the snappy decoder wrote to out->p + out->len with out->p NULL, which
 * UBSan reports as an offset applied to a null pointer. The input views are NULL too, as
 * td_slice_make(NULL, 0) is a valid empty slice. */
static void test_compression_empty(void)
{
    for (int codec = TD_COMPRESS_NONE; codec <= TD_COMPRESS_ZSTD; codec++) {
        td_buf c, d;
        td_buf_init(&c);
        td_buf_init(&d);
        ASSERT_OK(td_compress(codec, td_slice_make(NULL, 0), &c, 0));
        ASSERT_OK(td_decompress(codec, td_buf_slice(&c), &d, 100));
        ASSERT_EQ(d.len, 0);
        td_buf_free(&d);
        /* No input at all is empty for "none" and corrupt (truncated) for every codec but
         * snappy's xerial framing, which needs its header. */
        td_buf_init(&d);
        int rc = td_decompress(codec, td_slice_make(NULL, 0), &d, 100);
        ASSERT(rc == 0 || rc == TD_ECORRUPT);
        ASSERT_EQ(d.len, 0);
        td_buf_free(&c);
        td_buf_free(&d);
    }
    static const uint8_t raw_empty[1] = {0};
    static const uint8_t xerial_empty[21] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0,
                                             1,    0,   0,   0,   1,   0,   0,   0, 1, 0};
    const td_slice blocks[] = {td_slice_make(raw_empty, sizeof(raw_empty)),
                               td_slice_make(xerial_empty, sizeof(xerial_empty))};
    for (size_t i = 0; i < TD_ARRAY_LEN(blocks); i++) {
        td_buf d;
        td_buf_init(&d);
        ASSERT_OK(td_decompress(TD_COMPRESS_SNAPPY, blocks[i], &d, 100));
        ASSERT_EQ(d.len, 0);
        /* The same after bytes already in the buffer: they stay, nothing is added. */
        ASSERT_OK(td_buf_append(&d, "ab", 2));
        ASSERT_OK(td_decompress(TD_COMPRESS_SNAPPY, blocks[i], &d, 100));
        ASSERT_EQ(d.len, 2);
        ASSERT_MEM_EQ(d.p, "ab", 2);
        td_buf_free(&d);
    }
}

TEST_MAIN(TEST(test_roundtrip_every_codec), TEST(test_known_answer),
          TEST(test_prefixes_and_corruption), TEST(test_deep_validation),
          TEST(test_log_append_time), TEST(test_compression_bounds_and_corruption),
          TEST(test_compression_empty), TEST(test_next_key_truncated), TEST(test_next_key_headers))
