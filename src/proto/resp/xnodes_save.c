/*
 * xnodes_save.c: the saved form of a stream's node model (xnodes.c), the partition's
 * stream-nodes file (docs/storage.md, docs/redis.md#the-node-model). Pure functions over
 * buffers, unit-tested in tests/unit/test_xnodes.c.
 *
 * The file is a journal of fixed-size records, each a type byte, three zero bytes, eleven
 * big-endian 64-bit fields and a CRC-32C of the rest:
 *   HEAD    (first, once) the magic and the format version;
 *   NODE    a node as it now is (its first offset names it: a later NODE for the same first
 *           offset replaces it, one past the last adds a node);
 *   REMOVE  the node starting at an offset is gone (XDEL removed its last live entry);
 *   DROP    the nodes starting below an offset are gone (a trim, retention, DeleteRecords);
 *   COMMIT  the model holds the entries below end, the log start was ls, with n nodes and
 *           length live entries (checked on load).
 * Only what the last COMMIT closes is trusted: a torn or damaged record, and everything after
 * it, is ignored (the reader then rewrites the file from the state it trusts). What a crash
 * loses is thus a suffix of the changes, which the model repairs from the log (xnodes.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/resp/xnodes.h"

#define XN_MAGIC UINT64_C(0x7464786e6f646573) /* "tdxnodes" */

enum { R_HEAD = 1, R_NODE, R_REMOVE, R_DROP, R_COMMIT };

static size_t rec(uint8_t *b, int type, const uint64_t f[XN_REC_FIELDS])
{
    memset(b, 0, XN_REC);
    b[0] = (uint8_t)type;
    for (int i = 0; i < XN_REC_FIELDS; i++)
        td_store_be64(b + 4 + 8 * i, f[i]);
    td_store_be32(b + XN_REC - 4, td_crc32c(0, b, XN_REC - 4));
    return XN_REC;
}

size_t xn_rec_head(uint8_t *b)
{
    uint64_t f[XN_REC_FIELDS] = {XN_MAGIC, XN_FORMAT};
    return rec(b, R_HEAD, f);
}

size_t xn_rec_node(uint8_t *b, const xn_node *nd)
{
    uint64_t f[XN_REC_FIELDS] = {(uint64_t)nd->start, (uint64_t)nd->end,     nd->master.ms,
                                 nd->master.seq,      nd->last.ms,           nd->last.seq,
                                 (uint64_t)nd->live,  (uint64_t)nd->deleted, (uint64_t)nd->body,
                                 nd->mfields,         (uint64_t)nd->nfields};
    return rec(b, R_NODE, f);
}

size_t xn_rec_remove(uint8_t *b, int64_t start)
{
    uint64_t f[XN_REC_FIELDS] = {(uint64_t)start};
    return rec(b, R_REMOVE, f);
}

size_t xn_rec_drop(uint8_t *b, int64_t start)
{
    uint64_t f[XN_REC_FIELDS] = {(uint64_t)start};
    return rec(b, R_DROP, f);
}

size_t xn_rec_commit(uint8_t *b, const xn_model *m, int64_t end, int64_t ls)
{
    uint64_t f[XN_REC_FIELDS] = {(uint64_t)end, (uint64_t)ls, (uint64_t)m->n, (uint64_t)m->length};
    return rec(b, R_COMMIT, f);
}

int xn_saved_snapshot(const xn_model *m, int64_t end, int64_t ls, uint8_t **out, size_t *n)
{
    size_t len = (m->n + 2) * XN_REC;
    uint8_t *b = malloc(len);
    if (!b)
        return -ENOMEM;
    size_t at = xn_rec_head(b);
    for (size_t i = 0; i < m->n; i++)
        at += xn_rec_node(b + at, &m->v[i]);
    at += xn_rec_commit(b + at, m, end, ls);
    *out = b;
    *n = at;
    return 0;
}

/* The index of the node that starts at start, or where it would go (*found false). */
static size_t find_start(const xn_model *m, int64_t start, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->v[mid].start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < m->n && m->v[lo].start == start;
    return lo;
}

static int apply(xn_model *m, int type, const uint64_t *f)
{
    bool found;
    if (type == R_NODE) {
        xn_node nd = {(int64_t)f[0], (int64_t)f[1], {f[2], f[3]}, {f[4], f[5]},  (int64_t)f[6],
                      (int64_t)f[7], (int64_t)f[8], f[9],         (int64_t)f[10]};
        if (nd.start < 0 || nd.end <= nd.start || nd.live <= 0 || nd.deleted < 0 || nd.body <= 0 ||
            nd.nfields < 0 || nd.live + nd.deleted > nd.end - nd.start ||
            td_sid_cmp(nd.master, nd.last) > 0)
            return -EINVAL;
        size_t i = find_start(m, nd.start, &found);
        if (!found) {
            if (td_grow(&m->v, &m->cap, m->n, sizeof(*m->v), 16) != 0)
                return -ENOMEM;
            memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(*m->v));
            m->n++;
        } else {
            m->length -= m->v[i].live;
        }
        m->v[i] = nd;
        m->length += nd.live;
        return 0;
    }
    if (type == R_REMOVE) {
        size_t i = find_start(m, (int64_t)f[0], &found);
        if (!found)
            return -EINVAL;
        m->length -= m->v[i].live;
        memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
        m->n--;
        return 0;
    }
    if (type == R_DROP) {
        size_t k = find_start(m, (int64_t)f[0], &found);
        xn_model_drop(m, k);
        return 0;
    }
    return -EINVAL;
}

/* Whether the nodes are in order, apart, below end and as many as the commit says. */
static bool model_ok(const xn_model *m, const uint64_t *c)
{
    int64_t end = (int64_t)c[0], ls = (int64_t)c[1], length = 0;
    if (ls < 0 || end < ls || c[2] != m->n)
        return false;
    for (size_t i = 0; i < m->n; i++) {
        const xn_node *nd = &m->v[i];
        if (nd->end > end ||
            (i && (nd->start < m->v[i - 1].end || td_sid_cmp(nd->master, m->v[i - 1].last) <= 0)))
            return false;
        length += nd->live;
    }
    return (uint64_t)length == c[3] && length == m->length;
}

int xn_saved_load(const uint8_t *b, size_t n, xn_model *m, xn_saved *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    xn_model_free(m);
    /* The records up to the first damaged one, and the last COMMIT among them. */
    size_t good = 0, last_commit = 0;
    bool commit = false;
    while (good + XN_REC <= n &&
           td_load_be32(b + good + XN_REC - 4) == td_crc32c(0, b + good, XN_REC - 4)) {
        if (b[good] == R_COMMIT) {
            commit = true;
            last_commit = good;
        }
        good += XN_REC;
    }
    if (n < XN_REC || good == 0 || b[0] != R_HEAD || td_load_be64(b + 4) != XN_MAGIC) {
        *why = n < XN_REC ? "too short" : "not a stream-nodes file";
        return -EINVAL;
    }
    if (td_load_be64(b + 12) != XN_FORMAT) {
        *why = "another format version";
        return -EINVAL;
    }
    if (!commit) {
        *why = "no complete change";
        return -EINVAL;
    }
    uint64_t f[XN_REC_FIELDS];
    for (size_t at = XN_REC; at <= last_commit; at += XN_REC) {
        const uint8_t *r = b + at;
        for (int i = 0; i < XN_REC_FIELDS; i++)
            f[i] = td_load_be64(r + 4 + 8 * i);
        int rc = 0;
        if (r[0] == R_COMMIT) {
            if (!model_ok(m, f))
                rc = -EINVAL;
        } else {
            rc = apply(m, r[0], f);
        }
        if (rc) {
            xn_model_free(m);
            *why = rc == -ENOMEM ? "out of memory" : "inconsistent records";
            return rc;
        }
        out->recs++;
    }
    out->end = (int64_t)f[0];
    out->ls = (int64_t)f[1];
    out->used = last_commit + XN_REC;
    out->clean = out->used == n;
    m->rax_stale = true;
    return 0;
}
