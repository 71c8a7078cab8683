/*
 * group.h: the group coordinator: Kafka's classic group membership protocol, kept free of any
 * wire format so that every listener can use it (docs/design.md §2, broker/).
 *
 * A group is a set of members that agree, round by round (generations), on one protocol and on
 * an assignment that one of them (the leader) computes. The coordinator does not look inside
 * protocol metadata or assignments: they are opaque bytes chosen by the clients (Kafka's
 * consumers put their subscriptions and partition assignments there, and run range,
 * roundrobin or cooperative-sticky themselves).
 *
 * States, as in Kafka:
 *   Empty               no members (offsets may still be committed)
 *   PreparingRebalance  waiting for every member to (re)join, up to the rebalance timeout
 *   CompletingRebalance the join is done; waiting for the leader's assignment (SyncGroup)
 *   Stable              every member has its assignment; heartbeats keep members alive
 *   Dead                reported for groups that do not exist
 *
 * Threads: every call is thread-safe (one mutex per coordinator). The coordinator owns one
 * thread that fires timers (session expiry, rebalance and initial-delay deadlines, the sync
 * deadline, offset expiry). Committed offsets are records of the internal topic
 * __consumer_offsets (broker/state.h): a commit appends them on the caller's thread and is
 * answered once the engine's group commit has made them durable, so that commits arriving
 * together share one fsync and no event loop waits on one. Join, sync and commit answer through
 * callbacks, which run on whatever thread completes them (the caller's, another caller's, the
 * coordinator's, or the engine's flusher) and must not call back into the coordinator: they
 * should hand the result to their own thread and return.
 */
#ifndef TD_BROKER_GROUP_H
#define TD_BROKER_GROUP_H

#include "broker/broker.h"

typedef struct td_coord td_coord;

typedef struct coord_config {
    int32_t min_session_ms;              /* group.min.session.timeout.ms: 6000 */
    int32_t max_session_ms;              /* group.max.session.timeout.ms: 1800000 */
    int32_t initial_rebalance_delay_ms;  /* group.initial.rebalance.delay.ms: 3000 */
    int32_t max_size;                    /* group.max.size: 1000 members */
    int64_t offsets_retention_ms;        /* offsets.retention.minutes: 7 days */
    int64_t retention_check_ms;          /* offsets.retention.check.interval.ms: 600000 */
} coord_config;

void coord_config_defaults(coord_config *c);

/* Results of coordinator calls; each listener maps them to its protocol's errors. */
typedef enum coord_err {
    COORD_OK = 0,
    COORD_UNKNOWN_MEMBER,        /* the member id is not in the group (or the group is gone) */
    COORD_ILLEGAL_GENERATION,    /* the member's generation is not the group's */
    COORD_REBALANCING,           /* a rebalance is in progress: rejoin */
    COORD_INCONSISTENT_PROTOCOL, /* protocol type or names do not match the group's */
    COORD_FENCED_INSTANCE,       /* another member now holds this group.instance.id */
    COORD_MEMBER_ID_REQUIRED,    /* first join of a new member: rejoin with the id given */
    COORD_INVALID_SESSION_TIMEOUT,
    COORD_INVALID_GROUP_ID,
    COORD_GROUP_FULL,            /* group.max.size members already */
    COORD_NOT_FOUND,             /* no such group */
    COORD_NOT_EMPTY,             /* the group still has members */
    COORD_UNAVAILABLE,           /* the coordinator is shutting down */
    COORD_STORAGE,               /* the metadata store failed; rc carries the detail */
    COORD_NOMEM,
} coord_err;

const char *coord_err_name(coord_err e);

typedef enum coord_state {
    COORD_EMPTY,
    COORD_PREPARING,
    COORD_COMPLETING,
    COORD_STABLE,
    COORD_DEAD,
} coord_state;

/* Kafka's names: "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead". */
const char *coord_state_name(coord_state s);
/* The state named (case-insensitive), or -1. */
int coord_state_parse(const char *name);

int coord_create(td_engine *e, const coord_config *cfg, td_coord **out);
/* Answers every join and sync still waiting with COORD_UNAVAILABLE and refuses new calls;
 * stops the thread. Commits already appended are answered by the engine's flusher. Call
 * before the listeners' loops stop. */
void coord_shutdown(td_coord *c);
void coord_destroy(td_coord *c);

/* ---------------------------------------------------------------------------------------------
 * Membership
 */
typedef struct coord_protocol {
    const char *name;
    const void *meta;
    size_t len;
} coord_protocol;

typedef struct coord_join_req {
    const char *group;
    const char *member_id;   /* "" (or NULL): a new member */
    const char *instance_id; /* NULL: dynamic member; else static membership */
    const char *protocol_type;
    const char *client_id;
    const char *client_host;
    int32_t session_ms;
    int32_t rebalance_ms;    /* <= 0: session_ms */
    size_t nprotocols;
    const coord_protocol *protocols;
    bool require_known_member; /* a new dynamic member first gets COORD_MEMBER_ID_REQUIRED */
    bool can_skip_assignment;  /* a static leader rejoining a stable group keeps its plan */
} coord_join_req;

typedef struct coord_member_desc {
    const char *member_id;
    const char *instance_id; /* NULL if dynamic */
    const char *client_id;
    const char *client_host;
    const void *meta; /* join: the chosen protocol's metadata; describe: the same (Stable) */
    size_t meta_len;
    const void *assignment; /* describe only (Stable) */
    size_t assignment_len;
    const void *sub_meta; /* describe only, in every state: the first protocol's metadata */
    size_t sub_len;
} coord_member_desc;

typedef struct coord_join_res {
    coord_err err;
    int32_t generation;
    const char *protocol_type; /* NULL when err */
    const char *protocol_name;
    const char *leader;
    const char *member_id;  /* the member's id (also with COORD_MEMBER_ID_REQUIRED) */
    bool skip_assignment;   /* the leader keeps the current assignment */
    size_t nmembers;        /* the leader's copy: every member and its metadata */
    coord_member_desc *members;
    td_arena arena;         /* everything above lives here */
} coord_join_res;

/* The callback owns res: free it with coord_join_res_free. */
typedef void (*coord_join_cb)(void *arg, coord_join_res *res);
void coord_join(td_coord *c, const coord_join_req *q, coord_join_cb cb, void *arg);

typedef struct coord_assignment {
    const char *member_id;
    const void *data;
    size_t len;
} coord_assignment;

typedef struct coord_sync_req {
    const char *group;
    const char *member_id;
    const char *instance_id;
    const char *protocol_type; /* NULL: not checked */
    const char *protocol_name; /* NULL: not checked */
    int32_t generation;
    size_t nassignments; /* the leader's plan (ignored from other members) */
    const coord_assignment *assignments;
} coord_sync_req;

typedef struct coord_sync_res {
    coord_err err;
    const char *protocol_type;
    const char *protocol_name;
    const void *assignment;
    size_t len;
    td_arena arena;
} coord_sync_res;

/* The callback owns res: free it with coord_sync_res_free. */
typedef void (*coord_sync_cb)(void *arg, coord_sync_res *res);
void coord_sync(td_coord *c, const coord_sync_req *q, coord_sync_cb cb, void *arg);

/* Keeps a member alive. COORD_REBALANCING tells it to rejoin. */
coord_err coord_heartbeat(td_coord *c, const char *group, const char *member_id,
                          const char *instance_id, int32_t generation);

typedef struct coord_leaver {
    const char *member_id;   /* "" with an instance id: whoever holds that instance id */
    const char *instance_id; /* NULL: dynamic */
    coord_err err;           /* out */
} coord_leaver;
/* Removes members; the group rebalances without them. Returns COORD_UNKNOWN_MEMBER if the
 * group does not exist, else COORD_OK with each leaver's own result. */
coord_err coord_leave(td_coord *c, const char *group, coord_leaver *v, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Committed offsets
 */
typedef void (*coord_commit_cb)(void *arg, coord_err err, int rc);
/*
 * Commits offsets for a member of the group at `generation` (-1 with member "" for a client that
 * manages partitions itself, allowed while the group has no members). The offsets are copied.
 * cb runs once they are durable (or refused): COORD_OK, a membership error, or COORD_STORAGE
 * with the td_ error in rc (TD_ENOTFOUND if a topic went away meanwhile).
 */
void coord_commit(td_coord *c, const char *group, const char *member_id, const char *instance_id,
                  int32_t generation, const td_offset_commit *offsets, size_t n,
                  coord_commit_cb cb, void *arg);

/*
 * The checks of a transactional offset commit (Kafka's TxnOffsetCommit, KIP-447): a client that
 * names no member, no instance and generation -1 may commit whatever the group's state; else
 * the member must be in the group (COORD_UNKNOWN_MEMBER), a generation >= 0 must be the
 * group's (COORD_ILLEGAL_GENERATION), and an instance id must be the member's
 * (COORD_FENCED_INSTANCE). So a zombie consumer of an older generation cannot commit.
 */
coord_err coord_check_txn_member(td_coord *c, const char *group, const char *member_id,
                                 const char *instance_id, int32_t generation);

/* ---------------------------------------------------------------------------------------------
 * Administration
 */
typedef struct coord_group_summary {
    char name[TD_GROUP_NAME_MAX + 1];
    char protocol_type[64]; /* "" for groups that only store offsets */
    coord_state state;
    size_t members;
} coord_group_summary;

/* Every group: those with members or known since start, and those with committed offsets
 * (Empty). Sorted by name; *out malloc'd. */
int coord_list(td_coord *c, coord_group_summary **out, size_t *n);

typedef struct coord_group_desc {
    coord_state state; /* COORD_DEAD if the group does not exist */
    int32_t generation;
    const char *protocol_type; /* "" if none */
    const char *protocol_name; /* "" unless Stable */
    const char *leader;        /* "" if none */
    size_t nmembers;
    coord_member_desc *members; /* metadata and assignment only when Stable */
    td_arena arena;
} coord_group_desc;

/* Fills *out (free with coord_desc_free). Returns COORD_OK or COORD_NOMEM. */
coord_err coord_describe(td_coord *c, const char *group, coord_group_desc *out);
void coord_desc_free(coord_group_desc *d);

/* Deletes an empty group and its offsets: COORD_NOT_EMPTY, COORD_NOT_FOUND, COORD_STORAGE. */
coord_err coord_delete(td_coord *c, const char *group, int *rc);

void coord_join_res_free(coord_join_res *r);
void coord_sync_res_free(coord_sync_res *r);

/*
 * The partitions a member was assigned in Kafka's consumer protocol (ConsumerProtocolAssignment,
 * the SyncGroup assignment of protocol type "consumer"; never flexible, versions 0-3 share the
 * start): version int16 (>= 0), assigned_partitions [topic string, partitions [int32]], user
 * data (not read). Sets *topics to the assigned topics with their partitions (in the arena) and
 * returns how many, or -1 if the bytes are not such an assignment (truncated, a negative or
 * null count or string, a topic name holding a NUL byte). The coordinator keeps assignments as
 * opaque bytes; group descriptions (HTTP's) decode Kafka consumers' with this (group_assign.c).
 */
typedef struct coord_assigned_topic {
    const char *topic;
    int32_t npartitions;
    const int32_t *partitions;
} coord_assigned_topic;
int coord_assignment_topics(const uint8_t *p, size_t n, td_arena *a,
                            coord_assigned_topic **topics);

#endif /* TD_BROKER_GROUP_H */
