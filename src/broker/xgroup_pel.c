/*
 * xgroup_pel.c: the in-memory structures of Redis consumer groups (xgroup_int.h): streams,
 * groups and consumers by name, the pending entries lists, and the offsets XDEL removed.
 *
 * Memory: per stream (topic id, partition) its groups sorted by name; per group its consumers
 * sorted by name and the PEL, an array sorted by ID in which an acknowledged entry becomes a
 * hole (consumer NULL) until holes outnumber entries and the array is compacted: deliveries
 * append at the end and acknowledgements mostly remove from the front, so neither moves memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delivery.h"
#include "broker/xgroup_int.h"

/* ---------------------------------------------------------------------------------------------
 * Names, lookups
 */
static int name_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, TD_MIN(an, bn));
    return c ? c : (an > bn) - (an < bn);
}

/* The index of key in a sorted array of groups or consumers (*found), or where it goes. */
size_t xg_name_search(void *const *arr, size_t n, td_slice key, bool *found)
{
    size_t lo = 0, hi = n;
    *found = false;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const xname *nm = arr[mid];
        int c = name_cmp(nm->name, nm->len, key.p, key.n);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool xg_name_set(xname *nm, td_slice v)
{
    if (!(nm->name = malloc(v.n ? v.n : 1)))
        return false;
    memcpy(nm->name, v.p, v.n);
    nm->len = v.n;
    return true;
}

xstr *xg_stream_find(td_xgroups *x, int64_t topic_id, int32_t partition)
{
    for (size_t i = 0; i < x->ns; i++)
        if (x->s[i].topic_id == topic_id && x->s[i].partition == partition)
            return &x->s[i];
    return NULL;
}

xstr *xg_stream_get(td_xgroups *x, int64_t topic_id, int32_t partition)
{
    xstr *st = xg_stream_find(x, topic_id, partition);
    if (st)
        return st;
    if (td_grow(&x->s, &x->scap, x->ns, sizeof(*x->s), 8) != 0)
        return NULL;
    st = &x->s[x->ns++];
    *st = (xstr){.topic_id = topic_id, .partition = partition};
    return st;
}

xgrp *xg_group_find(td_xgroups *x, const xstream *s, td_slice name, xstr **stp)
{
    xstr *st = xg_stream_find(x, s->topic_id, s->partition);
    if (stp)
        *stp = st;
    if (!st)
        return NULL;
    bool found;
    size_t i = xg_name_search((void *const *)st->g, st->n, name, &found);
    return found ? st->g[i] : NULL;
}

void xg_group_free(xgrp *g)
{
    for (size_t i = 0; i < g->ncons; i++) {
        free(g->cons[i]->nm.name);
        free(g->cons[i]);
    }
    free(g->cons);
    free(g->pel);
    free(g->nm.name);
    free(g->pol);
    free(g);
}

xcons *xg_cons_find(xgrp *g, td_slice name)
{
    bool found;
    size_t i = xg_name_search((void *const *)g->cons, g->ncons, name, &found);
    return found ? g->cons[i] : NULL;
}

xcons *xg_cons_add(xgrp *g, td_slice name, int64_t now_ms)
{
    bool found;
    size_t i = xg_name_search((void *const *)g->cons, g->ncons, name, &found);
    if (found)
        return g->cons[i];
    if (td_grow(&g->cons, &g->conscap, g->ncons, sizeof(*g->cons), 4) != 0)
        return NULL;
    xcons *c = calloc(1, sizeof(*c));
    if (!c || !xg_name_set(&c->nm, name)) {
        free(c);
        return NULL;
    }
    c->seen_ms = now_ms;
    memmove(g->cons + i + 1, g->cons + i, (g->ncons - i) * sizeof(*g->cons));
    g->cons[i] = c;
    g->ncons++;
    return c;
}

/* ---------------------------------------------------------------------------------------------
 * The PEL
 */
/* The first slot (hole or not) whose ID is >= id. */
size_t xg_pel_lower(const xgrp *g, td_sid id)
{
    size_t lo = 0, hi = g->npel;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (td_sid_cmp(g->pel[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

xpe *xg_pel_get(xgrp *g, td_sid id)
{
    size_t i = xg_pel_lower(g, id);
    if (i < g->npel && g->pel[i].c && td_sid_cmp(g->pel[i].id, id) == 0)
        return &g->pel[i];
    return NULL;
}

void xg_pel_assign(xpe *pe, xcons *c)
{
    if (pe->c == c)
        return;
    if (pe->c)
        pe->c->pending--;
    pe->c = c;
    c->pending++;
}

/* The entry of id, added (for consumer c, count 0) if it is not pending; NULL without memory.
 * Slots may move. */
xpe *xg_pel_add(xgrp *g, td_sid id, xcons *c, int64_t now_ms)
{
    size_t i = g->npel;
    if (g->npel && td_sid_cmp(g->pel[g->npel - 1].id, id) >= 0)
        i = xg_pel_lower(g, id);
    if (i < g->npel && td_sid_cmp(g->pel[i].id, id) == 0) {
        xpe *pe = &g->pel[i];
        if (!pe->c) {
            g->live++;
            delivery_pending_init(&pe->d, now_ms);
        }
        xg_pel_assign(pe, c);
        pe->d.delivered = now_ms;
        return pe;
    }
    if (td_grow(&g->pel, &g->pelcap, g->npel, sizeof(*g->pel), 16) != 0)
        return NULL;
    memmove(g->pel + i + 1, g->pel + i, (g->npel - i) * sizeof(*g->pel));
    g->npel++;
    g->live++;
    g->pel[i] = (xpe){.id = id, .c = c};
    delivery_pending_init(&g->pel[i].d, now_ms);
    c->pending++;
    return &g->pel[i];
}

void xg_pel_remove(xgrp *g, xpe *pe)
{
    pe->c->pending--;
    pe->c = NULL;
    g->live--;
}

/* Drops the holes once they outnumber the entries (call when no slot pointer is held). */
void xg_pel_compact(xgrp *g)
{
    size_t holes = g->npel - g->live;
    if (holes < 64 || holes < g->live)
        return;
    size_t k = 0;
    for (size_t i = 0; i < g->npel; i++)
        if (g->pel[i].c)
            g->pel[k++] = g->pel[i];
    g->npel = k;
    if (g->pelcap > 64 && k < g->pelcap / 4) {
        size_t cap = TD_MAX(k * 2, 16);
        xpe *v = realloc(g->pel, cap * sizeof(*v));
        if (v) {
            g->pel = v;
            g->pelcap = cap;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Entries of the stream, and those XDEL removed
 */
size_t xg_del_lower(const xstr *st, int64_t off)
{
    size_t lo = 0, hi = st->ndel;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (st->del[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool xg_del_has(const xstr *st, int64_t off)
{
    if (!st || !st->ndel)
        return false;
    size_t i = xg_del_lower(st, off);
    return i < st->ndel && st->del[i] == off;
}

/* The offset of the entry of that ID, or -1 if the stream does not have it. */
int64_t xg_entry_offset(td_part *p, td_sid id)
{
    int64_t off;
    return part_stream_find(p, id, &off) == 0 ? off : -1;
}

/* Whether the stream has the entry (in the log, not removed by XDEL). */
bool xg_entry_live(const xstr *st, td_part *p, td_sid id)
{
    int64_t off = xg_entry_offset(p, id);
    return off >= 0 && !xg_del_has(st, off);
}

xgrp *xg_group_insert(xstr *st, td_slice name)
{
    bool found;
    size_t i = xg_name_search((void *const *)st->g, st->n, name, &found);
    xgrp *g = NULL;
    if (found || td_grow(&st->g, &st->cap, st->n, sizeof(*st->g), 4) != 0 ||
        !(g = calloc(1, sizeof(*g))) || !xg_name_set(&g->nm, name)) {
        free(g);
        return NULL;
    }
    g->next_due = INT64_MAX;
    g->entries_read = XG_READ_UNKNOWN;
    memmove(st->g + i + 1, st->g + i, (st->n - i) * sizeof(*st->g));
    st->g[i] = g;
    st->n++;
    return g;
}

void xg_group_remove(xstr *st, size_t i)
{
    xgrp *g = st->g[i];
    memmove(st->g + i, st->g + i + 1, (st->n - i - 1) * sizeof(*st->g));
    st->n--;
    xg_group_free(g);
}

size_t xg_cons_remove(xgrp *g, xcons *c)
{
    size_t pending = c->pending;
    for (size_t k = 0; k < g->npel && c->pending; k++)
        if (g->pel[k].c == c)
            xg_pel_remove(g, &g->pel[k]);
    bool found;
    size_t i = xg_name_search((void *const *)g->cons, g->ncons,
                              td_slice_make(c->nm.name, c->nm.len), &found);
    if (found) {
        memmove(g->cons + i, g->cons + i + 1, (g->ncons - i - 1) * sizeof(*g->cons));
        g->ncons--;
    }
    free(c->nm.name);
    free(c);
    xg_pel_compact(g);
    return pending;
}

void xg_stream_drop(td_xgroups *x, size_t i)
{
    for (size_t k = 0; k < x->s[i].n; k++)
        xg_group_free(x->s[i].g[k]);
    free(x->s[i].g);
    free(x->s[i].del);
    __atomic_sub_fetch(&x->ndel, x->s[i].ndel, __ATOMIC_RELAXED);
    x->s[i] = x->s[--x->ns];
}

/* A row of the catalog: XDEL's removed entries, and the group rows of a data directory from
 * before __xgroup_state (migrated by xstate_load). */
