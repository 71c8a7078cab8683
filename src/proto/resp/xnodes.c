/*
 * xnodes.c: a model of the nodes in which Redis 7 keeps a stream, so that trimming and XINFO
 * STREAM answer as Redis does (docs/redis.md#the-node-model).
 *
 * Redis keeps a stream as a rax (a compressed radix tree) whose keys are 128-bit big-endian IDs,
 * each holding a listpack of entries: a master entry (count, deleted, the field names of the
 * node's first entry, 0), then per entry flags, the ID as ms and seq deltas from the node's key,
 * the field names unless they are the master's (SAMEFIELDS), the values, and the element count.
 * A new node starts when the tail one holds stream-node-max-entries entries (live and deleted)
 * or when its listpack bytes plus the new entry's field and value bytes reach
 * stream-node-max-bytes. `~` trimming removes whole nodes only, `=` marks entries of the first
 * node kept as deleted, XDEL marks entries deleted and removes a node left with none live. So
 * what `XTRIM s MAXLEN ~ 444` removes depends on every entry's exact encoded size.
 *
 * The model here keeps, per node, its offset range, key, last ID, counts and listpack size
 * (about 100 bytes a node, a node holding up to stream-node-max-entries entries: by default
 * about 1 byte per entry), never the entries. A partition's model is caught up lazily: when a
 * command needs it (XTRIM, XADD with MAXLEN or MINID, XDEL, XINFO STREAM) it reads the entries
 * appended since, through whichever protocol, and packs them with the settings in force then.
 * The model is saved in the partition's stream-nodes file (xnodes_save.c, and "The saved
 * model" below), so that a restart, or a model the LRU dropped, reads only the entries after
 * the last save (at most a node's worth plus what was appended since), and gets Redis's nodes
 * exactly, also after exact trims and XDELs. Without a file to trust (none yet, damaged, another
 * version) the model is rebuilt by reading the stream from its log start, which gives Redis's
 * nodes but for two things that only history shows: the first node restarts at the log start
 * (entries an exact trim marked deleted before it are forgotten), and entries XDEL removed
 * count as removed after the last entry, not when they were. Models are kept for at most
 * XN_MAX_STREAMS partitions, the least recently used dropped first.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/broker.h"
#include "broker/xgroup.h"
#include "proto/resp/resp.h"
#include "proto/resp/xnodes.h"

#define XN_MAX_STREAMS 1024
/* Records of XDELs held before they are written with the next save (96 bytes each). */
#define XN_MAX_OPS 1024

/* ---------------------------------------------------------------------------------------------
 * Listpack sizes (Redis's listpack.c: lpEncodeIntegerGetType, lpEncodeGetType,
 * lpEncodeBacklen): an element is its encoding then a back length of 1 to 5 bytes.
 */
static size_t backlen_size(uint64_t l)
{
    if (l <= 127)
        return 1;
    if (l < 16383)
        return 2;
    if (l < 2097151)
        return 3;
    if (l < 268435455)
        return 4;
    return 5;
}

static size_t int_enc_size(int64_t v)
{
    if (v >= 0 && v <= 127)
        return 1;
    if (v >= -4096 && v <= 4095)
        return 2;
    if (v >= -32768 && v <= 32767)
        return 3;
    if (v >= -8388608 && v <= 8388607)
        return 4;
    if (v >= INT32_MIN && v <= INT32_MAX)
        return 5;
    return 9;
}

size_t xn_lp_int_size(int64_t v)
{
    return int_enc_size(v) + 1;
}

/* Redis's lpStringToInt64: a canonical decimal (no sign but '-', no leading zero, not "-0")
 * within int64, at most 20 characters. */
static bool lp_string_int(const uint8_t *p, size_t n, int64_t *out)
{
    if (n == 0 || n >= 21)
        return false;
    if (n == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    size_t i = 0;
    bool neg = p[0] == '-';
    if (neg && ++i == n)
        return false;
    if (p[i] < '1' || p[i] > '9')
        return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        if (v > UINT64_MAX / 10 || v * 10 > UINT64_MAX - (uint64_t)(p[i] - '0'))
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    return true;
}

size_t xn_lp_str_size(const uint8_t *p, size_t n)
{
    int64_t v;
    if (lp_string_int(p, n, &v))
        return xn_lp_int_size(v);
    uint64_t enc = n < 64 ? 1 + n : n < 4096 ? 2 + n : 5 + (uint64_t)n;
    return enc + backlen_size(enc);
}

/* ---------------------------------------------------------------------------------------------
 * The rax's node count. rax keeps its tree maximally compressed after every insertion and
 * removal (raxInsert splits a compressed node into prefix, branch and suffix; raxRemove merges
 * the chain around a node left with one child), so rax->numnodes depends only on the set of
 * keys: the head, every leaf and branch of the compact trie, and a compressed node at the start
 * of every edge longer than one byte that leaves a branch (the head itself holds the edge when
 * it has one child). Keys come in increasing order, so adding one splits the rightmost path.
 */
static void rax_reset(xn_rax *r)
{
    memset(r, 0, sizeof(*r));
    r->nodes = 1;
}

static void rax_key(td_sid id, uint8_t k[16])
{
    uint64_t ms = (uint64_t)id.ms, seq = id.seq;
    for (int i = 0; i < 8; i++) {
        k[i] = (uint8_t)(ms >> (56 - 8 * i));
        k[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
    }
}

static void rax_add(xn_rax *r, td_sid id)
{
    uint8_t k[16];
    rax_key(id, k);
    if (!r->any) {
        r->any = true;
        r->nodes = 2; /* the head (compressed) and the leaf */
        r->depth[0] = 0;
        r->branch[0] = false;
        r->ndepth = 1;
        memcpy(r->last, k, 16);
        return;
    }
    int l = 0;
    while (l < 15 && r->last[l] == k[l])
        l++;
    int j = r->ndepth - 1;
    while (r->depth[j] > l)
        j--;
    int dj = r->depth[j], dx = j + 1 < r->ndepth ? r->depth[j + 1] : 16;
    if (dj == l) {
        if (!r->branch[j]) { /* the head gets its second child */
            r->branch[j] = true;
            r->nodes += dx - l > 1;
        }
        r->ndepth = j + 1;
    } else {
        r->nodes++; /* the new branch */
        if (r->branch[j])
            r->nodes += (l - dj > 1) - (dx - dj > 1);
        r->nodes += dx - l > 1;
        r->ndepth = j + 1;
        r->depth[r->ndepth] = l;
        r->branch[r->ndepth] = true;
        r->ndepth++;
    }
    r->nodes += 1 + (16 - l > 1); /* the leaf, and the compressed node above it */
    memcpy(r->last, k, 16);
}

/* ---------------------------------------------------------------------------------------------
 * The model
 */
void xn_model_init(xn_model *m)
{
    memset(m, 0, sizeof(*m));
    rax_reset(&m->rax);
}

void xn_model_free(xn_model *m)
{
    free(m->v);
    xn_model_init(m);
}

/* The field names' identity for SAMEFIELDS: a 64-bit FNV-1a over each name's length and
 * bytes (Redis compares the names; a collision would only change a size estimate). */
static uint64_t fields_hash(const td_slice *fv, size_t nfv)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < nfv; i += 2) {
        uint64_t n = fv[i].n;
        for (int b = 0; b < 8; b++)
            h = (h ^ ((n >> (8 * b)) & 0xff)) * UINT64_C(1099511628211);
        for (size_t k = 0; k < fv[i].n; k++)
            h = (h ^ fv[i].p[k]) * UINT64_C(1099511628211);
    }
    return h;
}

static int64_t node_bytes(const xn_node *nd)
{
    return nd->body + (int64_t)xn_lp_int_size(nd->live) + (int64_t)xn_lp_int_size(nd->deleted);
}

/* Whether the tail node has no room for an entry of totelelen field and value bytes
 * (streamAppendItem's test). */
static bool node_full(const xn_node *nd, const xn_cfg *c, uint64_t totelelen)
{
    int64_t max = c->max_bytes;
    if (max <= 0 || max > XN_LISTPACK_MAX_SIZE)
        max = XN_LISTPACK_MAX_SIZE;
    if ((uint64_t)node_bytes(nd) + totelelen >= (uint64_t)max)
        return true;
    return c->max_entries > 0 && nd->live + nd->deleted >= c->max_entries;
}

int xn_model_append(xn_model *m, const xn_cfg *c, int64_t off, td_sid id, const td_slice *fv,
                    size_t nfv)
{
    int64_t nf = (int64_t)(nfv / 2);
    uint64_t totelelen = 0;
    for (size_t i = 0; i < nfv; i++)
        totelelen += fv[i].n;
    uint64_t h = fields_hash(fv, nfv);
    xn_node *nd = m->n ? &m->v[m->n - 1] : NULL;
    bool same;
    if (!nd || node_full(nd, c, totelelen)) {
        if (td_grow(&m->v, &m->cap, m->n, sizeof(*m->v), 16) != 0)
            return -ENOMEM;
        nd = &m->v[m->n++];
        /* The master entry: the counts (outside body), the field names, the terminator. */
        int64_t body = 7 + (int64_t)xn_lp_int_size(nf) + (int64_t)xn_lp_int_size(0);
        for (size_t i = 0; i < nfv; i += 2)
            body += (int64_t)xn_lp_str_size(fv[i].p, fv[i].n);
        *nd = (xn_node){off, off, id, id, 0, 0, body, h, nf};
        if (!m->rax_stale)
            rax_add(&m->rax, id);
        same = true;
    } else {
        same = nf == nd->nfields && h == nd->mfields;
    }
    /* flags (0 or SAMEFIELDS: one byte), the ID deltas (as int64, as Redis stores them). */
    int64_t e = 2;
    e += (int64_t)xn_lp_int_size((int64_t)((uint64_t)id.ms - (uint64_t)nd->master.ms));
    e += (int64_t)xn_lp_int_size((int64_t)(id.seq - nd->master.seq));
    if (!same)
        e += (int64_t)xn_lp_int_size(nf);
    for (size_t i = 0; i < nfv; i++)
        if (!same || i % 2)
            e += (int64_t)xn_lp_str_size(fv[i].p, fv[i].n);
    e += (int64_t)xn_lp_int_size(nf + 3 + (same ? 0 : nf + 1));
    nd->body += e;
    nd->live++;
    nd->end = off + 1;
    nd->last = id;
    m->length++;
    return 0;
}

/* The node holding offset off, or -1. */
static ssize_t node_of(const xn_model *m, int64_t off)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->v[mid].start <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || off >= m->v[lo - 1].end)
        return -1;
    return (ssize_t)lo - 1;
}

bool xn_model_delete(xn_model *m, int64_t off)
{
    ssize_t i = node_of(m, off);
    if (i < 0 || m->v[i].live <= 0)
        return false;
    m->length--;
    if (m->v[i].live == 1) {
        memmove(&m->v[i], &m->v[i + 1], (m->n - (size_t)i - 1) * sizeof(*m->v));
        m->n--;
        m->rax_stale = true;
        return true;
    }
    m->v[i].live--;
    m->v[i].deleted++;
    return true;
}

void xn_model_drop(xn_model *m, size_t k)
{
    if (k > m->n)
        k = m->n;
    if (k == 0)
        return;
    for (size_t i = 0; i < k; i++)
        m->length -= m->v[i].live;
    memmove(m->v, m->v + k, (m->n - k) * sizeof(*m->v));
    m->n -= k;
    m->rax_stale = true;
}

int64_t xn_model_rax_nodes(xn_model *m)
{
    if (m->rax_stale) {
        rax_reset(&m->rax);
        for (size_t i = 0; i < m->n; i++)
            rax_add(&m->rax, m->v[i].master);
        m->rax_stale = false;
    }
    return m->rax.nodes;
}

/* ---------------------------------------------------------------------------------------------
 * The models of a server's streams
 */
typedef struct xn_stream {
    int64_t topic_id; /* catalog ids are never reused: a topic made again gets a new model */
    int32_t part;
    pthread_mutex_t mu; /* the model, held across each command that reads or changes it */
    int refs;           /* under the table's lock: in use, not to be dropped */
    uint64_t used;      /* the table's clock when last used */
    bool built;
    int64_t end; /* the model holds the entries below end */
    int64_t ls;  /* the log start when it was last caught up */
    xn_model m;
    /* The partition's stream-nodes file (xnodes_save.c): what was written since the last
     * COMMIT is in ops (records of changes) and jdirty (the nodes from that offset on). */
    bool jok;          /* the file holds a trusted state we may append to (else: rewrite it) */
    bool junsynced;    /* something written since the last fsync */
    bool jfailed;      /* the last write failed (logged once) */
    int64_t jdirty;    /* nodes starting at or above it changed since the last COMMIT */
    int64_t jsdirty;   /* ... since the last COMMIT known durable */
    int64_t jend, jls; /* the last COMMIT's */
    size_t jrecs;      /* records in the file (rewritten whole when it holds many more) */
    uint8_t *ops;      /* pending REMOVE/DROP/NODE records */
    size_t nops, capops;
    uint64_t ops_seq; /* the XDEL store's change the model holds: durable before it is saved */
} xn_stream;

struct resp_xnodes {
    pthread_mutex_t mu; /* the table */
    xn_stream **v;
    size_t n, cap;
    uint64_t clock;
    int64_t max_entries, max_bytes; /* atomic: CONFIG SET changes them at any time */
    td_metric *m_read;              /* entries read to build or catch up models */
};

int resp_xnodes_create(resp_server *s)
{
    resp_xnodes *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    pthread_mutex_init(&x->mu, NULL);
    x->max_entries = s->cfg.stream_node_max_entries;
    x->max_bytes = s->cfg.stream_node_max_bytes;
    td_metric_family *f = td_metrics_family(
        broker_metrics(s->e), TD_COUNTER, "tidings_redis_stream_node_entries_read_total",
        "Stream entries read to build or catch up the Redis node models "
        "(docs/redis.md#the-node-model)",
        NULL, NULL, 0);
    x->m_read = f ? td_metric_get(f, NULL) : NULL;
    s->xnodes = x;
    return 0;
}

static void stream_free(xn_stream *xs)
{
    xn_model_free(&xs->m);
    free(xs->ops);
    pthread_mutex_destroy(&xs->mu);
    free(xs);
}

void resp_xnodes_destroy(resp_server *s)
{
    resp_xnodes *x = s->xnodes;
    if (!x)
        return;
    for (size_t i = 0; i < x->n; i++)
        stream_free(x->v[i]);
    free(x->v);
    pthread_mutex_destroy(&x->mu);
    free(x);
    s->xnodes = NULL;
}

/* The model of a stream, locked (NULL when memory ran out); release it with stream_put. */
static xn_stream *stream_get(resp_server *s, const sref *sr)
{
    resp_xnodes *x = s->xnodes;
    int64_t id = broker_topic_id(sr->ref);
    xn_stream *xs = NULL;
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < x->n && !xs; i++)
        if (x->v[i]->topic_id == id && x->v[i]->part == sr->pi)
            xs = x->v[i];
    if (!xs && x->n >= XN_MAX_STREAMS) { /* drop the least recently used model not in use */
        size_t lru = x->n;
        for (size_t i = 0; i < x->n; i++)
            if (x->v[i]->refs == 0 && (lru == x->n || x->v[i]->used < x->v[lru]->used))
                lru = i;
        if (lru < x->n) {
            stream_free(x->v[lru]);
            x->v[lru] = x->v[--x->n];
        }
    }
    if (!xs && td_grow(&x->v, &x->cap, x->n, sizeof(*x->v), 16) == 0 &&
        (xs = calloc(1, sizeof(*xs))) != NULL) {
        xs->topic_id = id;
        xs->part = sr->pi;
        pthread_mutex_init(&xs->mu, NULL);
        xn_model_init(&xs->m);
        x->v[x->n++] = xs;
    }
    if (xs) {
        xs->refs++;
        xs->used = ++x->clock;
    }
    pthread_mutex_unlock(&x->mu);
    if (xs)
        pthread_mutex_lock(&xs->mu);
    return xs;
}

static void stream_put(resp_server *s, xn_stream *xs)
{
    pthread_mutex_unlock(&xs->mu);
    pthread_mutex_lock(&s->xnodes->mu);
    xs->refs--;
    pthread_mutex_unlock(&s->xnodes->mu);
}

static xn_cfg cfg_now(resp_server *s)
{
    return (xn_cfg){__atomic_load_n(&s->xnodes->max_entries, __ATOMIC_RELAXED),
                    __atomic_load_n(&s->xnodes->max_bytes, __ATOMIC_RELAXED)};
}

/* The offsets in [from, to) that XDEL removed (sorted, malloc'd, NULL when none). */
static int deleted_offsets(resp_server *sv, const sref *sr, int64_t from, int64_t to,
                           int64_t **offs, size_t *n)
{
    xstream xs = resp_xstream(sr);
    *offs = NULL;
    *n = 0;
    if (from >= to)
        return 0;
    return xstream_deleted(sv->e, &xs, from, to, offs, n, NULL);
}

/* The live entries (stored, not removed by XDEL) in [from, to). */
static int64_t live_in(resp_server *sv, const sref *sr, int64_t from, int64_t to)
{
    if (from >= to)
        return 0;
    int64_t n = to - from;
    size_t nd;
    xstream xs = resp_xstream(sr);
    if (broker_part_count_records(sr->p, from, to, &n) != 0)
        n = to - from;
    if (xstream_deleted(sv->e, &xs, from, to, NULL, &nd, NULL) == 0)
        n -= (int64_t)nd;
    return TD_MAX(0, n);
}

/* ---------------------------------------------------------------------------------------------
 * The saved model: the partition's stream-nodes file (xnodes_save.c). It lets a restart, or a
 * model the LRU dropped, start from the last saved state and read only the entries after it.
 *
 * Why this is exact after a crash: before a change the log cannot give back (a trim, an XDEL),
 * j_flush(must_sync) makes a COMMIT at the model's current end durable, so that whatever of the
 * change is lost, the saved state is the one just before it, at the same end. On load the
 * change is then redone from what the log and the XDEL store say: a trim or retention moved the
 * log start (the nodes below go, the node it cuts keeps its entries below as deleted, as an
 * exact trim marks them), and an XDEL left fewer live entries in a node than saved (they
 * become deleted ones, the node goes when none is left). The entries after the saved end are
 * then read and packed as they were appended, after every such change.
 */
static void j_push(xn_stream *xs, const uint8_t *rec)
{
    if (td_grow(&xs->ops, &xs->capops, xs->nops + XN_REC, 1, 1024) != 0) {
        xs->jok = false; /* out of memory: the next flush writes the whole model */
        return;
    }
    memcpy(xs->ops + xs->nops, rec, XN_REC);
    xs->nops += XN_REC;
}

static void j_push_node(xn_stream *xs, const xn_node *nd)
{
    uint8_t b[XN_REC];
    xn_rec_node(b, nd);
    j_push(xs, b);
}

/* After nodes were dropped from the front: DROP below the first kept. */
static void j_push_drop(xn_stream *xs)
{
    uint8_t b[XN_REC];
    xn_rec_drop(b, xs->m.n ? xs->m.v[0].start : INT64_MAX);
    j_push(xs, b);
}

/* XDEL of the entry at off in the model, recorded. */
static void model_delete(xn_stream *xs, int64_t off)
{
    size_t n = xs->m.n;
    ssize_t i = node_of(&xs->m, off);
    if (i < 0)
        return;
    int64_t start = xs->m.v[i].start;
    if (!xn_model_delete(&xs->m, off))
        return;
    uint8_t b[XN_REC];
    if (xs->m.n < n)
        xn_rec_remove(b, start);
    else
        xn_rec_node(b, &xs->m.v[i]);
    j_push(xs, b);
}

static void j_failed(const sref *sr, xn_stream *xs, int rc)
{
    if (!xs->jfailed)
        TD_WARN("redis", "%s/%d: cannot save the stream's nodes (%s); a restart rebuilds them",
                broker_topic_name(sr->ref), (int)sr->pi, td_strerror(rc));
    xs->jfailed = true;
    xs->jok = false;
}

/* Before a trim or an XDEL whose earlier state could not be made durable (j_flush failed: a
 * full disk, most likely): the saved model is emptied, so that a restart after a crash rebuilds
 * the model from the log instead of trusting a save older than the change, and the change goes
 * on, since trimming and deleting are how a full disk is freed. Emptying needs no data block;
 * if even that fails, a crash may leave the cut node's packing inexact (logged). */
static void j_forget(const sref *sr, xn_stream *xs)
{
    int rc = broker_part_nodes_rewrite(sr->p, NULL, 0);
    if (rc)
        TD_WARN("redis", "%s/%d: cannot empty the saved nodes (%s); after a crash the model may "
                         "differ from Redis's at the trimmed node",
                broker_topic_name(sr->ref), (int)sr->pi, td_strerror(rc));
    td_error_clear();
    xs->jok = false;
    xs->junsynced = false;
    xs->jsdirty = INT64_MAX; /* nothing saved to be ahead of: the next flush rewrites it all */
}

/* Writes what changed since the last COMMIT, and a COMMIT at the model's state (the whole file
 * when it is not trusted or holds many more records than nodes). With must_sync, returns once
 * that COMMIT is durable, and gives the write's error (the caller then does not make its
 * change); else a failure is logged, and the next flush writes the whole file. */
static int j_flush(resp_server *sv, const sref *sr, xn_stream *xs, bool must_sync)
{
    const xn_model *m = &xs->m;
    /* Never ahead of the XDEL store: a file saying an entry is deleted when the store lost
     * that XDEL in a crash would be a wrong model (it is usually durable by now). */
    if (xs->ops_seq) {
        int rc = xgroups_wait(sv->e, xs->ops_seq);
        if (rc) {
            j_failed(sr, xs, rc);
            return must_sync ? rc : 0;
        }
        xs->ops_seq = 0;
    }
    size_t ndirty = 0;
    while (ndirty < m->n && m->v[m->n - 1 - ndirty].start >= xs->jdirty)
        ndirty++;
    bool same = xs->nops == 0 && ndirty == 0 && xs->jend == xs->end && xs->jls == xs->ls;
    int rc = 0;
    if (xs->jok && same) {
        if (must_sync && xs->junsynced) {
            rc = broker_part_nodes_append(sr->p, NULL, 0, true);
            xs->junsynced = rc != 0;
        }
        if (!xs->junsynced)
            xs->jsdirty = INT64_MAX;
    } else if (!xs->jok || xs->jrecs > 2 * m->n + 1024) {
        uint8_t *b;
        size_t n;
        if ((rc = xn_saved_snapshot(m, xs->end, xs->ls, &b, &n)) == 0) {
            rc = broker_part_nodes_rewrite(sr->p, b, n);
            free(b);
        }
        if (rc == 0) {
            xs->jrecs = m->n + 2;
            xs->junsynced = false;
            xs->jsdirty = INT64_MAX;
        }
    } else {
        size_t n = xs->nops + (ndirty + 1) * XN_REC;
        uint8_t *b = malloc(n);
        rc = b ? 0 : -ENOMEM;
        if (b) {
            if (xs->nops)
                memcpy(b, xs->ops, xs->nops);
            size_t at = xs->nops;
            for (size_t i = m->n - ndirty; i < m->n; i++)
                at += xn_rec_node(b + at, &m->v[i]);
            xn_rec_commit(b + at, m, xs->end, xs->ls);
            rc = broker_part_nodes_append(sr->p, b, n, must_sync);
            free(b);
        }
        if (rc == 0) {
            xs->jrecs += n / XN_REC;
            xs->junsynced = !must_sync;
            if (must_sync)
                xs->jsdirty = INT64_MAX;
        }
    }
    if (rc) {
        j_failed(sr, xs, rc);
        return must_sync ? rc : 0;
    }
    xs->jok = true;
    xs->jfailed = false;
    xs->nops = 0;
    xs->jdirty = INT64_MAX;
    xs->jend = xs->end;
    xs->jls = xs->ls;
    return 0;
}

/* Loads the saved model into xs (false when there is none to trust: the caller reads the
 * stream from its log start, as this logs). */
static bool j_load(const sref *sr, xn_stream *xs, int64_t ls, int64_t hw)
{
    const char *name = broker_topic_name(sr->ref);
    uint8_t *b;
    size_t n;
    int rc = broker_part_nodes_read(sr->p, &b, &n);
    if (rc == TD_ENOTFOUND) {
        td_error_clear();
        if (hw - ls > 1000) /* not for a stream just made */
            TD_INFO("redis",
                    "%s/%d: no saved stream nodes; reading the stream from offset %" PRId64
                    " (%" PRId64 " offsets)",
                    name, (int)sr->pi, ls, hw - ls);
        return false;
    }
    const char *why = td_last_error();
    xn_saved sv = {0};
    if (rc == 0) {
        rc = xn_saved_load(b, n, &xs->m, &sv, &why);
        free(b);
    }
    if (rc == 0 && (sv.end > hw || sv.ls > ls)) {
        why = "it is ahead of the log";
        rc = -EINVAL;
    }
    if (rc) {
        xn_model_free(&xs->m);
        TD_WARN("redis",
                "%s/%d: saved stream nodes not used (%s); reading the stream from offset %" PRId64,
                name, (int)sr->pi, why, ls);
        td_error_clear();
        return false;
    }
    xs->end = xs->jend = sv.end;
    xs->ls = xs->jls = sv.ls;
    xs->jrecs = sv.recs + 1;
    xs->jok = sv.clean;   /* else the next flush rewrites it without the damaged tail */
    xs->junsynced = true; /* read back maybe before the disk had it (a kill -9) */
    return true;
}

/* After a load: the XDELs made after the saved state (see above). false when the store
 * removed fewer entries than the saved state says (the file is ahead of the store, which a
 * crash between the two can leave): the model is then not to be trusted. */
static bool j_redo_deletes(resp_server *sv, const sref *sr, xn_stream *xs, int64_t ls)
{
    int64_t *offs;
    size_t nd;
    if (deleted_offsets(sv, sr, ls, xs->end, &offs, &nd) != 0)
        return false;
    bool ok = true;
    size_t d = 0;
    for (size_t i = 0; ok && i < xs->m.n;) {
        xn_node *v = &xs->m.v[i];
        while (d < nd && offs[d] < v->start)
            d++;
        if (d == nd)
            break;
        if (offs[d] >= v->end) {
            i++;
            continue;
        }
        int64_t live = live_in(sv, sr, TD_MAX(ls, v->start), v->end);
        if (live > v->live) {
            ok = false;
        } else if (live == 0) {
            uint8_t b[XN_REC];
            j_push(xs, (xn_rec_remove(b, v->start), b));
            xs->m.length -= v->live;
            memmove(v, v + 1, (xs->m.n - i - 1) * sizeof(*v));
            xs->m.n--;
            xs->m.rax_stale = true;
        } else {
            if (live < v->live) {
                xs->m.length -= v->live - live;
                v->deleted += v->live - live;
                v->live = live;
                j_push_node(xs, v);
            }
            i++;
        }
    }
    free(offs);
    return ok;
}

/* Adds the entries in [xs->end, hw) to the model. */
static int stream_read(resp_server *sv, const sref *sr, xn_stream *xs, int64_t hw)
{
    td_iter *it;
    int r = td_iter_open(sv->e, broker_topic_name(sr->ref), sr->pi, xs->end, &it);
    if (r)
        return r;
    xn_cfg cfg = cfg_now(sv);
    td_event ev;
    td_sid id = {0, 0};
    int64_t run_end = -1, run_off = -1, from = xs->end, nread = 0;
    /* The last node may grow, and new ones follow: all to be saved. */
    int64_t tail = xs->m.n ? xs->m.v[xs->m.n - 1].start : xs->end;
    xs->jdirty = TD_MIN(xs->jdirty, tail);
    xs->jsdirty = TD_MIN(xs->jsdirty, tail);
    while ((r = td_iter_next(it, &ev)) == 1 && ev.offset < hw) {
        if (ev.offset < xs->end)
            continue; /* a batch that began before */
        if (ev.offset > run_end) {
            if ((r = broker_stream_id(sr->p, ev.offset, &id, &run_end)) != 0)
                break;
            run_off = ev.offset;
        }
        td_sid eid = {id.ms, id.seq + (uint64_t)(ev.offset - run_off)};
        td_arena a;
        td_arena_init(&a);
        td_slice *f;
        size_t nf;
        r = resp_event_fields(&ev, &a, &f, &nf) != 0
                ? -ENOMEM
                : xn_model_append(&xs->m, &cfg, ev.offset, eid, f, nf);
        td_arena_free(&a);
        if (r)
            break;
        xs->end = ev.offset + 1;
        nread++;
    }
    td_iter_close(it);
    td_counter_add(sv->xnodes->m_read, (uint64_t)nread);
    if (r < 0)
        return r;
    xs->end = hw;
    /* Entries XDEL removed before the model saw them (a rebuild): removed after the others. */
    int64_t *offs;
    size_t nd;
    if ((r = deleted_offsets(sv, sr, from, hw, &offs, &nd)) != 0)
        return r;
    for (size_t i = 0; i < nd; i++)
        model_delete(xs, offs[i]);
    free(offs);
    return 0;
}

/* Catches the model up with the partition: appends (through any protocol) up to the last
 * stable offset (the high watermark but for an open transaction: the model holds the committed
 * entries readers see; or upto, when that is below it and not negative), and a log start moved
 * by something else (retention, Kafka's DeleteRecords). */
static int stream_sync(resp_server *sv, const sref *sr, xn_stream *xs, int64_t upto)
{
    int64_t ls = broker_part_log_start(sr->p), hw = broker_part_last_stable(sr->p);
    bool loaded = false;
    if (!xs->built || hw < xs->end) {
        xn_model_free(&xs->m);
        xs->built = true;
        xs->nops = 0;
        xs->jdirty = INT64_MAX;
        xs->jsdirty = INT64_MIN; /* nothing known durable */
        xs->jok = false;
        loaded = j_load(sr, xs, ls, hw);
        if (!loaded)
            xs->end = xs->ls = ls;
    }
    if (ls > xs->ls) {
        size_t k = 0;
        while (k < xs->m.n && xs->m.v[k].end <= ls)
            k++;
        xn_model_drop(&xs->m, k);
        j_push_drop(xs);
        if (xs->m.n && xs->m.v[0].start < ls) {
            xn_node *nd = &xs->m.v[0];
            int64_t live = live_in(sv, sr, ls, nd->end);
            xs->m.length -= nd->live - live;
            nd->deleted += nd->live - live;
            nd->live = live;
            j_push_node(xs, nd);
        }
        xs->ls = ls;
    }
    if (loaded && !j_redo_deletes(sv, sr, xs, ls)) {
        TD_WARN("redis",
                "%s/%d: saved stream nodes disagree with XDEL's; reading the stream from "
                "offset %" PRId64,
                broker_topic_name(sr->ref), (int)sr->pi, ls);
        xn_model_free(&xs->m);
        xs->nops = 0;
        xs->jok = false;
        xs->end = xs->ls = ls;
    }
    if (xs->end < ls)
        xs->end = ls;
    if (upto >= 0 && upto < hw)
        hw = upto;
    int r = xs->end < hw ? stream_read(sv, sr, xs, hw) : 0;
    /* Saved (without waiting for the disk: what is lost is read again) after a rebuild, and
     * whenever a node was completed since the last save, so a restart reads at most the last
     * node and what came after the last save. */
    if (r == 0 && (!xs->jok || (xs->m.n && xs->jdirty < xs->m.v[xs->m.n - 1].start)))
        j_flush(sv, sr, xs, false);
    return r;
}

/* An exact trim's part in node nd (the first kept): marks its first entries deleted (those
 * below minid, or as many as leave maxlen), and gives the offset where the stream then starts. */
static int trim_in_node(resp_server *sv, const sref *sr, const xn_node *nd, const trim_spec *t,
                        int64_t length, int64_t ls, int64_t *cut, int64_t *marked)
{
    int64_t from = TD_MAX(ls, nd->start);
    *cut = from;
    *marked = 0;
    if (t->kind == 2) {
        int r = broker_stream_seek(sr->p, t->minid, from, nd->end, cut);
        if (r == 0)
            *marked = live_in(sv, sr, from, *cut);
        return r;
    }
    int64_t want = length - t->maxlen, *del, *recs = NULL;
    size_t nd_del, nrecs = 0, d = 0;
    int r = deleted_offsets(sv, sr, from, nd->end, &del, &nd_del);
    if (r)
        return r;
    bool gaps = broker_part_has_gaps(sr->p);
    if (gaps && (r = broker_part_record_offsets(sr->p, from, nd->end, 0, &recs, &nrecs)) != 0) {
        free(del);
        return r;
    }
    for (size_t i = 0; *marked < want; i++) {
        int64_t o = gaps ? (i < nrecs ? recs[i] : nd->end) : from + (int64_t)i;
        if (o >= nd->end)
            break;
        while (d < nd_del && del[d] < o)
            d++;
        if (d < nd_del && del[d] == o)
            continue;
        (*marked)++;
        *cut = o + 1;
    }
    free(del);
    free(recs);
    return 0;
}

int resp_xnodes_trim(resp_server *sv, const sref *sr, const trim_spec *t, int64_t upto,
                     int64_t *trimmed)
{
    *trimmed = 0;
    xn_stream *xs = stream_get(sv, sr);
    if (!xs)
        return -ENOMEM;
    int r = stream_sync(sv, sr, xs, upto);
    xn_model *m = &xs->m;
    int64_t length = m->length, deleted = 0, marked = 0, ls = xs->ls, cut = -1;
    size_t k = 0;
    /* streamTrim: whole nodes from the first while they may go, then (exact) within one. */
    while (r == 0 && k < m->n) {
        if (t->kind == 1 && length <= t->maxlen)
            break;
        const xn_node *nd = &m->v[k];
        if (t->limit && deleted + nd->live > t->limit)
            break;
        bool remove =
            t->kind == 1 ? length - nd->live >= t->maxlen : td_sid_cmp(nd->last, t->minid) < 0;
        if (remove) {
            length -= nd->live;
            deleted += nd->live;
            k++;
            continue;
        }
        if (!t->approx)
            r = trim_in_node(sv, sr, nd, t, length, ls, &cut, &marked);
        break;
    }
    if (cut < 0)
        cut = k < m->n ? TD_MAX(ls, m->v[k].start) : xs->end;
    int64_t now_start = ls;
    /* The state before the trim durable first when the trim touches a node changed since the
     * last durable save (see "The saved model" above): else a crash is redone exactly from
     * that save, and an exact trim of old entries costs no fsync. */
    ssize_t hi = marked > 0 ? (ssize_t)k : (ssize_t)k - 1;
    if (r == 0 && hi >= 0 && m->v[hi].start >= xs->jsdirty && j_flush(sv, sr, xs, true) != 0)
        j_forget(sr, xs);
    if (r == 0 && cut > ls)
        r = broker_part_delete_before(sr->p, cut, &now_start);
    if (r == 0 && (k > 0 || marked > 0)) {
        xn_model_drop(m, k);
        if (k > 0)
            j_push_drop(xs);
        if (marked > 0) {
            m->v[0].live -= marked;
            m->v[0].deleted += marked;
            m->length -= marked;
            j_push_node(xs, &m->v[0]);
        }
        xs->ls = TD_MAX(xs->ls, now_start);
        *trimmed = deleted + marked;
        j_flush(sv, sr, xs, false);
    }
    stream_put(sv, xs);
    return r;
}

static int cmp_off(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int resp_xnodes_delete(rconn *rc, const sref *sr, const td_sid *ids, size_t n, size_t *deleted,
                       uint64_t *seq)
{
    xstream xst = resp_xstream(sr);
    int64_t *offs = malloc((n ? n : 1) * sizeof(*offs));
    xn_stream *xs = offs ? stream_get(rc->s, sr) : NULL;
    if (!xs) {
        free(offs);
        return -ENOMEM;
    }
    /* The live entries among ids, before they go (the model counts each once). */
    int r = stream_sync(rc->s, sr, xs, -1);
    size_t k = 0;
    for (size_t i = 0; r == 0 && i < n; i++) {
        int64_t off;
        if (broker_stream_find(sr->p, ids[i], &off) == 0 && off >= xs->ls && off < xs->end &&
            live_in(rc->s, sr, off, off + 1) == 1)
            offs[k++] = off;
    }
    /* The state before the XDEL durable first when it touches a node changed since the last
     * durable save (see "The saved model" above). */
    qsort(offs, k, sizeof(*offs), cmp_off);
    ssize_t hi = k ? node_of(&xs->m, offs[k - 1]) : -1;
    if (r == 0 && hi >= 0 && xs->m.v[hi].start >= xs->jsdirty && j_flush(rc->s, sr, xs, true) != 0)
        j_forget(sr, xs);
    if (r == 0)
        r = xstream_delete(rc->s->e, &xst, ids, n, deleted, seq);
    if (r == 0 && k > 0) {
        for (size_t i = 0; i < k; i++)
            if (i == 0 || offs[i] != offs[i - 1])
                model_delete(xs, offs[i]);
        /* Saved with the next change (or lost, and then redone from the store on load): not
         * before the store has made the XDEL durable, which the reply waits for too. */
        if (*seq)
            xs->ops_seq = *seq;
        if (xs->nops >= XN_MAX_OPS * XN_REC) /* memory bounded: waits for the store */
            j_flush(rc->s, sr, xs, false);
    }
    stream_put(rc->s, xs);
    free(offs);
    return r;
}

int resp_xnodes_radix(rconn *rc, const sref *sr, int64_t *keys, int64_t *nodes)
{
    xn_stream *xs = stream_get(rc->s, sr);
    if (!xs)
        return -ENOMEM;
    int r = stream_sync(rc->s, sr, xs, -1);
    *keys = (int64_t)xs->m.n;
    *nodes = xn_model_rax_nodes(&xs->m);
    stream_put(rc->s, xs);
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Settings
 */
long long resp_xnodes_default_limit(resp_server *s)
{
    /* Redis: 100 nodes' worth, within [1, 1000000] (10000 when the product is not positive;
     * the product wraps as Redis's does for huge settings). */
    long long me = (long long)__atomic_load_n(&s->xnodes->max_entries, __ATOMIC_RELAXED);
    long long l = (long long)((unsigned long long)me * 100u);
    if (l <= 0)
        l = 10000;
    if (l > 1000000)
        l = 1000000;
    return l;
}

static int64_t *setting(resp_server *s, const char *name)
{
    if (!strcasecmp(name, "stream-node-max-entries"))
        return &s->xnodes->max_entries;
    if (!strcasecmp(name, "stream-node-max-bytes"))
        return &s->xnodes->max_bytes;
    return NULL;
}

bool resp_xnodes_config_get(resp_server *s, const char *name, char *buf, size_t len)
{
    int64_t *v = setting(s, name);
    if (v)
        snprintf(buf, len, "%" PRId64, __atomic_load_n(v, __ATOMIC_RELAXED));
    return v != NULL;
}

/* Redis's memtoull: digits and an optional unit (b, k, kb, m, mb, g, gb: k is 1000, kb 1024),
 * no sign; the product wraps as Redis's does. */
static bool parse_memory(const char *p, unsigned long long *out)
{
    const char *u = p;
    if (*u == '-')
        return false;
    while (*u >= '0' && *u <= '9')
        u++;
    unsigned long long mul;
    if (*u == '\0' || !strcasecmp(u, "b"))
        mul = 1;
    else if (!strcasecmp(u, "k"))
        mul = 1000;
    else if (!strcasecmp(u, "kb"))
        mul = 1024;
    else if (!strcasecmp(u, "m"))
        mul = 1000 * 1000;
    else if (!strcasecmp(u, "mb"))
        mul = 1024 * 1024;
    else if (!strcasecmp(u, "g"))
        mul = 1000ull * 1000 * 1000;
    else if (!strcasecmp(u, "gb"))
        mul = 1024ull * 1024 * 1024;
    else
        return false;
    char buf[128];
    size_t digits = (size_t)(u - p);
    if (digits >= sizeof(buf))
        return false;
    memcpy(buf, p, digits);
    buf[digits] = 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if ((v == 0 && errno == EINVAL) || *end)
        return false;
    *out = v * mul;
    return true;
}

/* The value of a setting, or false with *why. */
static bool setting_parse(const char *name, td_slice value, int64_t *out, const char **why)
{
    char buf[160];
    if (value.n >= sizeof(buf) || memchr(value.p, 0, value.n)) {
        *why = strcasecmp(name, "stream-node-max-bytes")
                   ? "argument couldn't be parsed into an integer"
                   : "argument must be a memory value";
        return false;
    }
    memcpy(buf, value.p, value.n);
    buf[value.n] = 0;
    if (!strcasecmp(name, "stream-node-max-bytes")) {
        unsigned long long v;
        if (!parse_memory(buf, &v)) {
            *why = "argument must be a memory value";
            return false;
        }
        if (v > (unsigned long long)INT64_MAX) {
            *why = "argument must be between 0 and 9223372036854775807 inclusive";
            return false;
        }
        *out = (int64_t)v;
        return true;
    }
    long long v;
    if (!resp_parse_ll(value.p, value.n, &v)) {
        *why = "argument couldn't be parsed into an integer";
        return false;
    }
    if (v < 0) {
        *why = "argument must be between 0 and 9223372036854775807 inclusive";
        return false;
    }
    *out = v;
    return true;
}

const char *resp_xnodes_config_check(const char *name, td_slice value)
{
    int64_t v;
    const char *why = NULL;
    return setting_parse(name, value, &v, &why) ? NULL : why;
}

/* Catches up every model held with what its stream has, so that the entries appended before a
 * change of the settings are packed with the settings they were appended under (as far as
 * models are held: a stream no command has touched since the start is packed later). */
static void catch_up_all(resp_server *s)
{
    resp_xnodes *x = s->xnodes;
    pthread_mutex_lock(&x->mu);
    size_t n = x->n;
    struct {
        int64_t id;
        int32_t part;
    } *v = malloc((n ? n : 1) * sizeof(*v));
    for (size_t i = 0; v && i < n; i++) {
        v[i].id = x->v[i]->topic_id;
        v[i].part = x->v[i]->part;
    }
    pthread_mutex_unlock(&x->mu);
    for (size_t i = 0; v && i < n; i++) {
        sref sr = {NULL, v[i].part, NULL};
        if (broker_topic_acquire_id(s->e, v[i].id, &sr.ref) != 0) {
            td_error_clear();
            continue;
        }
        if (v[i].part < broker_topic_partitions(sr.ref)) {
            sr.p = broker_topic_part(sr.ref, v[i].part);
            xn_stream *xs = stream_get(s, &sr);
            if (xs) {
                stream_sync(s, &sr, xs, -1);
                stream_put(s, xs);
            }
        }
        broker_topic_release(sr.ref);
    }
    free(v);
}

void resp_xnodes_config_set(resp_server *s, const char *name, td_slice value)
{
    int64_t v, *p = setting(s, name);
    const char *why;
    if (!p || !setting_parse(name, value, &v, &why))
        return;
    if (__atomic_load_n(p, __ATOMIC_RELAXED) != v)
        catch_up_all(s);
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
