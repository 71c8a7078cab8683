/*
 * segkeys.c: the key index of topics with key.index (docs/storage.md "Key index files";
 * docs/event-sourcing.md): every keyed event of a partition, by the 128-bit digest of its key
 * (td_key_digest, as the compacted topics' latest-offset index uses), one index per segment.
 *
 * In memory, for the active segment (and a sealed one until its index file is written): an
 * open-addressing table (linear probing, at most 70% full) of the keys' digests, each with the
 * newest of its entries; the entries (the relative offset and the entry before it of the same
 * key) in append order. A key's events in the segment are its chain, newest first. The table
 * grows by doubling; the partition rolls its active segment before this memory would pass
 * key.index.memory.bytes. It is filled after the appends, from the log, by the indexer thread
 * or by whoever needs it whole first ("Catching up" below).
 *
 * On disk, B.keyindex, written with the segment's other index files when its seal is paid
 * (tmp + fsync + rename), and at close for the active segment:
 *   header (20 bytes): "TDKX", version (u32 BE, 1), entry count (u32 BE), the segment's end
 *          relative to its base (u32 BE: next offset - base), CRC-32C of the entries (u32 BE)
 *   entries (20 bytes): digest (16 bytes), relative offset (u32 BE); sorted by digest, then
 *          offset, so that a key's events in the segment are one run found by binary search.
 * A lookup reads O(log n) entries of each segment it visits and then the key's run, never the
 * log. At open, each sealed segment's file is checked (header, size, end matching the segment);
 * its checksum is verified at its first lookup. A file missing, torn, stale or corrupt is
 * rebuilt from the segment's log, at open or by the lookup that finds it so; the active
 * segment's index is always built from its log at open (recovery has just read it).
 *
 * Versions: the offset of a key's latest event, found newest segment first. The conditional
 * append finds the version in the segments without an in-memory index before it takes the
 * partition's lock (their files do not change but by the cleaner, which keeps every key's
 * latest event), and the rest, in memory, under it, with the append.
 *
 * Tags (docs/event-sourcing.md#tags): an event's TD_TAG_HEADER headers (the first TD_TAGS_MAX,
 * of 1 to TD_TAG_MAX_LEN bytes) are entries too, under td_tag_digest (another seed than the
 * keys'), so a tag's events and version are found as a key's are; the file format is the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "storage/segkeys.h"

#define KX_MAGIC "TDKX"
#define KX_VERSION 1
#define KX_HEADER 20
#define KX_ENTRY 20
#define KX_FIRST_CAP 64
#define MAX_UNCOMPRESSED (64u << 20)
#define RUN_CHUNK 256    /* entries read at once along a key's run */
#define KX_MAX_DIGESTS 4 /* the most entries one record makes */
#define CAUSE_MAX 320    /* the longest x-causation-id indexed */

typedef struct kslot {
    uint8_t d[TD_KEY_DIGEST_LEN];
    uint32_t head; /* 1 + index of the key's newest entry; 0: an empty slot */
} kslot;

typedef struct kent {
    uint32_t rel;
    uint32_t prev; /* 1 + index of the key's entry before, 0: none */
} kent;

struct seg_keys {
    kslot *tab;
    size_t cap, nkeys;
    kent *ent;
    size_t n, ecap;
    /* Its memory in bytes, as of the last catching up (atomic: segkeys_full reads it without
     * ix_mu). */
    int64_t bytes;
    /* It could not take a batch (no memory, a batch that does not decode): its memory is
     * freed, and lookups read the segment's log instead (under ix_mu). */
    bool failed;
};

/* What an index holds: the key index (a keyed record's key digest) or the trace index (the
 * digests of a record's trace id, parent span and cause: td_trace_digest), in which
 * files, and where a segment keeps it. */
typedef struct kx_kind {
    const char *ext, *magic, *what;
    /* Reads the next record of rd, its offset into *offset and its entries' digests into d,
     * their count into *c; batch_reader_next's 1, 0 at the end, or an error. */
    int (*next)(td_batch_reader *rd, int64_t *offset, uint8_t d[][TD_KEY_DIGEST_LEN], size_t *c);
    size_t idx_off, checked_off; /* of td_seg's kx and kx_checked, or tx and tx_checked */
} kx_kind;

static int key_tag_next(td_batch_reader *rd, int64_t *offset, uint8_t d[][TD_KEY_DIGEST_LEN],
                        size_t *c);
static int trace_next(td_batch_reader *rd, int64_t *offset, uint8_t d[][TD_KEY_DIGEST_LEN],
                      size_t *c);

static const kx_kind KEYS = {KEYINDEX_EXT,         "TDKX", "key", key_tag_next,
                             offsetof(td_seg, kx), offsetof(td_seg, kx_checked)};
static const kx_kind TRACES = {TRACEINDEX_EXT,       "TDTX", "trace", trace_next,
                               offsetof(td_seg, tx), offsetof(td_seg, tx_checked)};

static seg_keys **kx_of(const kx_kind *K, td_seg *s)
{
    return (seg_keys **)((char *)s + K->idx_off);
}

static bool *checked_of(const kx_kind *K, td_seg *s)
{
    return (bool *)((char *)s + K->checked_off);
}

/* The key index's entries of a record: its key (unless null), then each of its tags of a
 * valid length (docs/event-sourcing.md, "Tags"), each tag's digest in a domain of its own. */
static size_t key_tag_digests(const td_record *rec, const td_slice *tags, size_t ntags,
                              uint8_t d[][TD_KEY_DIGEST_LEN])
{
    size_t c = 0;
    if (!rec->key_null)
        td_key_digest(rec->key.p, rec->key.n, d[c++]);
    for (size_t t = 0; t < ntags; t++)
        if (tags[t].n > 0 && tags[t].n <= TD_TAG_MAX_LEN)
            td_tag_digest(tags[t].p, tags[t].n, d[c++]);
    return c;
}

void td_trace_digest(int kind, const void *id, size_t n, uint8_t out[TD_KEY_DIGEST_LEN])
{
    uint8_t b[1 + CAUSE_MAX];
    n = TD_MIN(n, (size_t)CAUSE_MAX);
    b[0] = (uint8_t)kind;
    memcpy(b + 1, id, n);
    td_key_digest(b, n + 1, out);
}

/* 2n lowercase hex digits into n bytes (false for anything else). */
static bool unhex(const uint8_t *s, size_t len, uint8_t *out, size_t n)
{
    if (len != 2 * n)
        return false;
    for (size_t i = 0; i < 2 * n; i++) {
        uint8_t c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return false;
        out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] << 4 | v : v);
    }
    return true;
}

static bool hname(const td_record_header *h, const char *name, size_t n)
{
    return h->key.n == n && !h->value_null && !memcmp(h->key.p, name, n);
}

/* A record's trace entries: its trace id (a valid traceparent's; not its span id, which every
 * event has its own of: the index would hold a key an event, and what carries a span on is
 * found among its trace's events), the span it names as its parent (x-causation-span-id) and the
 * event it names as its cause (x-causation-id); the first header of each name counts. */
static size_t trace_digests(const td_record *rec, uint8_t d[][TD_KEY_DIGEST_LEN])
{
    size_t c = 0;
    bool tp = false, ps = false, cause = false;
    for (size_t i = 0; i < rec->header_count; i++) {
        const td_record_header *h = &rec->headers[i];
        if (h->key.n < 11 || h->key.n > 19 || h->value_null)
            continue;
        if (!tp && hname(h, "traceparent", 11)) {
            td_trace_ctx t;
            tp = true;
            if (td_traceparent_parse(h->value.p, h->value.n, &t) == 0) {
                td_trace_digest(TD_TRACE_BY_TRACE, t.trace_id, sizeof(t.trace_id), d[c++]);
            }
        } else if (!ps && hname(h, "x-causation-span-id", 19)) {
            uint8_t sp[8];
            ps = true;
            if (unhex(h->value.p, h->value.n, sp, sizeof(sp)))
                td_trace_digest(TD_TRACE_BY_PARENT, sp, sizeof(sp), d[c++]);
        } else if (!cause && hname(h, "x-causation-id", 14)) {
            cause = true;
            if (h->value.n <= CAUSE_MAX)
                td_trace_digest(TD_TRACE_BY_CAUSE, h->value.p, h->value.n, d[c++]);
        }
    }
    return c;
}

/* KEYS' reader: a record's key and its tidings-tag headers, the value skipped. */
static int key_tag_next(td_batch_reader *rd, int64_t *offset, uint8_t d[][TD_KEY_DIGEST_LEN],
                        size_t *c)
{
    static const td_slice tag_name = {(const uint8_t *)TD_TAG_HEADER, sizeof(TD_TAG_HEADER) - 1};
    td_record rec = {0};
    td_slice tags[TD_TAGS_MAX];
    size_t ntags;
    int more = batch_reader_next_key_headers(rd, &rec.offset, &rec.key, &rec.key_null, tag_name,
                                             tags, TD_TAGS_MAX, &ntags);
    if (more == 1) {
        *offset = rec.offset;
        *c = key_tag_digests(&rec, tags, ntags, d);
    }
    return more;
}

/* TRACES' reader: the whole record, for its headers. */
static int trace_next(td_batch_reader *rd, int64_t *offset, uint8_t d[][TD_KEY_DIGEST_LEN],
                      size_t *c)
{
    td_record rec;
    int more = batch_reader_next(rd, &rec);
    if (more == 1) {
        *offset = rec.offset;
        *c = trace_digests(&rec, d);
    }
    return more;
}

/* ---------------------------------------------------------------------------------------------
 * In memory
 */
/* Tables of at least this many bytes are mapped on their own, aligned to it and marked for
 * transparent huge pages: a lookup or an append touches a random slot, and with 4 KiB pages
 * each such touch of a table of megabytes also missed the TLB (under virtualisation, a walk
 * of two page tables), which cost more than the cache miss itself. */
#define KX_HUGE ((size_t)2 << 20)

static kslot *kx_tab_alloc(size_t cap)
{
    size_t bytes = cap * sizeof(kslot);
    if (bytes < KX_HUGE)
        return calloc(cap, sizeof(kslot));
    size_t len = (bytes + 4095) & ~(size_t)4095, map = len + KX_HUGE;
    uint8_t *m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)m + KX_HUGE - 1) & ~(uintptr_t)(KX_HUGE - 1));
    if (a > m)
        munmap(m, (size_t)(a - m));
    if (m + map > a + len)
        munmap(a + len, (size_t)(m + map - (a + len)));
    (void)madvise(a, len, MADV_HUGEPAGE); /* a hint: without it, 4 KiB pages */
    return (kslot *)a;
}

static void kx_tab_free(kslot *tab, size_t cap)
{
    size_t bytes = cap * sizeof(kslot);
    if (bytes < KX_HUGE)
        free(tab);
    else if (tab)
        munmap(tab, (bytes + 4095) & ~(size_t)4095);
}
static seg_keys *kx_new(void)
{
    seg_keys *k = calloc(1, sizeof(*k));
    if (k && !(k->tab = kx_tab_alloc(KX_FIRST_CAP))) {
        free(k);
        return NULL;
    }
    if (k)
        k->cap = KX_FIRST_CAP;
    return k;
}

static void kx_free(seg_keys *k)
{
    if (k) {
        kx_tab_free(k->tab, k->cap);
        free(k->ent);
        free(k);
    }
}

/* Whether k answers lookups (under ix_mu). */
static bool kx_usable(const seg_keys *k)
{
    return k && !k->failed;
}

/* Whether two digests are equal (two loads each, where memcmp would be a call). */
static inline bool digest_eq(const uint8_t *a, const uint8_t *b)
{
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&a1, a + 8, 8);
    memcpy(&b0, b, 8);
    memcpy(&b1, b + 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

/* A key's home slot: the digest's top bits (the digests are hashes, spread evenly). */
static inline size_t kx_home(const uint8_t *d, size_t cap)
{
    return (size_t)(td_load_be64(d) >> (64 - __builtin_ctzll((unsigned long long)cap)));
}

static size_t kx_slot(const kslot *tab, size_t cap, const uint8_t *d)
{
    size_t i = kx_home(d, cap);
    while (tab[i].head && !digest_eq(tab[i].d, d))
        i = (i + 1) & (cap - 1);
    return i;
}

/* Makes room for one more key (the table at most 70% full). */
static int kx_reserve(seg_keys *k)
{
    if ((k->nkeys + 1) * 10 > k->cap * 7) {
        size_t cap = k->cap * 2;
        kslot *tab = kx_tab_alloc(cap);
        if (!tab)
            return -ENOMEM;
        for (size_t i = 0; i < k->cap; i++)
            if (k->tab[i].head)
                tab[kx_slot(tab, cap, k->tab[i].d)] = k->tab[i];
        kx_tab_free(k->tab, k->cap);
        k->tab = tab;
        k->cap = cap;
    }
    return 0;
}

static int kx_put(seg_keys *k, const uint8_t *d, uint32_t rel)
{
    int rc = kx_reserve(k);
    if (rc)
        return rc;
    if (k->n >= UINT32_MAX - 1)
        return TD_ETOOBIG;
    if (td_grow(&k->ent, &k->ecap, k->n, sizeof(*k->ent), 256) != 0)
        return -ENOMEM;
    kslot *s = &k->tab[kx_slot(k->tab, k->cap, d)];
    if (!s->head) {
        memcpy(s->d, d, TD_KEY_DIGEST_LEN);
        k->nkeys++;
    }
    k->ent[k->n] = (kent){rel, s->head};
    s->head = (uint32_t)++k->n;
    return 0;
}

/* The entries of the records of a batch at base's relative offsets into k. */
static int kx_add_batch(const kx_kind *K, seg_keys *k, int64_t base, td_batch_reader *rd,
                        const uint8_t *batch, size_t n)
{
    td_batch_header h;
    int rc = batch_header_parse(batch, n, &h);
    if (rc || (h.attributes & TD_BATCH_ATTR_CONTROL))
        return rc == TD_EAGAIN ? TD_ECORRUPT : rc;
    if ((rc = batch_reader_open(rd, batch, n, MAX_UNCOMPRESSED)) != 0)
        return rc;
    /* In groups: the digests first, with their slots prefetched (the table is larger than the
     * caches: a probe is a cache miss, which the group's probes then overlap), then the puts. */
    enum { GROUP = 32 };
    enum { PER = 1 + TD_TAGS_MAX > KX_MAX_DIGESTS ? 1 + TD_TAGS_MAX : KX_MAX_DIGESTS };
    uint8_t d[GROUP + PER][TD_KEY_DIGEST_LEN];
    uint32_t rel[GROUP + PER];
    for (;;) {
        size_t g = 0;
        int more = 1;
        while (g < GROUP) {
            size_t c;
            int64_t offset;
            if ((more = K->next(rd, &offset, d + g, &c)) != 1)
                break;
            if (c && g == 0 && (rc = kx_reserve(k)) != 0) /* the prefetches are for this table */
                return rc;
            for (size_t i = g; i < g + c; i++) {
                rel[i] = (uint32_t)(offset - base);
                __builtin_prefetch(&k->tab[kx_home(d[i], k->cap)]);
            }
            g += c;
        }
        if (more < 0)
            return more;
        for (size_t i = 0; i < g; i++)
            if ((rc = kx_put(k, d[i], rel[i])) != 0)
                return rc;
        if (more == 0)
            return 0;
    }
}

int segkeys_start(td_seg *s, bool keys, bool traces)
{
    if (keys && !s->kx && !(s->kx = kx_new()))
        return -ENOMEM;
    if (traces && !s->tx && !(s->tx = kx_new()))
        return -ENOMEM;
    return 0;
}

void segkeys_drop(td_seg *s)
{
    pthread_mutex_lock(&s->part->ix_mu); /* the indexer thread may be reading them */
    kx_free(s->kx);
    s->kx = NULL;
    kx_free(s->tx);
    s->tx = NULL;
    pthread_mutex_unlock(&s->part->ix_mu);
}

static int64_t kx_bytes(const seg_keys *k)
{
    return k ? (int64_t)(k->cap * sizeof(kslot) + k->ecap * sizeof(kent)) : 0;
}

bool segkeys_full(const td_part *p, const td_seg *s)
{
    return (s->kx &&
            __atomic_load_n(&s->kx->bytes, __ATOMIC_RELAXED) >= p->cfg.key_index_memory_bytes) ||
           (s->tx &&
            __atomic_load_n(&s->tx->bytes, __ATOMIC_RELAXED) >= p->cfg.trace_index_memory_bytes);
}

/* ---------------------------------------------------------------------------------------------
 * Catching up
 *
 * An append does not index its batch (unless its partition has no indexer thread): the
 * segment's ix_pos says how much of its log its in-memory indexes cover, and the rest is read
 * back from the log (the page cache: it was just written) and indexed by the indexer thread
 * (indexer.c), or by whoever needs the index whole first: a lookup or a conditional append
 * (under mu, so nothing is appended meanwhile), the seal that writes the index file, and an
 * append that finds the index more than IX_LAG_MAX bytes behind (so that a thread that falls
 * behind slows appends rather than let the work a lookup may find grow, and so that the memory
 * bound, which segkeys_full checks against the indexes' size as of their last catching up, is
 * passed by what that lag adds at most). The thread is woken once IX_WAKE bytes wait, or
 * IX_WAKE_MS after its last wake (a wake per append would cost each a system call): a lookup
 * finds at most that much to index when the thread keeps up. A catching up holds ix_mu; the
 * indexer thread catches up IX_STEP bytes at a time, so that a lookup waits for at most that
 * much.
 */
#define IX_LAG_MAX ((int64_t)8 << 20)
#define IX_WAKE ((int64_t)256 << 10)
#define IX_WAKE_MS 10
static int64_t ix_lag_max = IX_LAG_MAX, ix_wake = IX_WAKE; /* segkeys_test_tune */

/* The lag past which an append catches up itself: IX_LAG_MAX, or an eighth of the smallest
 * memory bound of p's indexes (key.index.memory.bytes, trace.index.memory.bytes), which the
 * memory of the indexes passes by what the lag holds. */
static int64_t lag_max(const td_part *p)
{
    int64_t m = ix_lag_max;
    if (p->cfg.key_index)
        m = TD_MIN(m, p->cfg.key_index_memory_bytes / 8);
    if (p->cfg.trace_index)
        m = TD_MIN(m, p->cfg.trace_index_memory_bytes / 8);
    return m;
}
#define IX_STEP ((int64_t)1 << 20)
#define IX_READ ((size_t)256 << 10)

/* Index k failed: its memory goes, lookups read the log (under ix_mu). */
static void kx_fail(const kx_kind *K, td_part *p, td_seg *s, seg_keys *k, int rc)
{
    TD_WARN("storage", "partition %s: segment %020" PRId64 " loses its in-memory %s index: %s",
            p->label, s->base, K->what, td_strerror(rc));
    kx_tab_free(k->tab, k->cap);
    free(k->ent);
    k->tab = NULL;
    k->ent = NULL;
    k->cap = k->ecap = k->n = k->nkeys = 0;
    k->failed = true;
    __atomic_store_n(&k->bytes, 0, __ATOMIC_RELAXED);
}

/* Adds a batch of s (n bytes at ix_pos, its offsets final) to s's indexes, those that are
 * usable (under ix_mu, or owning s). */
static void ix_add(td_part *p, td_seg *s, td_batch_reader *rd, const uint8_t *batch, size_t n)
{
    for (int i = 0; i < 2; i++) {
        const kx_kind *K = i ? &TRACES : &KEYS;
        seg_keys *k = *kx_of(K, s);
        int rc = kx_usable(k) ? kx_add_batch(K, k, s->base, rd, batch, n) : 0;
        if (rc)
            kx_fail(K, p, s, k, rc);
    }
    s->ix_pos += (int64_t)n;
}

static void ix_publish(td_seg *s)
{
    __atomic_store_n(&s->ix_done, s->ix_pos, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        seg_keys *k = i ? s->tx : s->kx;
        if (kx_usable(k))
            __atomic_store_n(&k->bytes, kx_bytes(k), __ATOMIC_RELAXED);
    }
}

/* Catches s's indexes up to the end of its log, size bytes (a batch boundary, at most s->size),
 * reading the log; stops early once `limit` bytes were indexed. Caller holds ix_mu and a
 * reference on s (or mu). */
static void ix_catch_up(td_part *p, td_seg *s, int64_t size, int64_t limit)
{
    td_batch_reader rd;
    batch_reader_init(&rd);
    td_buf *b = &p->ix_buf;
    int64_t stop = s->ix_pos + TD_MIN(limit, size - s->ix_pos);
    while (s->ix_pos < stop) {
        if (!kx_usable(s->kx) && !kx_usable(s->tx)) {
            s->ix_pos = size; /* nothing left to keep up */
            break;
        }
        /* whole batches of the next IX_READ bytes; a larger batch alone */
        size_t want = (size_t)TD_MIN(size - s->ix_pos, (int64_t)IX_READ), off = 0;
        int rc = td_buf_reserve(b, want);
        if (rc == 0)
            rc = td_io_read_all(p->io, s->fd, b->p, want, s->ix_pos);
        while (rc == 0 && off < want) {
            td_batch_header h;
            if (want - off < TD_BATCH_HEADER_SIZE ||
                batch_header_parse(b->p + off, TD_BATCH_HEADER_SIZE, &h) != 0) {
                rc = off ? 0 : TD_ECORRUPT; /* a header cut by the read: read again */
                break;
            }
            size_t total = batch_total_size(&h);
            if (off + total > want) {
                if (off > 0)
                    break; /* cut by the read: read again from its start */
                if ((int64_t)total > size - s->ix_pos)
                    rc = TD_ECORRUPT;
                if (rc == 0)
                    rc = td_buf_reserve(b, total);
                if (rc == 0)
                    rc = td_io_read_all(p->io, s->fd, b->p, total, s->ix_pos);
                if (rc)
                    break;
                want = total;
            }
            ix_add(p, s, &rd, b->p + off, total);
            off += total;
        }
        if (rc) {
            for (int i = 0; i < 2; i++) {
                const kx_kind *K = i ? &TRACES : &KEYS;
                if (kx_usable(*kx_of(K, s)))
                    kx_fail(K, p, s, *kx_of(K, s), rc);
            }
        }
    }
    batch_reader_free(&rd);
    if (b->cap > 4 * IX_READ) /* one large batch does not keep its memory */
        td_buf_free(b);
    ix_publish(s);
}

void segkeys_add(td_part *p, td_seg *s, const uint8_t *batch, size_t n)
{
    td_batch_reader rd;
    batch_reader_init(&rd);
    ix_add(p, s, &rd, batch, n);
    batch_reader_free(&rd);
    ix_publish(s);
}

void segkeys_appended_locked(td_part *p, td_seg *s, const uint8_t *batch, size_t n, int64_t now_ms)
{
    int64_t lag = s->size - __atomic_load_n(&s->ix_done, __ATOMIC_ACQUIRE);
    if (p->indexer && lag <= lag_max(p)) {
        if (lag >= ix_wake || now_ms - p->ix_woke_ms >= IX_WAKE_MS) {
            p->ix_woke_ms = now_ms;
            indexer_wake(p);
        }
        return;
    }
    pthread_mutex_lock(&p->ix_mu);
    if (s->ix_pos == s->size - (int64_t)n) /* nothing behind: the batch at hand */
        segkeys_add(p, s, batch, n);
    else
        ix_catch_up(p, s, s->size, INT64_MAX);
    pthread_mutex_unlock(&p->ix_mu);
}

void segkeys_test_tune(int64_t wake, int64_t lag_max)
{
    ix_wake = wake < 0 ? IX_WAKE : wake;
    ix_lag_max = lag_max < 0 ? IX_LAG_MAX : lag_max;
}

int64_t segkeys_lag(td_part *p)
{
    pthread_mutex_lock(&p->mu);
    td_seg *s = p->segs[p->nsegs - 1];
    int64_t lag = s->kx || s->tx ? s->size - __atomic_load_n(&s->ix_done, __ATOMIC_ACQUIRE) : 0;
    pthread_mutex_unlock(&p->mu);
    return lag;
}

bool segkeys_catch_up(td_part *p)
{
    /* The segments behind and their sizes now, in one hold of mu (each hold may make an
     * appender wait): what lands meanwhile is for a later turn, once an append wakes the
     * thread again, not for this one to poll for. */
    enum { SEGS = 4 };
    td_seg *segs[SEGS];
    int64_t sizes[SEGS];
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nsegs && n < SEGS; i++) {
        td_seg *s = p->segs[i];
        if ((s->kx || s->tx) && __atomic_load_n(&s->ix_done, __ATOMIC_ACQUIRE) < s->size) {
            s->refs++;
            segs[n] = s;
            sizes[n++] = s->size;
        }
    }
    pthread_mutex_unlock(&p->mu);
    int64_t budget = 8 * IX_STEP;
    for (size_t i = 0; i < n && budget > 0; i++) {
        /* IX_STEP at a time: a lookup waits for ix_mu at most that long */
        for (bool more = true; more && budget > 0;) {
            pthread_mutex_lock(&p->ix_mu);
            int64_t from = segs[i]->ix_pos;
            if (from < sizes[i])
                ix_catch_up(p, segs[i], sizes[i], IX_STEP);
            budget -= TD_MAX(segs[i]->ix_pos - from, (int64_t)1);
            more = segs[i]->ix_pos < sizes[i];
            pthread_mutex_unlock(&p->ix_mu);
        }
    }
    pthread_mutex_lock(&p->mu);
    bool more = n == SEGS || budget <= 0;
    for (size_t i = 0; i < n; i++)
        seg_unref_locked(segs[i]);
    pthread_mutex_unlock(&p->mu);
    return more;
}

/* A query of a key's offsets: those in [from, below), ascending into out (at most max), or
 * (latest) only the largest, into last. */
typedef struct kq {
    uint8_t d[TD_KEY_DIGEST_LEN];
    int64_t from, below;
    bool latest;
    int64_t *out;
    size_t max, got;
    int64_t last; /* -1: none */
} kq;

static bool kq_full(const kq *q)
{
    return !q->latest && q->got >= q->max;
}

/* Offers offset off (ascending within a segment's answer). */
static void kq_put(kq *q, int64_t off)
{
    if (off < q->from || off >= q->below)
        return;
    if (q->latest)
        q->last = TD_MAX(q->last, off);
    else if (q->got < q->max && (q->got == 0 || off > q->out[q->got - 1])) /* ascending */
        q->out[q->got++] = off;
}

/* Answers q from an in-memory index of the segment at base. */
static void kx_query(const seg_keys *k, int64_t base, kq *q)
{
    const kslot *s = &k->tab[kx_slot(k->tab, k->cap, q->d)];
    if (!s->head)
        return;
    if (q->latest) { /* the chain is newest first: the first one below `below` */
        for (uint32_t e = s->head; e; e = k->ent[e - 1].prev)
            if (base + k->ent[e - 1].rel < q->below) {
                kq_put(q, base + k->ent[e - 1].rel);
                return;
            }
        return;
    }
    /* Newest first: count the matching entries, then keep only the oldest that fit. */
    size_t c = 0, room = q->max - q->got;
    for (uint32_t e = s->head; e; e = k->ent[e - 1].prev) {
        int64_t off = base + k->ent[e - 1].rel;
        if (off < q->from)
            break;
        c += off < q->below;
    }
    size_t skip = c > room ? c - room : 0, take = c - skip, at = q->got + take;
    for (uint32_t e = s->head; e && at > q->got; e = k->ent[e - 1].prev) {
        int64_t off = base + k->ent[e - 1].rel;
        if (off >= q->below)
            continue;
        if (skip) {
            skip--;
            continue;
        }
        q->out[--at] = off;
    }
    q->got += take;
}

/* ---------------------------------------------------------------------------------------------
 * Files
 */
/* A key of the table as the sort before a file is written sees it: the digest as two big-endian
 * integers (memcmp's order, compared without a call or a pointer to follow: that sort is most of
 * the cost of a sealed segment's index), and its chain. */
typedef struct ksort {
    uint64_t hi, lo;
    uint32_t head;
} ksort;

static int ksort_cmp(const void *a, const void *b)
{
    const ksort *x = a, *y = b;
    if (x->hi != y->hi)
        return x->hi < y->hi ? -1 : 1;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Sorts the n keys of v (tmp: room for n more). The digests are hashes, spread evenly: a
 * counting pass on their top bits into about one key a bucket, then each bucket sorted (by
 * insertion when small, qsort otherwise, so that no input costs more than n log n). */
static void ksort_keys(ksort *v, ksort *tmp, size_t n)
{
    unsigned bits = 1;
    while (bits < 20 && ((size_t)1 << bits) < n)
        bits++;
    size_t nb = (size_t)1 << bits;
    size_t *at = calloc(nb + 1, sizeof(*at));
    if (!at) {
        qsort(v, n, sizeof(*v), ksort_cmp);
        return;
    }
    for (size_t i = 0; i < n; i++)
        at[(v[i].hi >> (64 - bits)) + 1]++;
    for (size_t b = 0; b < nb; b++)
        at[b + 1] += at[b];
    for (size_t i = 0; i < n; i++)
        tmp[at[v[i].hi >> (64 - bits)]++] = v[i];
    /* at[b] is now the end of bucket b, the start of b + 1 */
    for (size_t b = 0, from = 0; b < nb; from = at[b++]) {
        size_t m = at[b] - from;
        ksort *x = tmp + from;
        if (m > 16) {
            qsort(x, m, sizeof(*x), ksort_cmp);
            continue;
        }
        for (size_t i = 1; i < m; i++)
            for (size_t j = i; j > 0 && ksort_cmp(&x[j - 1], &x[j]) > 0; j--) {
                ksort t = x[j];
                x[j] = x[j - 1];
                x[j - 1] = t;
            }
    }
    memcpy(v, tmp, n * sizeof(*v));
    free(at);
}

/* Writes k as the index file of the segment at base ending at end_rel. */
static int kx_write(const kx_kind *K, td_part *p, int64_t base, int64_t end_rel, const seg_keys *k)
{
    size_t bytes = KX_HEADER + k->n * KX_ENTRY;
    uint8_t *b = malloc(bytes);
    ksort *keys = malloc((2 * k->nkeys + 1) * sizeof(*keys));
    int rc = b && keys ? 0 : -ENOMEM;
    if (rc == 0) {
        size_t nk = 0;
        for (size_t i = 0; i < k->cap; i++)
            if (k->tab[i].head)
                keys[nk++] = (ksort){td_load_be64(k->tab[i].d), td_load_be64(k->tab[i].d + 8),
                                     k->tab[i].head};
        ksort_keys(keys, keys + nk, nk);
        uint8_t *w = b + KX_HEADER;
        for (size_t i = 0; i < nk; i++) {
            size_t c = 0;
            for (uint32_t e = keys[i].head; e; e = k->ent[e - 1].prev)
                c++;
            size_t at = c; /* the chain is newest first: written from the run's end */
            for (uint32_t e = keys[i].head; e; e = k->ent[e - 1].prev) {
                uint8_t *x = w + --at * KX_ENTRY;
                td_store_be64(x, keys[i].hi);
                td_store_be64(x + 8, keys[i].lo);
                td_store_be32(x + TD_KEY_DIGEST_LEN, k->ent[e - 1].rel);
            }
            w += c * KX_ENTRY;
        }
        memcpy(b, K->magic, 4);
        td_store_be32(b + 4, KX_VERSION);
        td_store_be32(b + 8, (uint32_t)k->n);
        td_store_be32(b + 12, (uint32_t)end_rel);
        td_store_be32(b + 16, td_crc32c(0, b + KX_HEADER, k->n * KX_ENTRY));
        char path[PATH_MAX];
        seg_path(p, base, K->ext, path, sizeof(path));
        rc = write_file_atomic(p, path, b, bytes);
    }
    free(keys);
    free(b);
    return rc;
}

int segkeys_write(td_part *p, td_seg *s)
{
    pthread_mutex_lock(&p->ix_mu);
    ix_catch_up(p, s, s->size, INT64_MAX);
    int rc = kx_usable(s->kx) ? kx_write(&KEYS, p, s->base, s->next_offset - s->base, s->kx) : 0;
    if (rc == 0 && kx_usable(s->tx))
        rc = kx_write(&TRACES, p, s->base, s->next_offset - s->base, s->tx);
    pthread_mutex_unlock(&p->ix_mu);
    return rc;
}

/* An open key index file. */
typedef struct kfile {
    int fd;
    uint32_t count;
} kfile;

/* Opens the file of s (its log ending at next) and checks its header against its size and the
 * segment; with verify, the entries' checksum too. -ENOENT, TD_ECORRUPT, -errno. */
static int kfile_open(const kx_kind *K, td_part *p, int64_t base, int64_t next, bool verify,
                      kfile *f)
{
    char path[PATH_MAX];
    seg_path(p, base, K->ext, path, sizeof(path));
    const td_io *io = p->io;
    f->fd = io->open(io, path, O_RDONLY, 0);
    if (f->fd < 0)
        return f->fd;
    uint8_t h[KX_HEADER];
    int64_t size;
    int rc = io->fsize(io, f->fd, &size);
    if (rc == 0 && size < KX_HEADER)
        rc = TD_ECORRUPT;
    if (rc == 0 && (rc = td_io_read_all(io, f->fd, h, sizeof(h), 0)) == TD_EEND)
        rc = TD_ECORRUPT;
    if (rc == 0) {
        f->count = td_load_be32(h + 8);
        if (memcmp(h, K->magic, 4) || td_load_be32(h + 4) != KX_VERSION ||
            size != KX_HEADER + (int64_t)f->count * KX_ENTRY ||
            (int64_t)td_load_be32(h + 12) != next - base)
            rc = TD_ECORRUPT;
    }
    if (rc == 0 && verify) {
        uint32_t crc = 0;
        uint8_t buf[RUN_CHUNK * KX_ENTRY];
        for (int64_t pos = KX_HEADER; rc == 0 && pos < size;) {
            size_t n = (size_t)TD_MIN((int64_t)sizeof(buf), size - pos);
            if ((rc = td_io_read_all(io, f->fd, buf, n, pos)) == 0)
                crc = td_crc32c(crc, buf, n);
            pos += (int64_t)n;
        }
        if (rc == 0 && crc != td_load_be32(h + 16))
            rc = TD_ECORRUPT;
        if (rc == TD_EEND)
            rc = TD_ECORRUPT;
    }
    if (rc) {
        io->close(io, f->fd);
        f->fd = -1;
    }
    return rc;
}

static int entry_cmp(const uint8_t *e, const uint8_t *d, uint64_t rel)
{
    int c = memcmp(e, d, TD_KEY_DIGEST_LEN);
    if (c)
        return c;
    uint64_t r = td_load_be32(e + TD_KEY_DIGEST_LEN);
    return r < rel ? -1 : r > rel;
}

/* The index of the first entry >= (d, rel) (count if none). */
static int lower_bound(td_part *p, const kfile *f, const uint8_t *d, uint64_t rel, uint32_t *at)
{
    uint32_t lo = 0, hi = f->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint8_t e[KX_ENTRY];
        int rc = td_io_read_all(p->io, f->fd, e, sizeof(e), KX_HEADER + (int64_t)mid * KX_ENTRY);
        if (rc)
            return rc == TD_EEND ? TD_ECORRUPT : rc;
        if (entry_cmp(e, d, rel) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return 0;
}

/* Answers q from the file of the segment at base, which ends at next (an entry past it, which
 * only a damaged file whose checksum still matched could hold, is never answered). */
static int kfile_query(td_part *p, const kfile *f, int64_t base, int64_t next, kq *q)
{
    int64_t lo_rel = TD_MAX(q->from - base, 0);
    uint64_t hi_rel =
        (uint64_t)TD_MIN(TD_MAX(TD_MIN(q->below, next) - base, 0), (int64_t)UINT32_MAX + 1);
    uint32_t at;
    uint8_t buf[RUN_CHUNK * KX_ENTRY];
    if (q->latest) {
        int rc = lower_bound(p, f, q->d, hi_rel, &at);
        if (rc || at == 0)
            return rc;
        rc = td_io_read_all(p->io, f->fd, buf, KX_ENTRY, KX_HEADER + (int64_t)(at - 1) * KX_ENTRY);
        if (rc)
            return rc == TD_EEND ? TD_ECORRUPT : rc;
        if (memcmp(buf, q->d, TD_KEY_DIGEST_LEN) == 0 &&
            td_load_be32(buf + TD_KEY_DIGEST_LEN) < hi_rel)
            kq_put(q, base + td_load_be32(buf + TD_KEY_DIGEST_LEN));
        return 0;
    }
    int rc = lower_bound(p, f, q->d, (uint64_t)lo_rel, &at);
    while (rc == 0 && at < f->count && !kq_full(q)) {
        uint32_t n = TD_MIN((uint32_t)RUN_CHUNK, f->count - at);
        rc = td_io_read_all(p->io, f->fd, buf, (size_t)n * KX_ENTRY,
                            KX_HEADER + (int64_t)at * KX_ENTRY);
        if (rc)
            return rc == TD_EEND ? TD_ECORRUPT : rc;
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *e = buf + (size_t)i * KX_ENTRY;
            if (memcmp(e, q->d, TD_KEY_DIGEST_LEN) ||
                td_load_be32(e + TD_KEY_DIGEST_LEN) >= hi_rel || kq_full(q))
                return 0;
            kq_put(q, base + td_load_be32(e + TD_KEY_DIGEST_LEN));
        }
        at += n;
    }
    return rc;
}

/* Builds an index of the segment s (whose log holds size bytes) by reading its log. */
static int kx_build(const kx_kind *K, td_part *p, td_seg *s, int64_t size, seg_keys **out)
{
    seg_keys *k = kx_new();
    td_buf b;
    td_buf_init(&b);
    td_batch_reader rd;
    batch_reader_init(&rd);
    int rc = k ? 0 : -ENOMEM;
    for (int64_t pos = 0; rc == 0 && pos < size;) {
        uint8_t hdr[TD_BATCH_HEADER_SIZE];
        td_batch_header h;
        rc = td_io_read_all(p->io, s->fd, hdr, sizeof(hdr), pos);
        if (rc == 0 && batch_header_parse(hdr, sizeof(hdr), &h) != 0)
            rc = TD_ECORRUPT;
        td_buf_reset(&b);
        if (rc == 0)
            rc = td_buf_reserve(&b, batch_total_size(&h));
        if (rc == 0)
            rc = td_io_read_all(p->io, s->fd, b.p, batch_total_size(&h), pos);
        if (rc == 0)
            rc = kx_add_batch(K, k, s->base, &rd, b.p, batch_total_size(&h));
        pos += rc ? 0 : (int64_t)batch_total_size(&h);
    }
    batch_reader_free(&rd);
    td_buf_free(&b);
    if (rc) {
        kx_free(k);
        return rc == TD_EEND ? TD_ECORRUPT : rc;
    }
    *out = k;
    return 0;
}

/* Rebuilds the file of the sealed segment s from its log (logged); the index built into *out
 * when out is not NULL (freed otherwise). */
static int kx_rebuild(const kx_kind *K, td_part *p, td_seg *s, int64_t size, int64_t next, int why,
                      seg_keys **out)
{
    TD_WARN("storage", "partition %s: rebuilding the %s index of segment %020" PRId64 " (%s)",
            p->label, K->what, s->base, why == -ENOENT ? "missing" : td_strerror(why));
    seg_keys *k;
    int rc = kx_build(K, p, s, size, &k);
    if (rc)
        return rc;
    int wrc = kx_write(K, p, s->base, next - s->base, k);
    if (wrc)
        TD_WARN("storage", "partition %s: cannot write the %s index of segment %020" PRId64 ": %s",
                p->label, K->what, s->base, td_strerror(wrc));
    if (out)
        *out = k;
    else
        kx_free(k);
    return 0;
}

/* Answers q from segment s, which has no in-memory index and is referenced by the caller, who
 * does not hold mu unless `locked`: its file, verified at its first use, or rebuilt from the
 * log when it is missing or bad (the log is read, the file not written, for a segment that is
 * still being appended to: the active segment whose index was dropped). */
static int seg_query(const kx_kind *K, td_part *p, td_seg *s, int64_t size, int64_t next,
                     bool sealed, bool checked, bool locked, kq *q)
{
    kfile f;
    int rc = sealed ? kfile_open(K, p, s->base, next, !checked, &f) : -ENOENT;
    if (rc == 0) {
        if (!checked && !locked) {
            pthread_mutex_lock(&p->mu);
            *checked_of(K, s) = true;
            pthread_mutex_unlock(&p->mu);
        }
        rc = kfile_query(p, &f, s->base, next, q);
        p->io->close(p->io, f.fd);
        return rc;
    }
    if (rc != -ENOENT && rc != TD_ECORRUPT)
        return rc;
    seg_keys *k;
    if (sealed)
        rc = kx_rebuild(K, p, s, size, next, rc, &k);
    else
        rc = kx_build(K, p, s, size, &k);
    if (rc == 0 && sealed && !locked) {
        pthread_mutex_lock(&p->mu);
        if (s->deleted) { /* retention removed the segment meanwhile: and the file just written */
            char path[PATH_MAX];
            seg_path(p, s->base, K->ext, path, sizeof(path));
            p->io->unlink(p->io, path);
        }
        pthread_mutex_unlock(&p->mu);
    }
    if (rc == 0) {
        kx_query(k, s->base, q);
        kx_free(k);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Lookups
 */
static int check_keyed(td_part *p)
{
    int rc = check_online(p);
    if (rc)
        return rc;
    pthread_mutex_lock(&p->mu);
    bool on = p->cfg.key_index;
    pthread_mutex_unlock(&p->mu);
    if (!on)
        return td_fail(TD_EUNSUPPORTED,
                       "partition %s has no key index: set key.index=true on its topic", p->label);
    return 0;
}

/* Runs q over the segments, oldest first (ranges) or newest first (latest) until answered.
 * Caller does not hold mu. */
static int run_query(const kx_kind *K, td_part *p, kq *q)
{
    int64_t cur = q->latest ? q->below : q->from;
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        td_seg *s = NULL;
        if (q->latest) {
            for (size_t i = p->nsegs; i-- > 0 && !s;)
                if (p->segs[i]->base < cur)
                    s = p->segs[i];
        } else {
            for (size_t i = 0; i < p->nsegs && !s; i++)
                if (p->segs[i]->next_offset > cur)
                    s = p->segs[i];
            if (s && s->base >= q->below)
                s = NULL;
        }
        if (!s) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        int64_t base = s->base, next = s->next_offset, size = s->size;
        bool mem = false;
        if (*kx_of(K, s)) {
            pthread_mutex_lock(&p->ix_mu);
            ix_catch_up(p, s, size, INT64_MAX);
            if ((mem = kx_usable(*kx_of(K, s))))
                kx_query(*kx_of(K, s), base, q);
            pthread_mutex_unlock(&p->ix_mu);
        }
        if (mem) {
            pthread_mutex_unlock(&p->mu);
        } else {
            bool sealed = s->sealed, checked = *checked_of(K, s);
            s->refs++;
            pthread_mutex_unlock(&p->mu);
            rc = seg_query(K, p, s, size, next, sealed, checked, false, q);
            pthread_mutex_lock(&p->mu);
            seg_unref_locked(s);
            pthread_mutex_unlock(&p->mu);
            if (rc)
                break;
        }
        if ((q->latest && q->last >= 0) || kq_full(q))
            break;
        cur = q->latest ? base : next;
    }
    return rc;
}

int part_key_version(td_part *p, const void *key, size_t key_len, int64_t *version)
{
    return part_index_version(p, false, key, key_len, version);
}

int part_key_offsets(td_part *p, const void *key, size_t key_len, int64_t from, int64_t *out,
                     size_t max, size_t *got)
{
    return part_index_offsets(p, false, key, key_len, from, out, max, got);
}

int part_index_version(td_part *p, bool tag, const void *key, size_t key_len, int64_t *version)
{
    int rc = check_keyed(p);
    if (rc)
        return rc;
    kq q = {.from = 0, .below = part_high_watermark(p), .latest = true, .last = -1};
    if (tag)
        td_tag_digest(key, key_len, q.d);
    else
        td_key_digest(key, key_len, q.d);
    rc = run_query(&KEYS, p, &q);
    if (rc == 0)
        *version = q.last >= part_log_start(p) ? q.last : TD_VERSION_NO_STREAM;
    return rc;
}

int part_index_offsets(td_part *p, bool tag, const void *key, size_t key_len, int64_t from,
                       int64_t *out, size_t max, size_t *got)
{
    *got = 0;
    int rc = check_keyed(p);
    if (rc)
        return rc;
    kq q = {.from = TD_MAX(from, part_log_start(p)),
            .below = part_high_watermark(p),
            .out = out,
            .max = max,
            .last = -1};
    if (tag)
        td_tag_digest(key, key_len, q.d);
    else
        td_key_digest(key, key_len, q.d);
    if (max)
        rc = run_query(&KEYS, p, &q);
    *got = q.got;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Conditional appends
 */
static void expect_digest(const part_expect_key *k, uint8_t *d)
{
    if (k->tag)
        td_tag_digest(k->key, k->key_len, d);
    else
        td_key_digest(k->key, k->key_len, d);
}

int part_append_expect(td_part *p, uint8_t *batch, size_t n, int64_t now_ms, td_append_result *res,
                       part_expect *req)
{
    int rc = check_keyed(p);
    if (rc)
        return rc;
    /* The segments without an in-memory index (the older ones: their seals are paid oldest
     * first) are read now, outside the lock. */
    pthread_mutex_lock(&p->mu);
    req->pre_upto = p->segs[0]->base;
    for (size_t i = p->nsegs; i-- > 0;)
        if (!p->segs[i]->kx) {
            req->pre_upto = p->segs[i]->next_offset;
            break;
        }
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < req->n; i++) {
        part_expect_key *k = &req->keys[i];
        k->pre = -1;
        if (k->expected == TD_VERSION_ANY)
            continue;
        kq q = {.from = 0, .below = req->pre_upto, .latest = true, .last = -1};
        expect_digest(k, q.d);
        if ((rc = run_query(&KEYS, p, &q)) != 0)
            return rc;
        k->pre = q.last;
    }
    return part_append_expect_ruled(p, batch, n, now_ms, res, req);
}

static int expect_check(td_part *p, part_expect *req);

int segkeys_expect_locked(td_part *p, part_expect *req)
{
    if (!p->cfg.key_index)
        return td_fail(TD_EUNSUPPORTED,
                       "partition %s has no key index: set key.index=true on its topic", p->label);
    pthread_mutex_lock(&p->ix_mu);
    for (size_t j = 0; j < p->nsegs; j++) /* the in-memory indexes, whole */
        if (p->segs[j]->kx || p->segs[j]->tx)
            ix_catch_up(p, p->segs[j], p->segs[j]->size, INT64_MAX);
    int rc = expect_check(p, req);
    pthread_mutex_unlock(&p->ix_mu);
    return rc;
}

/* segkeys_expect_locked's checks, under mu and ix_mu, the in-memory indexes caught up. */
static int expect_check(td_part *p, part_expect *req)
{
    if (!kx_usable(p->segs[p->nsegs - 1]->kx))
        return td_fail(TD_EUNSUPPORTED,
                       "the key index of partition %s is incomplete until its active segment "
                       "rolls (it was enabled, or ran out of memory, meanwhile)",
                       p->label);
    int64_t ls = aload(&p->log_start);
    for (size_t i = 0; i < req->n; i++) {
        part_expect_key *k = &req->keys[i];
        if (k->expected == TD_VERSION_ANY)
            continue;
        kq q = {.from = 0, .below = INT64_MAX, .latest = true, .last = -1};
        expect_digest(k, q.d);
        for (size_t j = p->nsegs; j-- > 0 && q.last < 0;) {
            td_seg *s = p->segs[j];
            if (kx_usable(s->kx)) {
                kx_query(s->kx, s->base, &q);
            } else if (s->next_offset <= req->pre_upto) {
                q.last = k->pre; /* read before the lock */
                break;
            } else { /* its seal was paid since: its file, under the lock (rare) */
                int rc = seg_query(&KEYS, p, s, s->size, s->next_offset, s->sealed, s->kx_checked,
                                   true, &q);
                if (rc)
                    return rc;
            }
        }
        int64_t v = q.last >= 0 && q.last >= ls ? q.last : TD_VERSION_NO_STREAM;
        bool ok = k->upto                               ? v <= k->expected
                  : k->expected == TD_VERSION_EXISTS    ? v >= 0
                  : k->expected == TD_VERSION_NO_STREAM ? v < 0
                                                        : v == k->expected;
        if (!ok) {
            char e[24], c[24];
            req->failed = i;
            k->current = v;
            if (k->upto)
                return td_fail(TD_EVERSION,
                               "the %s version %" PRId64 " is after the position %" PRId64,
                               k->tag ? "tag's" : "stream's", v, k->expected);
            return td_fail(TD_EVERSION, "expected version %s, but the stream's version is %s",
                           td_version_text(k->expected, e, sizeof(e)),
                           td_version_text(v, c, sizeof(c)));
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Open and configuration
 */
/* Opens the index K of p's segments: the active segment's built from its log, every sealed
 * segment's file checked and rebuilt when it is not whole. */
static int kind_open(const kx_kind *K, td_part *p)
{
    for (size_t i = 0; i < p->nsegs; i++) {
        td_seg *s = p->segs[i];
        if (i + 1 == p->nsegs) {
            seg_keys *k;
            int rc = kx_build(K, p, s, s->size, &k);
            if (rc)
                return td_fail(rc,
                               "partition %s: cannot build the %s index of its active "
                               "segment: %s",
                               p->label, K->what, td_strerror(rc));
            kx_free(*kx_of(K, s));
            *kx_of(K, s) = k;
            s->ix_pos = s->size; /* both indexes are built from the whole log */
            ix_publish(s);
            continue;
        }
        kfile f;
        int rc = kfile_open(K, p, s->base, s->next_offset, false, &f);
        if (rc == 0) {
            p->io->close(p->io, f.fd);
            continue;
        }
        if (rc != -ENOENT && rc != TD_ECORRUPT)
            return rc;
        if ((rc = kx_rebuild(K, p, s, s->size, s->next_offset, rc, NULL)) != 0)
            return td_fail(
                rc, "partition %s: cannot rebuild the %s index of segment %020" PRId64 ": %s",
                p->label, K->what, s->base, td_strerror(rc));
        *checked_of(K, s) = true;
    }
    return 0;
}

int segkeys_open(td_part *p)
{
    if (p->offline[0])
        return 0;
    int rc = p->cfg.key_index ? kind_open(&KEYS, p) : 0;
    if (rc == 0 && p->cfg.trace_index)
        rc = kind_open(&TRACES, p);
    return rc;
}

/* Index K turned on or off (under mu). */
static void kind_config_locked(const kx_kind *K, td_part *p, bool on, int64_t now_ms)
{
    td_seg *act = p->segs[p->nsegs - 1];
    if (!on) {
        pthread_mutex_lock(&p->ix_mu);
        for (size_t i = 0; i < p->nsegs; i++) {
            kx_free(*kx_of(K, p->segs[i]));
            *kx_of(K, p->segs[i]) = NULL;
        }
        pthread_mutex_unlock(&p->ix_mu);
        return;
    }
    if (*kx_of(K, act))
        return;
    if (act->size == 0) {
        pthread_mutex_lock(&p->ix_mu);
        if (!(*kx_of(K, act) = kx_new()))
            TD_WARN("storage", "partition %s: no memory for a %s index", p->label, K->what);
        act->ix_pos = 0;
        ix_publish(act);
        pthread_mutex_unlock(&p->ix_mu);
        return;
    }
    int rc = roll_locked(p, now_ms); /* the new segment is indexed from its first event */
    if (rc)
        TD_WARN("storage", "partition %s: %s.index takes effect at the next roll: %s", p->label,
                K->what, td_strerror(rc));
}

void segkeys_config_locked(td_part *p, bool keys_was, bool traces_was, int64_t now_ms)
{
    if (keys_was != p->cfg.key_index)
        kind_config_locked(&KEYS, p, p->cfg.key_index, now_ms);
    if (traces_was != p->cfg.trace_index)
        kind_config_locked(&TRACES, p, p->cfg.trace_index, now_ms);
}

/* ---------------------------------------------------------------------------------------------
 * Trace lookups
 */
int part_trace_offsets(td_part *p, int kind, const void *id, size_t n, int64_t from, int64_t *out,
                       size_t max, size_t *got)
{
    *got = 0;
    int rc = check_online(p);
    if (rc)
        return rc;
    pthread_mutex_lock(&p->mu);
    bool on = p->cfg.trace_index;
    pthread_mutex_unlock(&p->mu);
    if (!on)
        return td_fail(TD_EUNSUPPORTED,
                       "partition %s has no trace index: set trace.index=true on its topic",
                       p->label);
    kq q = {.from = TD_MAX(from, part_log_start(p)),
            .below = part_high_watermark(p),
            .out = out,
            .max = max,
            .last = -1};
    td_trace_digest(kind, id, n, q.d);
    if (max)
        rc = run_query(&TRACES, p, &q);
    *got = q.got;
    return rc;
}
