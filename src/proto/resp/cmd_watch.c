/*
 * cmd_watch.c: WATCH and UNWATCH, Redis's optimistic locks for MULTI/EXEC (docs/redis.md
 * "Transactions").
 *
 * Redis marks a watched key dirty when a command "signals" it modified: for streams XADD, an
 * XTRIM or XDEL that removed entries, XGROUP CREATE's MKSTREAM, DEL/UNLINK and FLUSHALL (not
 * XSETID, XACK or the group commands, in 7.0). Here other protocols write the same streams, and
 * no command runs a hook per watcher, so WATCH takes a snapshot of what those commands change
 * and EXEC compares it with the stream's state then: the topic's id (a deletion, or a new topic
 * under the same key, changes it; ids are never reused), the partition's high watermark (every
 * append, from any protocol), its log start (XTRIM, retention, DeleteRecords) and how many
 * offsets XDEL removed from the log start on (each XDEL that removes an entry adds one; the
 * largest deleted ID is not compared, since XSETID's MAXDELETEDID sets it and XSETID does not
 * touch watched keys in 7.0). EXEC compares under the transactions' write
 * lock, before its first command runs, so no Redis command slips in between; a Kafka or HTTP
 * append that lands after the check runs after the transaction, as it would on Redis.
 *
 * One difference: a key missing at WATCH and missing again at EXEC is unchanged here even if
 * it was created and deleted in between (Redis would abort). Cost: one topic lookup per key at
 * WATCH and at EXEC; the watched keys of a connection are bounded (RESP_WATCH_MAX).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/xgroup.h"
#include "proto/resp/resp_int.h"

/* Keys one connection may watch at once: Redis has no limit, but each costs memory here. */
#define RESP_WATCH_MAX 65536

typedef struct watch_state {
    int64_t topic_id; /* 0: no such stream; -1: the key names no stream (an error) */
    int32_t pi;
    int64_t hw, log_start;
    size_t ndeleted;
} watch_state;

struct resp_watched {
    td_slice key; /* owned copy */
    watch_state st;
};

/* The state of key's stream now, as WATCH and EXEC compare it. */
static watch_state watch_snapshot(rconn *rc, td_slice key)
{
    watch_state st;
    memset(&st, 0, sizeof(st));
    td_buf scratch;
    td_buf_init(&scratch);
    resp_w w = {&scratch, 2, false};
    sref s;
    int o = resp_stream_open(rc, &w, key, false, &s);
    td_buf_free(&scratch);
    if (o < 0) {
        td_error_clear();
        st.topic_id = -1;
        return st;
    }
    if (o == 0)
        return st;
    st.topic_id = broker_topic_id(s.ref);
    st.pi = s.pi;
    st.hw = broker_part_high_watermark(s.p);
    st.log_start = broker_part_log_start(s.p);
    xstream xs = resp_xstream(&s);
    int64_t *offs = NULL;
    if (xstream_deleted(rc->s->e, &xs, st.log_start, INT64_MAX, &offs, &st.ndeleted, NULL) != 0) {
        td_error_clear();
        st.ndeleted = SIZE_MAX; /* unknown: EXEC sees a change unless it fails the same way */
    }
    free(offs);
    broker_topic_release(s.ref);
    return st;
}

static bool state_eq(const watch_state *a, const watch_state *b)
{
    return a->topic_id == b->topic_id && a->pi == b->pi && a->hw == b->hw &&
           a->log_start == b->log_start && a->ndeleted == b->ndeleted;
}

void resp_unwatch_all(rconn *rc)
{
    for (size_t i = 0; i < rc->nwatched; i++)
        free((void *)rc->watched[i].key.p);
    free(rc->watched);
    rc->watched = NULL;
    rc->nwatched = rc->watched_cap = 0;
}

bool resp_watched_unchanged(rconn *rc)
{
    for (size_t i = 0; i < rc->nwatched; i++) {
        watch_state now = watch_snapshot(rc, rc->watched[i].key);
        if (!state_eq(&now, &rc->watched[i].st))
            return false;
    }
    return true;
}

static bool watching(const rconn *rc, td_slice key)
{
    for (size_t i = 0; i < rc->nwatched; i++)
        if (rc->watched[i].key.n == key.n && memcmp(rc->watched[i].key.p, key.p, key.n) == 0)
            return true;
    return false;
}

/* WATCH key [key ...] */
void resp_cmd_watch(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    if (rc->in_multi) {
        resp_w_error(w, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        if (watching(rc, argv[i]))
            continue; /* the first WATCH's snapshot stands, as Redis keeps the first */
        if (rc->nwatched == RESP_WATCH_MAX) {
            resp_w_errorf(w, "ERR too many watched keys on this connection (at most %d)",
                          RESP_WATCH_MAX);
            return;
        }
        if (td_grow(&rc->watched, &rc->watched_cap, rc->nwatched, sizeof(*rc->watched), 8) != 0) {
            resp_w_error(w, "ERR out of memory");
            return;
        }
        char *copy = malloc(argv[i].n ? argv[i].n : 1);
        if (!copy) {
            resp_w_error(w, "ERR out of memory");
            return;
        }
        memcpy(copy, argv[i].p, argv[i].n);
        struct resp_watched *k = &rc->watched[rc->nwatched++];
        k->key = td_slice_make(copy, argv[i].n);
        k->st = watch_snapshot(rc, argv[i]);
    }
    resp_w_simple(w, "OK");
}

/* UNWATCH */
void resp_cmd_unwatch(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    resp_unwatch_all(rc);
    resp_w_simple(w, "OK");
}
