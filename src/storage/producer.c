/*
 * producer.c: idempotent producers' state per partition (see producer.h).
 *
 * The table is open addressing with linear probing (capacity a power of two, at most half
 * full) and backward-shift deletion, so there are no tombstones.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "storage/producer.h"

#define SNAP_MAGIC "TDPS"
#define SNAP_VERSION 2
#define SNAP_HEADER 24
#define SNAP_PRODUCER_V1 20
#define SNAP_PRODUCER 32
#define SNAP_BATCH 32

static size_t slot_of(int64_t pid, size_t cap)
{
    uint64_t x = (uint64_t)pid;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

void pstate_init(td_pstate *s)
{
    memset(s, 0, sizeof(*s));
}

void pstate_free(td_pstate *s)
{
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

static td_producer *find(const td_pstate *s, int64_t pid)
{
    if (s->cap == 0)
        return NULL;
    for (size_t i = slot_of(pid, s->cap);; i = (i + 1) & (s->cap - 1)) {
        td_producer *e = &s->slots[i];
        if (e->pid == pid)
            return e;
        if (e->pid < 0)
            return NULL;
    }
}

const td_producer *pstate_find(const td_pstate *s, int64_t pid)
{
    return find(s, pid);
}

static int grow(td_pstate *s)
{
    size_t cap = s->cap ? s->cap * 2 : 16;
    td_producer *slots = malloc(cap * sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        slots[i].pid = -1;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].pid < 0)
            continue;
        size_t j = slot_of(s->slots[i].pid, cap);
        while (slots[j].pid >= 0)
            j = (j + 1) & (cap - 1);
        slots[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

/* The producer's entry, created empty (epoch -1) if absent. */
static td_producer *get_or_add(td_pstate *s, int64_t pid)
{
    td_producer *e = find(s, pid);
    if (e)
        return e;
    if ((s->n + 1) * 2 > s->cap && grow(s) != 0)
        return NULL;
    size_t i = slot_of(pid, s->cap);
    while (s->slots[i].pid >= 0)
        i = (i + 1) & (s->cap - 1);
    e = &s->slots[i];
    memset(e, 0, sizeof(*e));
    e->pid = pid;
    e->epoch = -1;
    e->txn_first = -1;
    s->n++;
    return e;
}

/* Removes slot i, shifting back the entries of its probe run. */
static void remove_at(td_pstate *s, size_t i)
{
    size_t mask = s->cap - 1;
    s->slots[i].pid = -1;
    s->n--;
    for (size_t j = (i + 1) & mask; s->slots[j].pid >= 0; j = (j + 1) & mask) {
        size_t home = slot_of(s->slots[j].pid, s->cap);
        /* Move j back to i if its home is not in the cyclic range (i, j]. */
        bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            s->slots[i] = s->slots[j];
            s->slots[j].pid = -1;
            i = j;
        }
    }
}

int32_t pstate_last_seq(const td_batch_header *h)
{
    int64_t last = (int64_t)h->base_sequence + h->last_offset_delta;
    if (last > INT32_MAX)
        last -= (int64_t)INT32_MAX + 1;
    return (int32_t)last;
}

static bool in_sequence(int32_t last, int32_t next)
{
    return (int64_t)next == (int64_t)last + 1 || (next == 0 && last == INT32_MAX);
}

int pstate_check(const td_pstate *s, const td_batch_header *h, td_pbatch *dup)
{
    if (h->producer_epoch < 0 || h->base_sequence < 0)
        return td_fail(TD_EINVAL,
                       "producer %" PRId64 " sent epoch %d and sequence %" PRId32
                       ": both must be >= 0",
                       h->producer_id, h->producer_epoch, h->base_sequence);
    const td_producer *e = find(s, h->producer_id);
    if (!e || e->epoch < 0)
        return 0; /* unknown producer: any sequence starts it */
    if (e->txn_first >= 0 && !(h->attributes & TD_BATCH_ATTR_TRANSACTIONAL))
        return td_fail(TD_ETXN,
                       "producer %" PRId64 " has a transaction open since offset %" PRId64
                       ": a batch outside it is refused",
                       h->producer_id, e->txn_first);
    int32_t last_seq = pstate_last_seq(h);
    if (h->producer_epoch == e->epoch) {
        for (int i = 0; i < e->n; i++) {
            if (e->b[i].first_seq == h->base_sequence && e->b[i].last_seq == last_seq) {
                if (dup)
                    *dup = e->b[i];
                return 1;
            }
        }
    }
    if (h->producer_epoch < e->epoch)
        return td_fail(TD_EFENCED,
                       "producer %" PRId64 " sent epoch %d, older than its current epoch %d",
                       h->producer_id, h->producer_epoch, e->epoch);
    if (h->producer_epoch > e->epoch) {
        if (h->base_sequence != 0)
            return td_fail(TD_ESEQUENCE,
                           "producer %" PRId64 " starts epoch %d at sequence %" PRId32
                           " instead of 0",
                           h->producer_id, h->producer_epoch, h->base_sequence);
        return 0;
    }
    int32_t cur = e->n ? e->b[e->n - 1].last_seq : -1;
    if (e->n && !in_sequence(cur, h->base_sequence))
        return td_fail(TD_ESEQUENCE,
                       "producer %" PRId64 " sent sequence %" PRId32 " after %" PRId32,
                       h->producer_id, h->base_sequence, cur);
    return 0;
}

int pstate_update(td_pstate *s, const td_batch_header *h, int64_t now_ms)
{
    if (h->producer_id < 0)
        return 0;
    td_producer *e = get_or_add(s, h->producer_id);
    if (!e)
        return -ENOMEM;
    if (h->producer_epoch != e->epoch) {
        e->epoch = h->producer_epoch;
        e->n = 0;
    }
    if (e->n == TD_PRODUCER_BATCHES) {
        memmove(e->b, e->b + 1, (TD_PRODUCER_BATCHES - 1) * sizeof(e->b[0]));
        e->n--;
    }
    e->b[e->n++] = (td_pbatch){h->base_sequence, pstate_last_seq(h), h->base_offset,
                               batch_last_offset(h), h->max_timestamp};
    if ((h->attributes & TD_BATCH_ATTR_TRANSACTIONAL) && e->txn_first < 0)
        e->txn_first = h->base_offset;
    if (now_ms > e->last_ms)
        e->last_ms = now_ms;
    return 0;
}

int pstate_marker(td_pstate *s, int64_t pid, int16_t epoch, int32_t coord_epoch, int64_t now_ms,
                  int64_t *first)
{
    if (first)
        *first = -1;
    td_producer *e = find(s, pid);
    if (e && epoch < e->epoch)
        return td_fail(TD_EFENCED,
                       "a transaction marker of producer %" PRId64 " at epoch %d, older than %d",
                       pid, epoch, e->epoch);
    if (!e && !(e = get_or_add(s, pid)))
        return -ENOMEM;
    if (epoch != e->epoch) {
        e->epoch = epoch; /* a new epoch's sequences start over */
        e->n = 0;
    }
    if (first)
        *first = e->txn_first;
    e->txn_first = -1;
    e->coord_epoch = coord_epoch;
    if (now_ms > e->last_ms)
        e->last_ms = now_ms;
    return 0;
}

size_t pstate_expire(td_pstate *s, int64_t before_ms)
{
    size_t removed = 0;
    for (size_t i = 0; i < s->cap;) {
        if (s->slots[i].pid >= 0 && s->slots[i].last_ms < before_ms && s->slots[i].txn_first < 0) {
            remove_at(s, i);
            removed++;
            continue; /* an entry may have shifted into slot i */
        }
        i++;
    }
    return removed;
}

/* ---------------------------------------------------------------------------------------------
 * Snapshots
 */
int pstate_encode(const td_pstate *s, int64_t offset, td_buf *out)
{
    size_t start = out->len;
    int rc = td_buf_append(out, SNAP_MAGIC, 4);
    rc = rc ? rc : td_buf_append_be16(out, SNAP_VERSION);
    rc = rc ? rc : td_buf_append_be16(out, 0);
    rc = rc ? rc : td_buf_append_be32(out, 0); /* the CRC, filled in below */
    rc = rc ? rc : td_buf_append_be64(out, (uint64_t)offset);
    rc = rc ? rc : td_buf_append_be32(out, (uint32_t)s->n);
    for (size_t i = 0; rc == 0 && i < s->cap; i++) {
        const td_producer *e = &s->slots[i];
        if (e->pid < 0)
            continue;
        rc = td_buf_append_be64(out, (uint64_t)e->pid);
        rc = rc ? rc : td_buf_append_be16(out, (uint16_t)e->epoch);
        rc = rc ? rc : td_buf_append_u8(out, e->n);
        rc = rc ? rc : td_buf_append_u8(out, 0);
        rc = rc ? rc : td_buf_append_be64(out, (uint64_t)e->last_ms);
        rc = rc ? rc : td_buf_append_be64(out, (uint64_t)e->txn_first);
        rc = rc ? rc : td_buf_append_be32(out, (uint32_t)e->coord_epoch);
        for (int k = 0; rc == 0 && k < e->n; k++) {
            const td_pbatch *b = &e->b[k];
            rc = td_buf_append_be32(out, (uint32_t)b->first_seq);
            rc = rc ? rc : td_buf_append_be32(out, (uint32_t)b->last_seq);
            rc = rc ? rc : td_buf_append_be64(out, (uint64_t)b->first_offset);
            rc = rc ? rc : td_buf_append_be64(out, (uint64_t)b->last_offset);
            rc = rc ? rc : td_buf_append_be64(out, (uint64_t)b->max_timestamp);
        }
    }
    if (rc) {
        out->len = start;
        return rc;
    }
    uint8_t *p = out->p + start;
    td_store_be32(p + 8, td_crc32c(0, p + 12, out->len - start - 12));
    return 0;
}

int pstate_decode(const uint8_t *p, size_t n, td_pstate *s, int64_t *offset)
{
    const char *why = NULL;
    int rc = 0;
    if (n < SNAP_HEADER || memcmp(p, SNAP_MAGIC, 4) != 0)
        why = "not a producer snapshot";
    else if ((td_load_be16(p + 4) != SNAP_VERSION && td_load_be16(p + 4) != 1) ||
             td_load_be16(p + 6) != 0)
        why = "an unknown snapshot version";
    else if (td_load_be32(p + 8) != td_crc32c(0, p + 12, n - 12))
        why = "a CRC mismatch";
    if (why)
        goto bad;
    int64_t off = (int64_t)td_load_be64(p + 12);
    uint32_t count = td_load_be32(p + 20);
    bool v1 = td_load_be16(p + 4) == 1;
    size_t psize = v1 ? SNAP_PRODUCER_V1 : SNAP_PRODUCER;
    if (off < 0 || count > (n - SNAP_HEADER) / psize) {
        why = "an impossible offset or producer count";
        goto bad;
    }
    size_t pos = SNAP_HEADER;
    for (uint32_t i = 0; i < count; i++) {
        if (n - pos < psize) {
            why = "a truncated producer";
            goto bad;
        }
        int64_t pid = (int64_t)td_load_be64(p + pos);
        int16_t epoch = (int16_t)td_load_be16(p + pos + 8);
        uint8_t nb = p[pos + 10];
        int64_t last_ms = (int64_t)td_load_be64(p + pos + 12);
        int64_t txn_first = v1 ? -1 : (int64_t)td_load_be64(p + pos + 20);
        int32_t coord_epoch = v1 ? 0 : (int32_t)td_load_be32(p + pos + 28);
        pos += psize;
        if (pid < 0 || epoch < 0 || nb > TD_PRODUCER_BATCHES || (size_t)nb * SNAP_BATCH > n - pos ||
            find(s, pid) || txn_first < -1 || txn_first >= off) {
            why = "an invalid or repeated producer";
            goto bad;
        }
        td_producer *e = get_or_add(s, pid);
        if (!e) {
            rc = -ENOMEM;
            goto fail;
        }
        e->epoch = epoch;
        e->last_ms = last_ms;
        e->txn_first = txn_first;
        e->coord_epoch = coord_epoch;
        e->n = nb;
        for (int k = 0; k < nb; k++, pos += SNAP_BATCH) {
            td_pbatch *b = &e->b[k];
            b->first_seq = (int32_t)td_load_be32(p + pos);
            b->last_seq = (int32_t)td_load_be32(p + pos + 4);
            b->first_offset = (int64_t)td_load_be64(p + pos + 8);
            b->last_offset = (int64_t)td_load_be64(p + pos + 16);
            b->max_timestamp = (int64_t)td_load_be64(p + pos + 24);
            if (b->first_seq < 0 || b->last_seq < 0 || b->first_offset < 0 ||
                b->last_offset < b->first_offset || b->last_offset >= off) {
                why = "an invalid batch";
                goto bad;
            }
        }
    }
    if (pos != n) {
        why = "trailing bytes";
        goto bad;
    }
    *offset = off;
    return 0;
bad:
    rc = td_fail(TD_ECORRUPT, "producer snapshot: %s", why);
fail:
    pstate_free(s);
    return rc;
}
