/*
 * group_offsets.c: the group coordinator's side of committed offsets (group.h, "Committed
 * offsets"): the membership checks of a commit (OffsetCommit, TxnOffsetCommit) against the
 * group as group.c keeps it, and the periodic expiry of the offsets of groups that have been
 * empty for offsets.retention.minutes (which also forgets those groups, generation and all).
 * The offsets themselves are records of __consumer_offsets that group_state.c writes, replays
 * and answers reads from; this file decides whether a commit is taken and when offsets are old
 * enough to go.
 *
 * The checks run under the coordinator's mutex (td_coord.mu, group_int.h); a commit's append
 * and the expiry's reads and removals of stored offsets run without it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker/group_int.h"

/* ---------------------------------------------------------------------------------------------
 * Commits: checked here, appended to __consumer_offsets by the caller's thread (group_state.c),
 * answered once durable by whichever thread completes the group commit
 */
typedef struct commit_wait {
    coord_commit_cb cb;
    void *arg;
    char group[TD_GROUP_NAME_MAX + 1];
    size_t n;
} commit_wait;

static void commit_durable(void *arg, int rc)
{
    commit_wait *w = arg;
    if (rc)
        TD_WARN("group", "group %s: commit of %zu offsets failed: %s", w->group, w->n,
                td_strerror(rc));
    w->cb(w->arg, rc ? COORD_STORAGE : COORD_OK, rc);
    free(w);
}

coord_err coord_check_txn_member(td_coord *c, const char *group_name, const char *member_id,
                                 const char *instance_id, int32_t generation)
{
    const char *mid = member_id ? member_id : "";
    if (!mid[0] && !instance_id && generation < 0)
        return COORD_OK;
    if (!coord_group_name_ok(group_name))
        return COORD_INVALID_GROUP_ID;
    coord_err err = COORD_OK;
    pthread_mutex_lock(&c->mu);
    group *g = coord_group_find(c, group_name);
    if (c->stopping)
        err = COORD_UNAVAILABLE;
    else if (g && coord_fenced(g, mid, instance_id))
        err = COORD_FENCED_INSTANCE;
    else if (mid[0] && (!g || !coord_member_find(g, mid)))
        err = COORD_UNKNOWN_MEMBER;
    else if (generation >= 0 && (!g || generation != g->generation))
        err = COORD_ILLEGAL_GENERATION;
    pthread_mutex_unlock(&c->mu);
    return err;
}

void coord_commit(td_coord *c, const char *group_name, const char *member_id,
                  const char *instance_id, int32_t generation, const td_offset_commit *offsets,
                  size_t n, coord_commit_cb cb, void *arg)
{
    if (!coord_group_name_ok(group_name)) {
        cb(arg, COORD_INVALID_GROUP_ID, 0);
        return;
    }
    const char *mid = member_id ? member_id : "";
    coord_err err = COORD_OK;
    pthread_mutex_lock(&c->mu);
    group *g = coord_group_find(c, group_name);
    member *m = g ? coord_member_find(g, mid) : NULL;
    if (c->stopping)
        err = COORD_UNAVAILABLE;
    else if (!g)
        err = generation < 0 ? COORD_OK : COORD_ILLEGAL_GENERATION;
    else if (coord_fenced(g, mid, instance_id))
        err = COORD_FENCED_INSTANCE;
    else if (generation < 0 && g->state == COORD_EMPTY)
        err = COORD_OK; /* the group only stores offsets */
    else if (g->state == COORD_COMPLETING)
        err = COORD_REBALANCING;
    else if (!m)
        err = COORD_UNKNOWN_MEMBER;
    else if (generation != g->generation)
        err = COORD_ILLEGAL_GENERATION;
    else
        m->deadline = td_mono_ms() + m->session_ms; /* Stable, or Preparing (commit on revoke) */
    pthread_mutex_unlock(&c->mu);
    if (err) {
        cb(arg, err, 0);
        return;
    }
    commit_wait *w = malloc(sizeof(*w));
    if (!w) {
        cb(arg, COORD_NOMEM, 0);
        return;
    }
    *w = (commit_wait){.cb = cb, .arg = arg, .n = n};
    snprintf(w->group, sizeof(w->group), "%s", group_name);
    int rc =
        broker_group_commit_async(c->e, group_name, offsets, n, td_wall_ms(), commit_durable, w);
    if (rc) {
        free(w);
        TD_WARN("group", "group %s: commit of %zu offsets refused: %s", group_name, n,
                td_strerror(rc));
        cb(arg, COORD_STORAGE, rc);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Expiry (called without the lock by group.c's coord_thread, every
 * offsets.retention.check.interval.ms)
 */
/* Offsets expire (offsets.retention.minutes) only in groups without members that have been
 * empty that long, each offset by its own commit time (KIP-211). */
void coord_expire_offsets(td_coord *c)
{
    int64_t wall = td_wall_ms();
    int64_t before = wall - c->cfg.offsets_retention_ms;
    td_group_info *all = NULL;
    size_t n = 0;
    if (td_group_list(c->e, &all, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&c->mu);
        group *g = coord_group_find(c, all[i].name);
        bool active = g && (g->nm > 0 || g->np > 0 || g->empty_since > before);
        pthread_mutex_unlock(&c->mu);
        if (active)
            continue;
        size_t removed = 0;
        if (broker_group_expire(c->e, all[i].name, before, &removed) == 0 && removed)
            TD_INFO("group", "group %s: %zu committed offset%s expired", all[i].name, removed,
                    removed == 1 ? "" : "s");
    }
    free(all);
    /* Groups empty for the whole retention are forgotten (their generation with them). */
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->ng;) {
        group *g = c->g[i];
        int64_t end;
        if (g->state == COORD_EMPTY && g->nm == 0 && g->np == 0 && g->empty_since <= before) {
            gmeta_delete(c, g->name, &end);
            coord_group_remove(c, g);
        } else
            i++;
    }
    pthread_mutex_unlock(&c->mu);
}
