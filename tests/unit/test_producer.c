/* Unit tests for idempotent producers' state (storage/producer.c): Kafka's sequence rules, the
 * table, expiry, and snapshots (round trip and every kind of damage). */
#include <stdlib.h>
#include <string.h>

#include "storage/producer.h"
#include "test.h"

/* The header of a batch of `count` records from producer pid at epoch, first sequence seq,
 * stored at offset base. */
static td_batch_header hdr(int64_t pid, int16_t epoch, int32_t seq, int32_t count, int64_t base)
{
    td_batch_header h;
    memset(&h, 0, sizeof(h));
    h.producer_id = pid;
    h.producer_epoch = epoch;
    h.base_sequence = seq;
    h.record_count = count;
    h.last_offset_delta = count - 1;
    h.base_offset = base;
    h.max_timestamp = 1700000000000 + base;
    return h;
}

/* Checks h against s; when new and in order, records it. Returns pstate_check's result. */
static int put(td_pstate *s, td_batch_header h, int64_t now)
{
    int rc = pstate_check(s, &h, NULL);
    if (rc == 0)
        ASSERT_OK(pstate_update(s, &h, now));
    return rc;
}

static void test_sequence_rules(void)
{
    td_pstate s;
    pstate_init(&s);
    /* A producer the partition does not know may start anywhere (Kafka: its state may have
     * expired, or its batches been deleted). */
    ASSERT_EQ(put(&s, hdr(5, 0, 100, 10, 0), 1), 0);
    ASSERT_EQ(put(&s, hdr(5, 0, 110, 5, 10), 1), 0);
    /* In order; then a gap and a repeat of an old start are out of order. */
    ASSERT_EQ(put(&s, hdr(5, 0, 116, 1, 15), 1), TD_ESEQUENCE);
    ASSERT_EQ(put(&s, hdr(5, 0, 114, 1, 15), 1), TD_ESEQUENCE);
    ASSERT_EQ(put(&s, hdr(5, 0, 115, 1, 15), 1), 0);
    /* Duplicates answer with the original offsets, for each of the last five batches. */
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(put(&s, hdr(5, 0, 116 + i * 2, 2, 16 + i * 2), 1), 0);
    /* Batches held now: 115 (offset 15), 116-117, 118-119, 120-121, 122-123. */
    td_pbatch d;
    td_batch_header retry = hdr(5, 0, 118, 2, 999);
    ASSERT_EQ(pstate_check(&s, &retry, &d), 1);
    ASSERT_EQ(d.first_offset, 18);
    ASSERT_EQ(d.last_offset, 19);
    ASSERT_EQ(d.max_timestamp, 1700000000000 + 18);
    retry = hdr(5, 0, 115, 1, 999);
    ASSERT_EQ(pstate_check(&s, &retry, &d), 1);
    ASSERT_EQ(d.first_offset, 15);
    /* The sixth batch back is forgotten: its retry is out of order, as in Kafka. */
    retry = hdr(5, 0, 110, 5, 999);
    ASSERT_EQ(pstate_check(&s, &retry, &d), TD_ESEQUENCE);
    /* A retry must match a batch's whole range: the same start with another length is not a
     * duplicate. */
    retry = hdr(5, 0, 118, 1, 999);
    ASSERT_EQ(pstate_check(&s, &retry, NULL), TD_ESEQUENCE);
    /* Epochs: older is fenced, even for a range that matches; newer must start at 0. */
    retry = hdr(5, -1, 0, 1, 999);
    ASSERT_EQ(pstate_check(&s, &retry, NULL), TD_EINVAL);
    ASSERT_EQ(put(&s, hdr(5, 1, 7, 1, 24), 1), TD_ESEQUENCE);
    ASSERT_EQ(put(&s, hdr(5, 1, 0, 3, 24), 1), 0);
    ASSERT_EQ(put(&s, hdr(5, 0, 124, 1, 27), 1), TD_EFENCED);
    ASSERT_EQ(put(&s, hdr(5, 0, 118, 2, 27), 1), TD_EFENCED); /* no duplicate across epochs */
    ASSERT_EQ(put(&s, hdr(5, 1, 3, 1, 27), 1), 0);
    retry = hdr(5, 1, 0, 3, 999);
    ASSERT_EQ(pstate_check(&s, &retry, &d), 1);
    ASSERT_EQ(d.first_offset, 24);
    ASSERT_EQ(d.last_offset, 26);
    /* Negative sequences are refused outright. */
    retry = hdr(5, 1, -1, 1, 999);
    ASSERT_EQ(pstate_check(&s, &retry, NULL), TD_EINVAL);
    /* Producers are independent. */
    ASSERT_EQ(put(&s, hdr(6, 0, 0, 1, 28), 1), 0);
    ASSERT_EQ(put(&s, hdr(6, 0, 2, 1, 29), 1), TD_ESEQUENCE);
    ASSERT_EQ(put(&s, hdr(5, 1, 4, 1, 29), 1), 0);
    ASSERT_EQ(s.n, 2u);
    pstate_free(&s);
}

static void test_sequence_wraps(void)
{
    td_batch_header h = hdr(1, 0, INT32_MAX - 2, 5, 0);
    ASSERT_EQ(pstate_last_seq(&h), 1); /* MAX-2, MAX-1, MAX, 0, 1 */
    td_pstate s;
    pstate_init(&s);
    ASSERT_EQ(put(&s, hdr(1, 0, INT32_MAX - 1, 2, 0), 1), 0);
    ASSERT_EQ(put(&s, hdr(1, 0, 0, 3, 2), 1), 0); /* after MAX comes 0 */
    ASSERT_EQ(put(&s, hdr(1, 0, 3, 1, 5), 1), 0);
    ASSERT_EQ(put(&s, hdr(2, 0, INT32_MAX - 2, 5, 6), 1), 0);
    ASSERT_EQ(put(&s, hdr(2, 0, 2, 1, 11), 1), 0);
    td_pbatch d;
    td_batch_header retry = hdr(2, 0, INT32_MAX - 2, 5, 99);
    ASSERT_EQ(pstate_check(&s, &retry, &d), 1);
    ASSERT_EQ(d.last_seq, 1);
    pstate_free(&s);
}

/* Many producers: growth, lookups, and expiry's backward-shift deletion keep every survivor
 * findable. */
static void test_table_and_expiry(void)
{
    td_pstate s;
    pstate_init(&s);
    enum { N = 5000 };
    for (int64_t i = 0; i < N; i++) {
        int64_t pid = i * 7919 % 100003; /* scattered, distinct */
        ASSERT_EQ(put(&s, hdr(pid, 0, 0, 1, i), 1000 + i % 2), 0);
    }
    ASSERT_EQ(s.n, (size_t)N);
    ASSERT(pstate_find(&s, 3) == NULL);
    /* Every other producer is idle since time 1000. */
    ASSERT_EQ(pstate_expire(&s, 1001), (size_t)N / 2);
    ASSERT_EQ(s.n, (size_t)N / 2);
    for (int64_t i = 0; i < N; i++) {
        int64_t pid = i * 7919 % 100003;
        const td_producer *e = pstate_find(&s, pid);
        if (i % 2 == 0) {
            ASSERT(e == NULL);
        } else {
            ASSERT(e != NULL);
            ASSERT_EQ(e->b[e->n - 1].first_offset, i);
        }
    }
    /* An expired producer starts over at any sequence. */
    ASSERT_EQ(put(&s, hdr(0, 0, 42, 1, N), 5000), 0);
    ASSERT_EQ(pstate_expire(&s, INT64_MAX), (size_t)N / 2 + 1);
    ASSERT_EQ(s.n, 0u);
    pstate_free(&s);
}

static void test_snapshot_round_trip(void)
{
    td_pstate s, t;
    pstate_init(&s);
    pstate_init(&t);
    for (int64_t pid = 0; pid < 50; pid++)
        for (int k = 0; k < (int)(pid % 8); k++)
            ASSERT_EQ(
                put(&s, hdr(pid, (int16_t)(pid % 3), k * 2, 2, pid * 100 + k * 2), pid * 1000), 0);
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(pstate_encode(&s, 5000, &b));
    int64_t off = -1;
    ASSERT_OK(pstate_decode(b.p, b.len, &t, &off));
    ASSERT_EQ(off, 5000);
    ASSERT_EQ(t.n, s.n);
    for (int64_t pid = 1; pid < 50; pid++) {
        const td_producer *a = pstate_find(&s, pid), *c = pstate_find(&t, pid);
        if (pid % 8 == 0) {
            ASSERT(a == NULL && c == NULL);
            continue;
        }
        ASSERT(a && c);
        ASSERT_EQ(c->epoch, a->epoch);
        ASSERT_EQ(c->n, a->n);
        ASSERT_EQ(c->last_ms, a->last_ms);
        ASSERT_MEM_EQ(c->b, a->b, a->n * sizeof(a->b[0]));
    }
    /* The decoded state answers like the original. */
    td_pbatch d;
    td_batch_header retry = hdr(7, 1, 8, 2, 0);
    ASSERT_EQ(pstate_check(&t, &retry, &d), 1);
    ASSERT_EQ(d.first_offset, 708);
    /* An empty state round-trips too. */
    td_pstate e;
    pstate_init(&e);
    td_buf_reset(&b);
    ASSERT_OK(pstate_encode(&e, 0, &b));
    pstate_free(&t);
    ASSERT_OK(pstate_decode(b.p, b.len, &t, &off));
    ASSERT_EQ(t.n, 0u);
    ASSERT_EQ(off, 0);
    td_buf_free(&b);
    pstate_free(&s);
    pstate_free(&t);
}

/* Every truncation, every single-byte change, and consistent-CRC lies are refused cleanly. */
static void test_snapshot_damage(void)
{
    td_pstate s, t;
    pstate_init(&s);
    pstate_init(&t);
    for (int64_t pid = 1; pid <= 3; pid++)
        for (int k = 0; k < 3; k++)
            ASSERT_EQ(put(&s, hdr(pid, 0, k, 1, pid * 10 + k), 1), 0);
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(pstate_encode(&s, 100, &b));
    int64_t off;
    for (size_t n = 0; n < b.len; n++) {
        ASSERT_EQ(pstate_decode(b.p, n, &t, &off), TD_ECORRUPT);
        ASSERT_EQ(t.n, 0u);
    }
    uint8_t *c = malloc(b.len);
    for (size_t i = 0; i < b.len; i++) {
        memcpy(c, b.p, b.len);
        c[i] ^= 0x40;
        ASSERT_EQ(pstate_decode(c, b.len, &t, &off), TD_ECORRUPT);
    }
    /* With the CRC recomputed, the semantic checks still hold: a count beyond the data, a
     * batch at or beyond the snapshot's offset, a repeated producer. */
    memcpy(c, b.p, b.len);
    td_store_be32(c + 20, 1000);
    td_store_be32(c + 8, td_crc32c(0, c + 12, b.len - 12));
    ASSERT_EQ(pstate_decode(c, b.len, &t, &off), TD_ECORRUPT);
    memcpy(c, b.p, b.len);
    td_store_be64(c + 12, 5); /* every batch lies at offsets >= 10 */
    td_store_be32(c + 8, td_crc32c(0, c + 12, b.len - 12));
    ASSERT_EQ(pstate_decode(c, b.len, &t, &off), TD_ECORRUPT);
    ASSERT_CONTAINS(td_last_error(), "invalid batch");
    memcpy(c, b.p, b.len);
    size_t prod = 32 + 3 * 32;        /* the first producer's size (version 2) */
    memcpy(c + 24 + prod, c + 24, 8); /* the second producer gets the first one's id */
    td_store_be32(c + 8, td_crc32c(0, c + 12, b.len - 12));
    ASSERT_EQ(pstate_decode(c, b.len, &t, &off), TD_ECORRUPT);
    ASSERT_CONTAINS(td_last_error(), "repeated");
    /* Trailing bytes. */
    uint8_t *longer = malloc(b.len + 1);
    memcpy(longer, b.p, b.len);
    longer[b.len] = 0;
    td_store_be32(longer + 8, td_crc32c(0, longer + 12, b.len + 1 - 12));
    ASSERT_EQ(pstate_decode(longer, b.len + 1, &t, &off), TD_ECORRUPT);
    ASSERT_EQ(t.n, 0u);
    free(longer);
    free(c);
    td_buf_free(&b);
    pstate_free(&s);
}

TEST_MAIN(TEST(test_sequence_rules), TEST(test_sequence_wraps), TEST(test_table_and_expiry),
          TEST(test_snapshot_round_trip), TEST(test_snapshot_damage))
