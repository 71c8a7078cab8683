/*
 * group_int.h: the coordinator's structures, shared by group.c (the state machine),
 * group_meta.c (the GroupMetadata records of __consumer_offsets that keep membership across
 * restarts) and group_offsets.c (the checks of offset commits and the expiry of offsets).
 * Nothing outside these three files includes it. Every field is guarded by td_coord.mu.
 */
#ifndef TD_BROKER_GROUP_INT_H
#define TD_BROKER_GROUP_INT_H

#include <pthread.h>

#include "broker/group.h"

#define NEW_MEMBER_JOIN_TIMEOUT_MS 300000 /* Kafka's new member join timeout */

typedef struct proto_entry {
    char *name;
    void *meta;
    size_t len;
} proto_entry;

typedef struct member {
    char *id;
    char *instance_id;
    char *client_id;
    char *client_host;
    int32_t session_ms;
    int32_t rebalance_ms;
    proto_entry *protos;
    size_t nprotos;
    void *assignment;
    size_t assignment_len;
    int64_t deadline; /* monotonic ms: dropped after this unless waiting in join or sync */
    coord_join_cb join_cb;
    void *join_arg;
    coord_sync_cb sync_cb;
    void *sync_arg;
    bool is_new; /* joined in the current rebalance, not yet part of a generation */
    bool synced; /* sent SyncGroup in the current generation */
} member;

typedef struct pending_member {
    char *id;
    int64_t deadline;
} pending_member;

typedef struct group {
    char *name;
    coord_state state;
    int32_t generation;
    char *protocol_type; /* NULL until a member joins */
    char *protocol;      /* chosen at the last completed join; NULL if none */
    char *leader;        /* a copy of the leader's member id; NULL if none */
    member **m;
    size_t nm, cap_m;
    pending_member *pend;
    size_t np, cap_p;
    int64_t deadline;      /* Preparing: the rebalance timeout; Completing: the sync timeout */
    int64_t initial_until; /* Preparing from Empty: the end of the initial delay (0: none) */
    int64_t initial_limit; /* ... which newcomers extend up to here */
    int64_t empty_since;   /* wall ms */
    /* The record of the last completed rebalance while it is being made durable (and after,
     * until the next one): SyncGroup answers wait for it (group_meta.c). NULL: none. */
    struct gmeta_pending *pending;
} group;

struct td_coord {
    td_engine *e;
    coord_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running;
    bool stopping;
    group **g; /* sorted by name */
    size_t ng, cap_g;
    int64_t next_expiry; /* monotonic ms */
};

/* group.c: the group named, created Empty when missing (NULL: out of memory). */
group *coord_group_get(td_coord *c, const char *name);
void coord_member_free(member *m);
/* group.c, with c->mu held (but coord_group_name_ok): whether a group name has 1 to
 * TD_GROUP_NAME_MAX bytes; the group named (NULL: none); taking g out of the coordinator and
 * freeing it; the member of g with that id (NULL: none); whether another member of g holds the
 * static instance id that the caller claims. */
bool coord_group_name_ok(const char *name);
group *coord_group_find(td_coord *c, const char *name);
void coord_group_remove(td_coord *c, group *g);
member *coord_member_find(group *g, const char *id);
bool coord_fenced(group *g, const char *member_id, const char *instance_id);

/* group_offsets.c: expires the committed offsets of groups that have been empty for
 * offsets.retention.minutes and forgets those groups (the coordinator's thread, without c->mu). */
void coord_expire_offsets(td_coord *c);

/*
 * group_meta.c (all called with c->mu held):
 * gmeta_store writes the group's GroupMetadata record as it is now (its generation, protocol,
 * leader and members with their assignments). With sync answers (n > 0: the leader's SyncGroup
 * completed a rebalance), they go out once the record is durable, each with COORD_STORAGE if
 * the write fails, and so do those of followers that sync meanwhile (gmeta_sync_answer).
 * Returns 0 or the error (the answers are then given at once, with COORD_STORAGE).
 */
typedef struct gmeta_answer {
    coord_sync_cb cb;
    void *arg;
    coord_sync_res *res; /* NULL: out of memory; the callback answers with a generic error */
} gmeta_answer;
int gmeta_store(td_coord *c, group *g, gmeta_answer *answers, size_t n);
/* Answers a SyncGroup of the Stable group g: at once if its record is durable, else when it
 * is. */
void gmeta_sync_answer(group *g, coord_sync_cb cb, void *arg, coord_sync_res *res);
/* Drops the group's reference to its pending record (group_free). */
void gmeta_release(struct gmeta_pending *p);
/* Appends the tombstone of a group that is gone; *end for gmeta_wait (without c->mu). */
int gmeta_delete(td_coord *c, const char *name, int64_t *end);
int gmeta_wait(td_coord *c, const char *name, int64_t end);
/* Rebuilds the groups that the replay of __consumer_offsets found (coord_create, before the
 * coordinator's thread starts): Stable groups with their members, whose sessions start now, and
 * Empty groups with their generation. */
int gmeta_restore(td_coord *c);

#endif /* TD_BROKER_GROUP_INT_H */
