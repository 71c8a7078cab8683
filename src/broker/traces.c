/*
 * traces.c: the events of a trace, and what an event caused, across the trace.index topics
 * (td_trace_get, td_trace_caused; docs/tracing.md "Trace index").
 *
 * Both ask each indexed partition's trace index (storage.h part_trace_offsets, through
 * iter_open_trace) and read the events it names, whose headers are checked against what was
 * asked (the index compares digests). The topics are those with trace.index at the time of the
 * call, never an internal one; a topic the caller may not read is asked too, so that the answer
 * can say how many of its events were left out, but none of its events is returned.
 *
 * The tree: events sorted by (timestamp, topic, partition, offset); each one's parent found by
 * binary search among them (the event its x-causation-id names, else the latest event before it
 * of the span its x-causation-span-id names, else the latest event before it of its own span);
 * then a depth
 * first walk from the roots, and from the earliest event not reached of each cycle.
 * Work and memory are bounded by the limit (TD_TRACE_MAX_EVENTS) and the depth.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine_int.h"
#include "broker/state.h"

#define READ_GUARD 100000 /* events read per partition and question, at most */

typedef struct tctx {
    td_engine *e;
    td_topic_filter may;
    void *arg;
    size_t limit;
    char (*topics)[TD_TOPIC_NAME_MAX + 1]; /* the trace.index topics, with their partitions */
    int32_t *nparts;
    bool *readable;
    size_t ntopics;
    td_trace_result *res;
    size_t cap;
} tctx;

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* An event's trace fields (docs/tracing.md) into te. */
static void event_info(const td_event *ev, const char *topic, td_trace_event *te)
{
    memset(te, 0, sizeof(*te));
    snprintf(te->topic, sizeof(te->topic), "%s", topic);
    te->partition = ev->partition;
    te->offset = ev->offset;
    te->timestamp_ms = ev->timestamp_ms;
    te->key_null = ev->key == NULL;
    te->key_len = ev->key_len;
    memcpy(te->key, ev->key ? ev->key : "", TD_MIN(ev->key_len, sizeof(te->key)));
    te->header_count = ev->header_count;
    td_trace_ctx c;
    if (td_trace_find(ev->headers, ev->header_count, &c) == 1) {
        te->has_context = true;
        memcpy(te->trace_id, c.trace_id, 16);
        memcpy(te->span_id, c.span_id, 8);
    }
    size_t w = 0;
    bool ps = false, cause = false;
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        if (w + h->key_len + 2 <= sizeof(te->header_names)) {
            memcpy(te->header_names + w, h->key, h->key_len);
            w += h->key_len;
            te->header_names[w++] = '\n';
        }
        if (!h->value)
            continue;
        if (!ps && h->key_len == 19 && !memcmp(h->key, "x-causation-span-id", 19)) {
            ps = true;
            const uint8_t *v = h->value;
            bool ok = h->value_len == 16;
            for (size_t j = 0; ok && j < 16; j++) {
                int x = hexval(v[j]);
                ok = x >= 0;
                te->parent_span[j / 2] = (uint8_t)(j % 2 ? te->parent_span[j / 2] << 4 | x : x);
            }
            te->has_parent_span = ok;
        } else if (!cause && h->key_len == 14 && !memcmp(h->key, "x-causation-id", 14)) {
            cause = true;
            if (h->value_len < sizeof(te->cause)) {
                memcpy(te->cause, h->value, h->value_len);
                te->cause[h->value_len] = 0;
            }
        }
    }
    te->header_names[w] = 0;
}

/* Whether te is an answer to (kind, id, n): the index compares digests. */
static bool matches(const td_trace_event *te, int kind, const void *id, size_t n)
{
    switch (kind) {
    case TD_TRACE_BY_TRACE:
        return te->has_context && !memcmp(te->trace_id, id, 16);
    case TD_TRACE_BY_PARENT:
        return te->has_parent_span && !memcmp(te->parent_span, id, 8);
    default:
        return strlen(te->cause) == n && !memcmp(te->cause, id, n);
    }
}

static bool same_event(const td_trace_event *a, const char *topic, int32_t p, int64_t off)
{
    return a->offset == off && a->partition == p && !strcmp(a->topic, topic);
}

static bool have(const td_trace_result *r, const char *topic, int32_t p, int64_t off)
{
    for (size_t i = 0; i < r->n; i++)
        if (same_event(&r->events[i], topic, p, off))
            return true;
    return false;
}

/* Adds te (not already there) to the answer, or counts it as hidden or past the limit. */
static int add(tctx *c, const td_trace_event *te, bool readable)
{
    td_trace_result *r = c->res;
    if (!readable) {
        r->hidden++;
        return 0;
    }
    if (have(r, te->topic, te->partition, te->offset))
        return 0;
    if (r->n >= c->limit) {
        r->truncated = true;
        return 0;
    }
    if (td_grow(&r->events, &c->cap, r->n, sizeof(*r->events), 64) != 0)
        return -ENOMEM;
    r->events[r->n++] = *te;
    return 0;
}

/* The trace.index topics and their partitions, into c. */
static int list_topics(tctx *c)
{
    td_engine *e = c->e;
    pthread_rwlock_rdlock(&e->lock);
    size_t n = e->ntopics;
    c->topics = calloc(n + 1, sizeof(*c->topics));
    c->nparts = calloc(n + 1, sizeof(*c->nparts));
    c->readable = calloc(n + 1, sizeof(*c->readable));
    int rc = c->topics && c->nparts && c->readable ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        td_topic *t = e->topics[i];
        pthread_mutex_lock(&t->cfg_mu);
        bool on = t->cfg.trace_index;
        pthread_mutex_unlock(&t->cfg_mu);
        if (!on || state_topic_internal(t->name) || __atomic_load_n(&t->deleted, __ATOMIC_RELAXED))
            continue;
        memcpy(c->topics[c->ntopics], t->name, sizeof(t->name));
        c->nparts[c->ntopics++] = t->nparts;
    }
    pthread_rwlock_unlock(&e->lock);
    for (size_t i = 0; rc == 0 && i < c->ntopics; i++)
        c->readable[i] = !c->may || c->may(c->arg, c->topics[i]);
    return rc;
}

/* The events indexed under (kind, id, n) in every listed partition, into the answer; `after`,
 * when not NULL, keeps only the events of its span other than it and not before it in time
 * (kind being its trace: spans are not indexed). */
static int collect(tctx *c, int kind, const void *id, size_t n, const td_trace_event *after)
{
    for (size_t i = 0; i < c->ntopics; i++) {
        for (int32_t p = 0; p < c->nparts[i]; p++) {
            td_iter *it;
            int rc = iter_open_trace(c->e, c->topics[i], p, kind, id, n, &it);
            if (rc == TD_ENOTFOUND || rc == TD_EUNSUPPORTED)
                continue; /* deleted, or its index turned off, meanwhile */
            if (rc)
                return rc;
            td_event ev;
            td_trace_event te;
            for (int guard = 0; guard < READ_GUARD && (rc = td_iter_next(it, &ev)) == 1; guard++) {
                event_info(&ev, c->topics[i], &te);
                if (!matches(&te, kind, id, n))
                    continue; /* a digest collision */
                if (after && (memcmp(te.span_id, after->span_id, 8) ||
                              same_event(after, te.topic, te.partition, te.offset) ||
                              te.timestamp_ms < after->timestamp_ms))
                    continue;
                if ((rc = add(c, &te, c->readable[i])) != 0)
                    break;
                if (c->res->truncated)
                    break;
            }
            td_iter_close(it);
            if (rc == TD_EUNSUPPORTED || rc == TD_ENOTFOUND)
                rc = 0;
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The tree
 */
static int time_cmp(const void *a, const void *b)
{
    const td_trace_event *x = a, *y = b;
    if (x->timestamp_ms != y->timestamp_ms)
        return x->timestamp_ms < y->timestamp_ms ? -1 : 1;
    int c = strcmp(x->topic, y->topic);
    if (c)
        return c;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* The two indexes of the sorted events are arrays of pointers to them: by span (then time),
 * and by position. */
typedef const td_trace_event *evp;

static int span_cmp(const void *a, const void *b)
{
    evp x = *(const evp *)a, y = *(const evp *)b;
    int c = memcmp(x->span_id, y->span_id, 8);
    return c ? c : (x > y) - (x < y);
}

static int pos_cmp(const void *a, const void *b)
{
    evp u = *(const evp *)a, v = *(const evp *)b;
    int c = strcmp(u->topic, v->topic);
    if (c)
        return c;
    if (u->partition != v->partition)
        return u->partition < v->partition ? -1 : 1;
    return (u->offset > v->offset) - (u->offset < v->offset);
}

/* The parent of event i among the events of span sp (by spans, sorted): the latest before i,
 * else (unless earlier_only) the earliest after it; -1 if none. */
static int32_t span_parent(const td_trace_event *ev, const evp *spans, size_t n, const uint8_t *sp,
                           uint32_t i, bool earlier_only)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(spans[mid]->span_id, sp, 8) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    int32_t before = -1, after = -1;
    for (; lo < n && !memcmp(spans[lo]->span_id, sp, 8); lo++) {
        int32_t j = (int32_t)(spans[lo] - ev);
        if (j < (int32_t)i)
            before = j;
        else if (j > (int32_t)i && after < 0)
            after = j;
    }
    return before >= 0 || earlier_only ? before : after;
}

/* The event x-causation-id `cause` names (by position, sorted), or -1. */
static int32_t cause_find(const td_trace_event *ev, const evp *pos, size_t n, const char *cause)
{
    const char *s2 = strrchr(cause, '/');
    if (!s2 || s2 == cause)
        return -1;
    const char *s1 = s2 - 1;
    while (s1 > cause && *s1 != '/')
        s1--;
    if (*s1 != '/' || (size_t)(s1 - cause) > TD_TOPIC_NAME_MAX)
        return -1;
    char *end;
    long part = strtol(s1 + 1, &end, 10);
    if (end != s2 || part < 0 || part > INT32_MAX)
        return -1;
    long long off = strtoll(s2 + 1, &end, 10);
    if (*end || off < 0)
        return -1;
    td_trace_event key;
    memcpy(key.topic, cause, (size_t)(s1 - cause));
    key.topic[s1 - cause] = 0;
    key.partition = (int32_t)part;
    key.offset = off;
    size_t lo = 0, hi = n;
    evp k = &key;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = pos_cmp(&pos[mid], &k);
        if (c == 0)
            return (int32_t)(pos[mid] - ev);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Walks the subtree of root (depth first, children in time order) into out. */
static void walk(const td_trace_event *ev, const int32_t *first, const int32_t *next, uint32_t root,
                 bool *seen, uint32_t *stack, int32_t *newpos, int32_t *depth, td_trace_event *out,
                 size_t *at)
{
    size_t sp = 0;
    stack[sp++] = root;
    seen[root] = true;
    depth[root] = 0;
    while (sp) {
        uint32_t i = stack[--sp];
        newpos[i] = (int32_t)*at;
        out[(*at)++] = ev[i];
        /* children pushed latest first, so that the earliest comes out first */
        size_t base = sp;
        for (int32_t c = first[i]; c >= 0; c = next[c])
            if (!seen[c]) {
                seen[c] = true;
                depth[c] = depth[i] + 1;
                stack[sp++] = (uint32_t)c;
            }
        for (size_t a = base, b = sp; a + 1 < b; a++, b--) {
            uint32_t t = stack[a];
            stack[a] = stack[b - 1];
            stack[b - 1] = t;
        }
    }
}

/* Orders r's events as a tree; root_first: the event at index 0 is a root, and first. */
static int build_tree(td_trace_result *r, bool root_first)
{
    size_t n = r->n;
    if (n == 0)
        return 0;
    td_trace_event *ev = r->events, *out = malloc(n * sizeof(*out));
    evp *spans = malloc(n * sizeof(*spans)), *pos = malloc(n * sizeof(*pos));
    uint32_t *stack = malloc(n * sizeof(*stack));
    int32_t *parent = malloc(n * sizeof(*parent)), *first = malloc(n * sizeof(*first));
    int32_t *next = malloc(n * sizeof(*next)), *last = malloc(n * sizeof(*last));
    int32_t *newpos = malloc(n * sizeof(*newpos)), *depth = malloc(n * sizeof(*depth));
    bool *seen = calloc(n, sizeof(*seen));
    int rc =
        out && spans && pos && stack && parent && first && next && last && newpos && depth && seen
            ? 0
            : -ENOMEM;
    if (rc == 0) {
        td_trace_event start = ev[0];
        qsort(ev, n, sizeof(*ev), time_cmp);
        size_t ns = 0;
        int32_t start_at = -1;
        for (uint32_t i = 0; i < n; i++) {
            if (ev[i].has_context)
                spans[ns++] = &ev[i];
            pos[i] = &ev[i];
            if (root_first && same_event(&ev[i], start.topic, start.partition, start.offset))
                start_at = (int32_t)i;
        }
        qsort(spans, ns, sizeof(*spans), span_cmp);
        qsort(pos, n, sizeof(*pos), pos_cmp);
        for (uint32_t i = 0; i < n; i++) {
            int32_t p = ev[i].cause[0] ? cause_find(ev, pos, n, ev[i].cause) : -1;
            if (p < 0 && ev[i].has_parent_span)
                p = span_parent(ev, spans, ns, ev[i].parent_span, i, false);
            if (p < 0 && ev[i].has_context)
                p = span_parent(ev, spans, ns, ev[i].span_id, i, true);
            parent[i] = (int32_t)i == start_at || p == (int32_t)i ? -1 : p;
            first[i] = last[i] = next[i] = -1;
        }
        for (uint32_t i = 0; i < n; i++) {
            int32_t p = parent[i];
            if (p < 0)
                continue;
            if (last[p] < 0)
                first[p] = (int32_t)i;
            else
                next[last[p]] = (int32_t)i;
            last[p] = (int32_t)i;
        }
        size_t at = 0;
        if (start_at >= 0)
            walk(ev, first, next, (uint32_t)start_at, seen, stack, newpos, depth, out, &at);
        for (int pass = 0; pass < 2; pass++) /* the roots, then what only cycles hold */
            for (uint32_t i = 0; i < n; i++)
                if (!seen[i] && (pass || parent[i] < 0))
                    walk(ev, first, next, i, seen, stack, newpos, depth, out, &at);
        for (uint32_t i = 0; i < n; i++) {
            td_trace_event *o = &out[newpos[i]];
            o->depth = depth[i];
            o->parent = depth[i] == 0 ? -1 : newpos[parent[i]];
        }
        free(r->events);
        r->events = out;
        out = NULL;
    }
    free(out);
    free(spans);
    free(pos);
    free(stack);
    free(parent);
    free(first);
    free(next);
    free(last);
    free(newpos);
    free(depth);
    free(seen);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The API
 */
static void tctx_free(tctx *c)
{
    free(c->topics);
    free(c->nparts);
    free(c->readable);
}

static int finish(tctx *c, int rc, bool root_first)
{
    if (rc == 0)
        rc = build_tree(c->res, root_first);
    tctx_free(c);
    if (rc)
        td_trace_result_free(c->res);
    return rc;
}

int td_trace_get(td_engine *e, const uint8_t trace_id[16], size_t limit, td_topic_filter may_read,
                 void *arg, td_trace_result *out)
{
    td_error_clear();
    if (!e || !trace_id || !out)
        return td_fail(TD_EINVAL, "td_trace_get needs an engine, a trace id and out");
    memset(out, 0, sizeof(*out));
    if (limit < 1 || limit > TD_TRACE_MAX_EVENTS)
        return td_fail(TD_EINVAL, "limit must be from 1 to %d", TD_TRACE_MAX_EVENTS);
    tctx c = {.e = e, .may = may_read, .arg = arg, .limit = limit, .res = out};
    int rc = list_topics(&c);
    if (rc == 0)
        rc = collect(&c, TD_TRACE_BY_TRACE, trace_id, 16, NULL);
    return finish(&c, rc, false);
}

/* The event at topic/partition/offset into te: 1, 0 when there is none. */
static int event_at(td_engine *e, const char *topic, int32_t partition, int64_t offset,
                    td_trace_event *te)
{
    td_iter *it;
    int rc = td_iter_open(e, topic, partition, offset, &it);
    if (rc)
        return rc == TD_ERANGE ? 0 : rc; /* outside the partition: no such event */
    td_event ev;
    rc = td_iter_next(it, &ev);
    if (rc == 1 && ev.offset != offset)
        rc = 0; /* removed by the cleaner */
    if (rc == 1)
        event_info(&ev, topic, te);
    td_iter_close(it);
    return rc == TD_ERANGE ? 0 : rc;
}

int td_trace_caused(td_engine *e, const char *topic, int32_t partition, int64_t offset, int depth,
                    size_t limit, td_topic_filter may_read, void *arg, td_trace_result *out)
{
    td_error_clear();
    if (!e || !topic || !out)
        return td_fail(TD_EINVAL, "td_trace_caused needs an engine, a topic and out");
    memset(out, 0, sizeof(*out));
    if (limit < 1 || limit > TD_TRACE_MAX_EVENTS)
        return td_fail(TD_EINVAL, "limit must be from 1 to %d", TD_TRACE_MAX_EVENTS);
    if (depth < 1 || depth > TD_TRACE_MAX_DEPTH)
        return td_fail(TD_EINVAL, "depth must be from 1 to %d", TD_TRACE_MAX_DEPTH);
    if (may_read && !may_read(arg, topic))
        return td_fail(TD_ENOTFOUND, "topic '%s' does not exist", topic);
    td_trace_event start;
    int rc = event_at(e, topic, partition, offset, &start);
    if (rc == 0)
        return td_fail(TD_ENOTFOUND, "no event at %s/%" PRId32 "/%" PRId64, topic, partition,
                       offset);
    if (rc < 0)
        return rc;
    tctx c = {.e = e, .may = may_read, .arg = arg, .limit = limit, .res = out};
    rc = list_topics(&c);
    if (rc == 0)
        rc = add(&c, &start, true);
    /* Level by level: the events of level d are [from, to) of the answer. */
    for (size_t from = 0, to = out->n, d = 0; rc == 0 && d < (size_t)depth && from < to;
         d++, from = to, to = out->n) {
        for (size_t i = from; rc == 0 && i < to && !out->truncated; i++) {
            td_trace_event a = out->events[i]; /* out->events moves as it grows */
            char cause[sizeof(a.cause) + 24];
            int m = snprintf(cause, sizeof(cause), "%s/%" PRId32 "/%" PRId64, a.topic, a.partition,
                             a.offset);
            rc = collect(&c, TD_TRACE_BY_CAUSE, cause, (size_t)m, NULL);
            if (rc == 0 && a.has_context)
                rc = collect(&c, TD_TRACE_BY_PARENT, a.span_id, 8, NULL);
            if (rc == 0 && a.has_context)
                rc = collect(&c, TD_TRACE_BY_TRACE, a.trace_id, 16, &a);
        }
    }
    return finish(&c, rc, true);
}

void td_trace_result_free(td_trace_result *r)
{
    if (!r)
        return;
    free(r->events);
    memset(r, 0, sizeof(*r));
}
