/*
 * keyindex.c: the key index of a compacted partition (keyindex.h; docs/storage.md#key-index).
 *
 * An open-addressing hash table (linear probing, at most 70% full) of 24-byte slots: the key's
 * 128-bit digest and the offset of its latest record. Nothing is ever removed from it: a
 * tombstone's key points at the tombstone, and a key whose record the cleaner or retention
 * removed points at an offset that no longer holds it; the lookup reads the record and answers
 * "not found" for both, so the table is exact without being told what the cleaner did. It
 * shrinks only when rebuilt (at open). The table grows by doubling, each growth charged to the
 * broker's budget first.
 *
 * Locks: the partition's lock, then the index's. Appends record their batch with both held (the
 * partition's lock orders them); builds and catch-ups read the log with neither held and take
 * the index's lock per batch, so that the partition's lock is never awaited while holding the
 * index's. `built_to` says which offsets the table covers: every record below it. An append
 * records its batch only when the table is complete up to the batch; otherwise the next lookup
 * catches up by reading from built_to to the high watermark.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "storage/keyindex.h"
#include "storage/part_int.h"

#define SLOT_BYTES ((int64_t)sizeof(kslot))
#define FIRST_CAP 16 /* 384 bytes: a broker may have thousands of compacted partitions */
#define READ_CHUNK (1u << 20)
#define MAX_UNCOMPRESSED (64u << 20)

typedef struct kslot {
    uint8_t d[TD_KEY_DIGEST_LEN];
    int64_t off; /* -1: empty */
} kslot;

struct td_keybudget {
    int64_t max;
    int64_t used; /* atomic */
};

struct td_keyindex {
    pthread_mutex_t mu;
    td_keybudget *budget; /* NULL: disabled */
    kslot *v;
    size_t cap, n;
    int64_t charged;  /* bytes of v charged to the budget */
    int64_t built_to; /* every record below is in the table */
    bool over;        /* the budget refused a growth: the table was dropped */
    int64_t wanted;   /* the bytes it asked for then, for the error */
};

static void (*digest_fn)(const void *, size_t, uint8_t *) = td_key_digest;

void keyindex_test_digest(void (*fn)(const void *key, size_t n, uint8_t out[TD_KEY_DIGEST_LEN]))
{
    digest_fn = fn ? fn : td_key_digest;
}

td_keybudget *keybudget_new(int64_t max_bytes)
{
    td_keybudget *b = calloc(1, sizeof(*b));
    if (b)
        b->max = max_bytes;
    return b;
}

void keybudget_free(td_keybudget *b)
{
    free(b);
}

int64_t keybudget_used(const td_keybudget *b)
{
    return b ? __atomic_load_n(&b->used, __ATOMIC_RELAXED) : 0;
}

int64_t keybudget_max(const td_keybudget *b)
{
    return b ? b->max : 0;
}

static bool budget_take(td_keybudget *b, int64_t bytes)
{
    int64_t used = __atomic_load_n(&b->used, __ATOMIC_RELAXED);
    do {
        if (used + bytes > b->max)
            return false;
    } while (!__atomic_compare_exchange_n(&b->used, &used, used + bytes, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return true;
}

static void budget_give(td_keybudget *b, int64_t bytes)
{
    if (b && bytes)
        __atomic_sub_fetch(&b->used, bytes, __ATOMIC_RELAXED);
}

/* Frees the table and gives its bytes back. Caller holds ki->mu. */
static void table_drop(td_keyindex *ki)
{
    free(ki->v);
    ki->v = NULL;
    ki->cap = ki->n = 0;
    budget_give(ki->budget, ki->charged);
    ki->charged = 0;
}

static size_t slot_of(const kslot *v, size_t cap, const uint8_t *d)
{
    size_t i = (size_t)td_load_be64(d) & (cap - 1);
    while (v[i].off >= 0 && memcmp(v[i].d, d, TD_KEY_DIGEST_LEN))
        i = (i + 1) & (cap - 1);
    return i;
}

/* Doubles the table, charging the budget first; false (the table dropped, `over` set) when the
 * budget refuses, -ENOMEM aside. Caller holds ki->mu. */
static bool table_grow(td_keyindex *ki)
{
    size_t cap = ki->cap ? ki->cap * 2 : FIRST_CAP;
    int64_t bytes = (int64_t)cap * SLOT_BYTES;
    if (!budget_take(ki->budget, bytes)) {
        ki->over = true;
        ki->wanted = ki->charged + bytes;
        table_drop(ki);
        return false;
    }
    kslot *v = malloc((size_t)cap * sizeof(*v));
    if (!v) {
        budget_give(ki->budget, bytes);
        ki->over = true;
        ki->wanted = ki->charged + bytes;
        table_drop(ki);
        return false;
    }
    for (size_t i = 0; i < cap; i++)
        v[i].off = -1;
    for (size_t i = 0; i < ki->cap; i++)
        if (ki->v[i].off >= 0)
            v[slot_of(v, cap, ki->v[i].d)] = ki->v[i];
    free(ki->v);
    budget_give(ki->budget, ki->charged);
    ki->v = v;
    ki->cap = cap;
    ki->charged = bytes;
    return true;
}

/* Records that key's latest record is at off. Caller holds ki->mu. */
static void table_put(td_keyindex *ki, const void *key, size_t n, int64_t off)
{
    if (ki->over || !ki->budget)
        return;
    if ((ki->n + 1) * 10 > ki->cap * 7 && !table_grow(ki))
        return;
    uint8_t d[TD_KEY_DIGEST_LEN];
    digest_fn(key, n, d);
    kslot *s = &ki->v[slot_of(ki->v, ki->cap, d)];
    if (s->off < 0) {
        memcpy(s->d, d, sizeof(d));
        ki->n++;
    } else if (s->off > off) {
        return;
    }
    s->off = off;
}

/* Records the keyed records of batch (n bytes) at or above ki->built_to, and moves built_to
 * past the batch. Caller holds ki->mu. */
static void record_batch(td_keyindex *ki, td_batch_reader *rd, const uint8_t *batch, size_t n,
                         const char *label)
{
    td_batch_header h;
    if (batch_header_parse(batch, n, &h) != 0 || batch_last_offset(&h) < ki->built_to)
        return;
    if (!(h.attributes & TD_BATCH_ATTR_CONTROL)) {
        int rc = batch_reader_open(rd, batch, n, MAX_UNCOMPRESSED);
        int64_t off;
        td_slice key;
        bool null;
        if (rc == 0)
            while ((rc = batch_reader_next_key(rd, &off, &key, &null)) == 1)
                if (!null && off >= ki->built_to)
                    table_put(ki, key.p, key.n, off);
        if (rc < 0)
            TD_WARN("storage",
                    "partition %s: the key index skips the batch at offset %" PRId64 ": %s", label,
                    h.base_offset, td_last_error());
    }
    ki->built_to = batch_last_offset(&h) + 1;
}

void keyindex_appended_locked(td_part *p, const uint8_t *batch, size_t n)
{
    td_keyindex *ki = p->keys;
    if (!ki)
        return;
    pthread_mutex_lock(&ki->mu);
    td_batch_header h;
    if (ki->budget && !ki->over && batch_header_parse(batch, n, &h) == 0 &&
        h.base_offset == ki->built_to) {
        td_batch_reader rd;
        batch_reader_init(&rd);
        record_batch(ki, &rd, batch, n, p->label);
        batch_reader_free(&rd);
    }
    pthread_mutex_unlock(&ki->mu);
}

/* Reads the log from ki->built_to to the high watermark into the table. */
static int catch_up(td_part *p, td_keyindex *ki)
{
    td_buf b;
    td_buf_init(&b);
    td_batch_reader rd;
    batch_reader_init(&rd);
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&ki->mu);
        bool live = ki->budget && !ki->over;
        int64_t pos = ki->built_to;
        pthread_mutex_unlock(&ki->mu);
        int64_t ls = part_log_start(p);
        if (!live || pos >= part_high_watermark(p))
            break;
        if (pos < ls)
            pos = ls;
        td_range r;
        rc = part_read(p, pos, READ_CHUNK, &r);
        if (rc == TD_EEND || (rc == TD_ERANGE && part_log_start(p) > pos)) {
            rc = 0;
            if (part_log_start(p) <= pos)
                break;
            continue; /* retention moved the start: read from there */
        }
        if (rc)
            break;
        td_buf_reset(&b);
        rc = part_range_copy(&r, &b);
        part_range_release(&r);
        if (rc)
            break;
        pthread_mutex_lock(&ki->mu);
        if (ki->built_to < pos)
            ki->built_to = pos; /* the records below pos are gone */
        for (size_t at = 0; at < b.len;) {
            td_batch_header h;
            if (batch_header_parse(b.p + at, b.len - at, &h) != 0)
                break;
            record_batch(ki, &rd, b.p + at, batch_total_size(&h), p->label);
            at += batch_total_size(&h);
        }
        if (ki->built_to < r.next_offset)
            ki->built_to = r.next_offset;
        pthread_mutex_unlock(&ki->mu);
    }
    batch_reader_free(&rd);
    td_buf_free(&b);
    return rc;
}

static td_keyindex *keys_of(td_part *p, bool create)
{
    pthread_mutex_lock(&p->mu);
    td_keyindex *ki = p->keys;
    if (!ki && create && (ki = calloc(1, sizeof(*ki))) != NULL) {
        pthread_mutex_init(&ki->mu, NULL);
        p->keys = ki;
    }
    pthread_mutex_unlock(&p->mu);
    return ki;
}

int part_keys_enable(td_part *p, td_keybudget *budget)
{
    td_keyindex *ki = keys_of(p, budget != NULL);
    if (!ki)
        return budget ? -ENOMEM : 0;
    pthread_mutex_lock(&ki->mu);
    bool same = ki->budget == budget;
    if (!same) {
        table_drop(ki);
        ki->budget = budget;
        ki->over = false;
        ki->built_to = 0;
    }
    pthread_mutex_unlock(&ki->mu);
    return budget && !same ? catch_up(p, ki) : 0;
}

void keyindex_free(td_part *p)
{
    td_keyindex *ki = p->keys;
    if (!ki)
        return;
    table_drop(ki);
    pthread_mutex_destroy(&ki->mu);
    free(ki);
    p->keys = NULL;
}

void part_key_hit_init(part_key_hit *h)
{
    memset(h, 0, sizeof(*h));
    td_buf_init(&h->buf);
    batch_reader_init(&h->rd);
}

void part_key_hit_free(part_key_hit *h)
{
    batch_reader_free(&h->rd);
    td_buf_free(&h->buf);
}

/* The record at exactly `off` into hit: 0, or TD_ENOTFOUND if that offset holds none. */
static int read_record(td_part *p, int64_t off, part_key_hit *hit)
{
    td_range r;
    int rc = part_read(p, off, 1, &r);
    if (rc == TD_EEND || rc == TD_ERANGE)
        return TD_ENOTFOUND;
    if (rc)
        return rc;
    td_batch_header h;
    td_buf_reset(&hit->buf);
    rc = part_range_copy(&r, &hit->buf);
    part_range_release(&r);
    if (rc == 0)
        rc = batch_header_parse(hit->buf.p, hit->buf.len, &h);
    if (rc == 0 && (h.base_offset > off || (h.attributes & TD_BATCH_ATTR_CONTROL)))
        return TD_ENOTFOUND; /* the cleaner removed the batch */
    if (rc == 0)
        rc = batch_reader_open(&hit->rd, hit->buf.p, batch_total_size(&h), MAX_UNCOMPRESSED);
    if (rc == 0)
        while ((rc = batch_reader_next(&hit->rd, &hit->rec)) == 1)
            if (hit->rec.offset >= off)
                return hit->rec.offset == off ? 0 : TD_ENOTFOUND;
    return rc < 0 ? rc : TD_ENOTFOUND;
}

/* The record of key at off (its latest) into hit, if it is still there and not a tombstone. */
static int hit_at(td_part *p, const void *key, size_t keylen, int64_t off, part_key_hit *hit)
{
    int rc;
    if (off < 0 || off < part_log_start(p))
        return td_fail(TD_ENOTFOUND, "no record with that key");
    /* Indexed at append, it may not be durable yet (fsync=always): readers see only what is. */
    if (off >= part_high_watermark(p) && (rc = part_wait_durable(p, off + 1)) != 0)
        return rc;
    rc = read_record(p, off, hit);
    if (rc == 0 && (hit->rec.key_null || hit->rec.key.n != keylen ||
                    (keylen && memcmp(hit->rec.key.p, key, keylen))))
        rc = TD_ENOTFOUND; /* a digest collision: the slot holds another key */
    if (rc == 0 && hit->rec.value_null)
        rc = TD_ENOTFOUND; /* a tombstone */
    if (rc == TD_ENOTFOUND)
        return td_fail(TD_ENOTFOUND, "no record with that key");
    return rc;
}

int part_key_lookup(td_part *p, const void *key, size_t keylen, part_key_hit *hit)
{
    if (part_offline(p))
        return td_fail(TD_EOFFLINE, "partition %s is offline: %s", p->label, part_offline(p));
    /* A key.index topic: its index of every event (segkeys.c) knows each key's latest, and
     * this one is not kept (table.c). */
    pthread_mutex_lock(&p->mu);
    bool keyed = p->cfg.key_index;
    pthread_mutex_unlock(&p->mu);
    if (keyed) {
        int64_t v;
        int rc = part_key_version(p, key, keylen, &v);
        return rc ? rc : hit_at(p, key, keylen, v, hit);
    }
    td_keyindex *ki = keys_of(p, false);
    bool enabled = false;
    if (ki) {
        pthread_mutex_lock(&ki->mu);
        enabled = ki->budget != NULL;
        /* Dropped for lack of memory, and the budget now has room for what it asked (another
         * index gave memory back): rebuild it, by the catch-up below, from the log start. */
        if (enabled && ki->over &&
            keybudget_used(ki->budget) + ki->wanted <= keybudget_max(ki->budget)) {
            ki->over = false;
            ki->built_to = 0;
        }
        pthread_mutex_unlock(&ki->mu);
    }
    if (!enabled)
        return td_fail(TD_EUNSUPPORTED, "partition %s has no key index: its topic is not compacted",
                       p->label);
    int rc = catch_up(p, ki);
    if (rc)
        return rc;
    uint8_t d[TD_KEY_DIGEST_LEN];
    digest_fn(key, keylen, d);
    int64_t off = -1;
    pthread_mutex_lock(&ki->mu);
    if (ki->over) {
        rc = td_fail(TD_EFULL,
                     "the key index of partition %s needs %" PRId64
                     " bytes, more than table.index.max.bytes (%" PRId64
                     ") leaves; raise the setting, or free memory of other indexes",
                     p->label, ki->wanted, keybudget_max(ki->budget));
    } else if (ki->cap) {
        const kslot *s = &ki->v[slot_of(ki->v, ki->cap, d)];
        off = s->off;
    }
    pthread_mutex_unlock(&ki->mu);
    if (rc)
        return rc;
    return hit_at(p, key, keylen, off, hit);
}

void part_keys_stats(td_part *p, int64_t *keys, int64_t *bytes)
{
    td_keyindex *ki = keys_of(p, false);
    *keys = *bytes = 0;
    if (!ki)
        return;
    pthread_mutex_lock(&ki->mu);
    *keys = (int64_t)ki->n;
    *bytes = ki->charged;
    pthread_mutex_unlock(&ki->mu);
}
