/*
 * xnodes.h: a model of how Redis 7 packs a stream into nodes (xnodes.c), so that trimming with
 * `~` and LIMIT, and XINFO STREAM's radix-tree-keys and radix-tree-nodes, give what Redis gives
 * for the same commands (docs/redis.md#the-node-model).
 */
#ifndef TD_PROTO_RESP_XNODES_H
#define TD_PROTO_RESP_XNODES_H

#include "proto/resp/resp_int.h"

/* The defaults and bounds of Redis's stream-node-max-entries and stream-node-max-bytes. */
#define XN_DEFAULT_MAX_ENTRIES 100
#define XN_DEFAULT_MAX_BYTES 4096
/* Redis's STREAM_LISTPACK_MAX_SIZE: the node size used when stream-node-max-bytes is 0 or
 * above it. */
#define XN_LISTPACK_MAX_SIZE (INT64_C(1) << 30)

/* ---------------------------------------------------------------------------------------------
 * The pure model (no engine): unit-tested in tests/unit/test_xnodes.c.
 */

/* The encoded size in a listpack of an integer element, and of a string element (which Redis
 * stores as an integer when it is one written canonically), each with its back length. */
size_t xn_lp_int_size(int64_t v);
size_t xn_lp_str_size(const uint8_t *p, size_t n);

/* One node: a listpack of entries at offsets [start, end) of the partition (those in it not in
 * the node were removed by XDEL with the node that held them). */
typedef struct xn_node {
    int64_t start, end;
    td_sid master;    /* the first entry's ID: the node's key in the rax */
    td_sid last;      /* the last entry's ID, deleted or not */
    int64_t live;     /* the master entry's count */
    int64_t deleted;  /* the master entry's deleted count (marked, still in the listpack) */
    int64_t body;     /* the listpack's bytes but for the count and deleted elements */
    uint64_t mfields; /* a hash of the master entry's field names (SAMEFIELDS) */
    int64_t nfields;  /* how many master fields */
} xn_node;

/* The rightmost path of the rax (depths of its compressed-trie nodes), for adding keys at the
 * end in O(16). */
typedef struct xn_rax {
    int64_t nodes;   /* Redis's rax->numnodes */
    int depth[17];   /* the compact nodes on the path to the last key, root first */
    bool branch[17]; /* whether each has two children or more */
    int ndepth;
    uint8_t last[16]; /* the last key */
    bool any;
} xn_rax;

typedef struct xn_model {
    xn_node *v; /* in offset (and ID) order */
    size_t n, cap;
    int64_t length; /* Redis's s->length: the live entries */
    xn_rax rax;
    bool rax_stale; /* keys were removed: rax is recomputed when asked */
} xn_model;

typedef struct xn_cfg {
    int64_t max_entries; /* 0: no limit */
    int64_t max_bytes;   /* 0: XN_LISTPACK_MAX_SIZE */
} xn_cfg;

void xn_model_init(xn_model *m);
void xn_model_free(xn_model *m);
/* Adds the entry at offset off with ID id and fields fv[0..nfv) (names and values alternating)
 * as streamAppendItem does. -ENOMEM. */
int xn_model_append(xn_model *m, const xn_cfg *c, int64_t off, td_sid id, const td_slice *fv,
                    size_t nfv);
/* XDEL of the live entry at offset off: marks it deleted in its node, and removes the node when
 * it held no other live entry. false if no node holds off. */
bool xn_model_delete(xn_model *m, int64_t off);
/* Removes the first k nodes (trimming). */
void xn_model_drop(xn_model *m, size_t k);
/* Redis's raxSize and rax->numnodes for the nodes' keys. */
int64_t xn_model_rax_nodes(xn_model *m);

/* ---------------------------------------------------------------------------------------------
 * The saved model (xnodes_save.c): the journal of records in the partition's stream-nodes file.
 */
#define XN_REC 96        /* bytes of a record */
#define XN_REC_FIELDS 11 /* 64-bit fields of a record */
#define XN_FORMAT 1      /* the format version in the HEAD record */

/* Each writes one record into b (XN_REC bytes) and returns XN_REC. */
size_t xn_rec_head(uint8_t *b);
size_t xn_rec_node(uint8_t *b, const xn_node *nd);
size_t xn_rec_remove(uint8_t *b, int64_t start);
size_t xn_rec_drop(uint8_t *b, int64_t start);
size_t xn_rec_commit(uint8_t *b, const xn_model *m, int64_t end, int64_t ls);
/* A whole file holding m (HEAD, its nodes, COMMIT): *out malloc'd. -ENOMEM. */
int xn_saved_snapshot(const xn_model *m, int64_t end, int64_t ls, uint8_t **out, size_t *n);

typedef struct xn_saved {
    int64_t end, ls; /* the last COMMIT's: the model holds the entries below end */
    size_t used;     /* the bytes up to that COMMIT */
    size_t recs;     /* the records replayed after HEAD */
    bool clean;      /* nothing after it (else the file is to be rewritten before appending) */
} xn_saved;

/* Replays the file b[0..n) into m (emptied first): the state of its last COMMIT. -EINVAL when
 * there is none to trust (*why says why: missing header, another version, damage before any
 * COMMIT, records that contradict each other), -ENOMEM; m is then empty. */
int xn_saved_load(const uint8_t *b, size_t n, xn_model *m, xn_saved *out, const char **why);

/* ---------------------------------------------------------------------------------------------
 * Streams of a server: a model per partition, caught up lazily with what was appended (through
 * any protocol) when a command needs it.
 */
typedef struct trim_spec {
    int kind; /* 0 none, 1 MAXLEN, 2 MINID */
    bool approx;
    long long maxlen;
    td_sid minid;
    long long limit; /* 0: no limit (set from the default for `~` without LIMIT) */
    bool limit_given;
} trim_spec;

int resp_xnodes_create(resp_server *s);
void resp_xnodes_destroy(resp_server *s);
/* Trims the stream as Redis's streamTrim: whole nodes, or with `=` also the first entries of the
 * first node kept; moves the log start to the first entry kept. *trimmed gets how many entries
 * went (Redis's reply). The entries considered are those below the high watermark, or below
 * upto if that is lower and not negative (an XADD's trim: not the entries appended after it);
 * callers make their appends durable first. Any thread. */
int resp_xnodes_trim(resp_server *sv, const sref *s, const trim_spec *t, int64_t upto,
                     int64_t *trimmed);
/* XDEL: xstream_delete, and the model told which entries went. */
int resp_xnodes_delete(rconn *rc, const sref *s, const td_sid *ids, size_t n, size_t *deleted,
                       uint64_t *seq);
/* XINFO STREAM's radix-tree-keys and radix-tree-nodes. */
int resp_xnodes_radix(rconn *rc, const sref *s, int64_t *keys, int64_t *nodes);
/* The settings: the default limit of `~` (100 nodes' worth), and CONFIG GET/SET of
 * stream-node-max-entries and stream-node-max-bytes (name as CONFIG spells it). */
long long resp_xnodes_default_limit(resp_server *s);
bool resp_xnodes_config_get(resp_server *s, const char *name, char *buf, size_t len);
/* NULL if value is valid for name, else the reason as Redis words it. */
const char *resp_xnodes_config_check(const char *name, td_slice value);
void resp_xnodes_config_set(resp_server *s, const char *name, td_slice value);

#endif /* TD_PROTO_RESP_XNODES_H */
