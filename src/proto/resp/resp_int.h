/*
 * resp_int.h: what the Redis listener's files share (server.c: connections, dispatch,
 * transactions; cmd_server.c: connection, server and keyspace commands).
 */
#ifndef TD_PROTO_RESP_INT_H
#define TD_PROTO_RESP_INT_H

#include <pthread.h>

#include "base/metrics.h"
#include "broker/broker.h"
#include "broker/xgroup.h"
#include "proto/resp/resp_server.h"
#include "proto/resp/stream_id.h"

typedef struct rconn rconn;
typedef struct resp_pubsub resp_pubsub;
typedef struct resp_block resp_block;
typedef struct resp_xbatch resp_xbatch;
typedef struct resp_acl_log resp_acl_log;
typedef struct resp_admin resp_admin;
typedef struct resp_xnodes resp_xnodes;

/* A connection's subscriptions (channels or patterns): copies, binary-safe. */
typedef struct resp_subs {
    td_slice *v; /* each owns its bytes */
    size_t n, cap;
} resp_subs;

struct resp_server {
    td_engine *e;
    resp_server_config cfg;
    pthread_mutex_t cfg_mu; /* cfg.password (CONFIG SET requirepass) */
    int port;
    net_group *group; /* set by resp_server_attach: its connection limit is maxclients */
    int64_t start_ms;
    pthread_mutex_t clients_mu; /* the list of connections, and their names */
    pthread_mutex_t acl_mu;     /* one ACL SETUSER's read-modify-write of a user's ACLs at a time */
    rconn *clients;
    size_t nclients;
    uint64_t next_id;
    /* EXEC runs its commands under the write lock, every other command under the read lock:
     * a transaction's commands are not interleaved with other clients' commands. */
    pthread_rwlock_t exec_lock;
    uint64_t total_connections, total_commands; /* atomic; CONFIG RESETSTAT zeroes them */
    resp_pubsub *pubsub;
    int notify_flags;            /* atomic: notify-keyspace-events (RESP_NOTIFY_*) */
    bool notify_detached;        /* atomic: the change hook is gone; jobs posted are dropped */
    int64_t notify_pending;      /* atomic: notifications of other protocols' changes queued */
    int64_t notify_jobs;         /* atomic: their jobs not yet done (destroy waits for them) */
    td_metric *m_notify_dropped; /* ... dropped because too many were queued */
    /* Per command of resp_commands (in its order), and one more for the unknown ones. */
    td_metric **m_requests, **m_latency;
    size_t ncommands;
    /* Connections blocked in XREAD, woken when partitions advance or group entries fall due
     * (resp_server_attach; NULL before: nothing blocks). */
    net_waitset *blocked;
    /* Atomic: when the last cross-protocol warning was logged (monotonic ms, 0: never), and
     * how many connections were closed for one since without a line in the log. */
    int64_t xproto_logged_ms;
    uint64_t xproto_unlogged;
    /* Authentication and authorization (authz.c, cmd_acl.c). */
    td_metric *m_auth_failed;                  /* tidings_auth_failures_total{redis,password} */
    td_metric *m_denied_acl, *m_denied_unauth; /* tidings_security_denied_total{redis,...} */
    resp_acl_log *acl_log;                     /* ACL LOG: recent failures and refusals */
    /* Command and error statistics, the slow log, latency events, monitors (cmd_admin.c). */
    resp_admin *admin;
    resp_xnodes *xnodes;                       /* streams' node models and settings (xnodes.c) */
};

struct rconn {
    resp_server *s;
    net_conn *c;
    uint64_t id;
    int proto; /* 2 or 3 */
    bool authed;
    /* The connection's principal as CLIENT LIST and ACL LOG show it: the user AUTH or HELLO
     * AUTH established, else the client certificate's name, else "" (default, anonymous);
     * written by the connection's loop (resp_note_user) under s->clients_mu. */
    char user[TD_USER_NAME_MAX + 1];
    bool closing; /* QUIT, a protocol error: close once the replies are written */
    bool in_multi, multi_dirty;
    struct resp_watched *watched; /* WATCH's keys and their states (cmd_watch.c) */
    struct resp_xadd_trims *trims; /* XADD trims waiting to run in order (cmd_stream.c) */
    size_t nwatched, watched_cap;
    td_buf queued; /* MULTI: the queued commands, as RESP arrays, parsed again by EXEC */
    size_t nqueued;
    td_arena arena; /* one command's temporaries */
    td_buf out;     /* replies not yet handed to the connection */
    int64_t created_ms;
    int64_t last_ms;                /* atomic: the last command's time */
    const char *last_cmd;           /* atomic: the last command's name (static) */
    const char *last_sub;           /* atomic: its subcommand's, or NULL */
    char name[128];                 /* under s->clients_mu */
    char lib_name[64], lib_ver[64]; /* under s->clients_mu */
    char addr[64];
    resp_subs subs, psubs; /* Pub/Sub: this loop's only */
    size_t nsub, npsub;    /* atomic copies of subs.n and psubs.n, for CLIENT LIST */
    size_t nssub;          /* ... and of ssubs.n */
    rconn *prev, *next;    /* in s->clients */
    bool in_exec;          /* running EXEC's commands: XREAD does not block */
    /* XREADGROUP: the group whose deliveries resp_read_entries reports as spans
     * (broker_trace_deliver) while it reads for it; empty otherwise. */
    td_slice deliver_group;
    int waits;             /* changes waiting to be durable: replies are held until then */
    int data_waits;        /* ... of them, XADDs' entries (later reads must see them) */
    bool wait_failed;      /* one of them failed: close without answering */
    resp_block *blk;       /* XREAD BLOCK waiting for entries */
    resp_xbatch *xb;       /* XADDs batched into one append (cmd_stream.c) */
    net_waiter wait;       /* ... parked in s->blocked */
    bool throttled;        /* a quota mutes the connection until the timer fires (quota.c) */
    net_timer throttle_timer;
    resp_subs ssubs; /* sharded Pub/Sub (SSUBSCRIBE): this loop's only */
    bool pub_flush_posted; /* a flush of Pub/Sub messages is posted (pubsub.c; this loop's) */
    /* Keyspace notifications of this connection's commands while their replies are held
     * (rc->waits): published when the replies go, so that a subscriber that reads on a
     * notification finds the entry (notify.c). */
    td_buf notes;
    /* CLIENT REPLY: OFF drops every reply until ON; SKIP drops its own and the next one's. */
    bool reply_off, reply_skip, reply_skip_next;
    bool monitor; /* MONITOR: in the server's list of monitors (cmd_admin.c) */
    /* Atomic: CLIENT KILL from another loop closed it; its loop runs none of its commands
     * after that, even before the posted close runs. */
    bool killed;
    char laddr[64]; /* the socket's local address, for CLIENT LIST */
    int fd;         /* the socket's descriptor at accept, for CLIENT LIST (other loops) */
    /* Atomic copies for CLIENT LIST on other loops: the unread input (the running command
     * included), the output not yet sent, the running command's argument bytes, the queued
     * commands' bytes (Redis's multi-mem), the queued count (-1 outside MULTI), RC_SHOWN_*. */
    size_t qbuf, omem, argv_mem, multi_mem;
    int nqueued_shown;
    unsigned shown_flags;
};
enum { RC_SHOWN_MONITOR = 1, RC_SHOWN_BLOCKED = 2, RC_SHOWN_CLOSING = 4, RC_SHOWN_NOEVICT = 8 };

/* One command of the table. */
typedef struct rcmd rcmd;
typedef void (*rcmd_fn)(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
enum {
    RF_WRITE = 1 << 0,
    RF_READONLY = 1 << 1,
    RF_FAST = 1 << 2,
    RF_ADMIN = 1 << 3,
    RF_NOAUTH = 1 << 4,  /* allowed before AUTH */
    RF_NOMULTI = 1 << 5, /* run at once inside MULTI, not queued (EXEC, DISCARD, ...) */
    RF_LOADING = 1 << 6,
    RF_STALE = 1 << 7,
    RF_PUBSUB = 1 << 8,
    RF_NOSCRIPT = 1 << 9,
    RF_SUBCTX = 1 << 10, /* allowed in RESP2's subscribed mode (not a flag Redis shows) */
};
struct rcmd {
    const char *name; /* lower case; subcommands: their own name ("setname") */
    int arity;        /* Redis's: n exactly, -n at least n (the command's name counts) */
    unsigned flags;
    rcmd_fn fn; /* NULL for a container (CLIENT, CONFIG, ...): its arity needs a subcommand */
    /* group, summary, since, the key positions and acl are notes for the reader: COMMAND INFO,
     * COMMAND DOCS and ACL CAT answer from the generated metadata (cmd_meta.h), which is
     * Redis's own. */
    const char *group;
    const char *summary;
    const char *since;
    int first_key, last_key, step;
    const rcmd *subs; /* subcommands (a table ending with a NULL name), or NULL */
    const char *acl;  /* ACL categories, space-separated ("@keyspace @write") */
};

/* COMMAND (cmd_command.c): its handler and subcommands. */
void resp_cmd_command(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
extern const rcmd resp_command_subs[];
/* Whether a command is in an ACL category ("stream", without '@'), as Redis 7.0 says. */
bool resp_command_in_category(const rcmd *parent, const rcmd *c, const char *cat);

/* The command table (cmd_server.c), ending with a NULL name. */
extern const rcmd resp_commands[];
const rcmd *resp_command_find(const rcmd *table, td_slice name);

/* Helpers for commands. */
bool resp_arg_is(td_slice a, const char *s); /* case-insensitive */
/* An integer argument: false after answering Redis's "value is not an integer" error. */
bool resp_arg_ll(resp_w *w, td_slice a, long long *out);
/* A copy of an argument as a NUL-terminated string in the command's arena. */
char *resp_arg_str(rconn *rc, td_slice a);
void resp_reply_syntax(resp_w *w);
/* A HELP reply: the lines (ending with NULL) as simple strings. */
void resp_reply_help(resp_w *w, const char *const *lines);
/* Keys and topics (cmd_keys.c; docs/redis.md#keys-and-topics). The topic name of a key (base's
 * td_key_to_name) into name; false when it would be longer than TD_TOPIC_NAME_MAX. */
bool resp_topic_name(td_slice key, char name[TD_TOPIC_NAME_MAX + 1]);
typedef struct resp_skey {
    char topic[TD_TOPIC_NAME_MAX + 1];
    int32_t part; /* -1: the whole topic (the key's own) */
} resp_skey;
/* The stream a key names: its own topic, or partition N of the topic of T for a key "T/N" when
 * no topic holds the key itself and T's has more than N partitions (this looks topics up). 0, or
 * -1 when the key's topic name would be longer than TD_TOPIC_NAME_MAX. */
int resp_key_resolve(td_engine *e, td_slice key, resp_skey *k);
/* The full name of a command ("client|setname"), into buf. */
void resp_command_fullname(const rcmd *parent, const rcmd *c, char *buf, size_t len);

/* Transactions (server.c). */
void resp_multi(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_exec(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_discard(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
/* WATCH and UNWATCH (cmd_watch.c); resp_unwatch_all forgets the keys (EXEC, DISCARD, RESET,
 * close); resp_watched_unchanged: whether no watched key changed since WATCH (EXEC calls it
 * under the transactions' write lock). */
void resp_cmd_watch(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_unwatch(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_unwatch_all(rconn *rc);
typedef struct resp_xadd_trims resp_xadd_trims;
/* The connection lets go of its queue of XADD trims (at close; queued trims still run). */
void resp_xadd_trims_forget(rconn *rc);
bool resp_watched_unchanged(rconn *rc);
void resp_reset(rconn *rc);
/* CLIENT UNBLOCK, on the blocked connection's loop: answers its blocked read as at the timeout
 * (a null array) or with the UNBLOCKED error, and reads on; nothing if it is no longer blocked
 * (server.c). */
void resp_unblock_now(rconn *rc, bool error);
/* Connections (cmd_client.c): CLIENT LIST and INFO lines, CLIENT KILL. */
extern const rcmd resp_client_subs[];
/* Under s->clients_mu; self: rc is the caller's connection (its loop's). */
void resp_client_line(rconn *rc, td_buf *b, bool self);
/* Fills rc->laddr from the socket (at open). */
void resp_client_laddr(rconn *rc);
/* Which connections CLIENT KILL closes: id 0, NULL strings and type -1 match any; user
 * "default" the connections no AUTH gave a user; skip is never closed. */
typedef struct resp_kill_filter {
    uint64_t id;
    const char *addr, *laddr, *user;
    int type;
    const rconn *skip;
} resp_kill_filter;
bool resp_kill_match(const rconn *x, const resp_kill_filter *f);
/* Closes the connections that match; self (the caller's, may be NULL) only after its reply.
 * The number closed. */
size_t resp_clients_kill(resp_server *s, const resp_kill_filter *f, rconn *self);
/* Client names (cmd_server.c): printable ASCII without spaces; set under s->clients_mu. */
bool resp_name_ok(td_slice n);
void resp_set_name(rconn *rc, td_slice n);

/* Statistics, SLOWLOG, LATENCY, MONITOR, TIME, ROLE, WAIT (cmd_admin.c). */
int resp_admin_create(resp_server *s);
void resp_admin_destroy(resp_server *s);
/* After a command ran (ns: its time; failed: its reply was an error): its statistics, the slow
 * log, the latency events, the monitors. */
void resp_admin_called(rconn *rc, const rcmd *parent, const rcmd *c, size_t argc,
                       const td_slice *argv, int64_t ns, bool failed);
/* A command refused before it ran (c NULL: unknown): Redis's rejected_calls. */
void resp_admin_rejected(resp_server *s, const rcmd *c);
/* Counts the error reply at b[off..], if there is one there (INFO errorstats); whether it is
 * one. */
bool resp_admin_error_at(resp_server *s, const td_buf *b, size_t off);
/* INFO's stats and replication sections. */
void resp_admin_info_stats(resp_server *s, td_buf *b, bool *first);
void resp_admin_info_replication(resp_server *s, td_buf *b, bool *first);
void resp_admin_resetstat(resp_server *s);
void resp_admin_info_commandstats(resp_server *s, td_buf *b);
void resp_admin_info_errorstats(resp_server *s, td_buf *b);
/* Stops the connection's MONITOR (closing, RESET). */
void resp_admin_monitor_forget(rconn *rc);
enum { RESP_ADMIN_SLOW_THRESHOLD, RESP_ADMIN_SLOW_MAX_LEN, RESP_ADMIN_LATENCY_THRESHOLD };
int64_t resp_admin_get(resp_server *s, int which);
void resp_admin_set(resp_server *s, int which, int64_t v);
extern const rcmd resp_slowlog_subs[], resp_latency_subs[];
void resp_cmd_monitor(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_time(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_role(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_wait(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);

/* The keyspace (cmd_keys.c). */
void resp_cmd_dbsize(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_keys(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_scan(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_type(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_exists(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_del(rconn *rc, resp_w *w, size_t argc, const td_slice *argv); /* and UNLINK */
void resp_cmd_flush(rconn *rc, resp_w *w, size_t argc,
                    const td_slice *argv); /* FLUSHALL, FLUSHDB */

/* Streams (cmd_stream.c). */
void resp_cmd_xadd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xlen(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xrange(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xrevrange(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xread(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xtrim(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xsetid(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xreadgroup(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
/* Consumer groups (cmd_xgroup.c). */
void resp_cmd_xack(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xdel(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xpending(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xclaim(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xautoclaim(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
extern const rcmd resp_xgroup_subs[], resp_xinfo_subs[];
/* Stream helpers (cmd_stream.c), for the consumer group commands (cmd_xgroup.c). */
typedef struct sref { /* a stream: a topic reference and one of its partitions */
    td_topic_ref *ref;
    int32_t pi;
    td_part *p;
} sref;
/* Opens the stream of a key: 1 when it exists (*s filled; release s->ref), 0 when it does not
 * (nothing written), -1 after writing an error. With create, a missing topic is created with one
 * partition and retention.ms=-1 (a Redis stream keeps entries until trimmed). */
int resp_stream_open(rconn *rc, resp_w *w, td_slice key, bool create, sref *s);
/* The stream as the consumer groups name it. */
static inline xstream resp_xstream(const sref *s)
{
    return (xstream){broker_topic_id(s->ref), s->pi, s->p};
}
extern const char resp_invalid_id[]; /* Redis's "Invalid stream ID ..." error */
/* "ms-seq" or "ms" (seq = missing_seq), strict, as Redis parses IDs (stream_id.h), over the
 * full unsigned range; *big is always false (IDs are no longer capped). */
bool resp_id_parse(td_slice a, uint64_t missing_seq, td_sid *id, bool *big);
/* A range bound: "-", "+", an ID, or "(" ID (exclusive). */
bool resp_bound_parse(td_slice a, bool is_start, td_sid *id);
/* The error reply for a bound resp_bound_parse refused (Redis's text for its case). */
void resp_w_bound_error(resp_w *w, td_slice a, bool is_start);
/* A range's arguments: its start and end bounds, then options (only [COUNT n]; *count -1
 * without it). false after replying with the error. */
bool resp_range_args(resp_w *w, td_slice start, td_slice end, const td_slice *opts, size_t nopts,
                     td_sid *lo, td_sid *hi, long long *count);
void resp_w_id(resp_w *w, td_sid id);
/* An engine failure, with the detail td_last_error() has. */
void resp_reply_engine_error(resp_w *w, int r);
/* For a command that writes the stream s (opened): 1, or -1 after writing an error and
 * releasing s->ref when it is an internal topic, which no client writes. */
int resp_stream_writable(resp_w *w, sref *s);
/* A COUNT argument (negative: 0); false after replying. */
bool resp_parse_count(resp_w *w, td_slice a, long long *count);
/* An XADD's failed append, with Redis's texts for what its IDs refuse (mode: enum
 * broker_sid_mode). */
void resp_reply_append_error(resp_w *w, int r, int mode);
/* The stream's topic's value.schema.validation (docs/redis.md): the field map validated as a
 * JSON object against the value subject's latest JSON Schema (registry_check_fields). True when
 * the entry may be added; false with the error reply's text in msg. */
bool resp_xadd_schema_ok(rconn *rc, td_topic_ref *ref, const td_slice *fv, size_t nfv, char *msg,
                         size_t msglen);
/* Entity streams (cmd_entity.c, docs/event-sourcing.md#redis): XADD with the fields tidings-key
 * and tidings-expected-version (fv[0..nfv), every field of the XADD; the ID is `*`), and the
 * commands XKEYRANGE and XKEYVERSION. */
void resp_xadd_entity(rconn *rc, resp_w *w, td_slice key, const td_slice *fv, size_t nfv,
                      bool nomkstream);
void resp_cmd_xkeyrange(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_xkeyversion(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
/* One stream entry as XRANGE gives it, [id, [field, value, ...]], into w: 0 or -ENOMEM. */
int resp_w_entry(resp_w *w, td_sid id, const td_event *ev);
/* The error of a reply that would pass redis.max.reply.bytes (TD_ETOOBIG, with the advice to
 * read with COUNT). */
int resp_reply_too_big(const rconn *rc);
/* Entries of a stream from offset `from` while their ID is <= hi, at most max (0: no limit),
 * written each as [id, [field, value, ...]] into b (w's protocol); *n gets the count and *next
 * the offset after the last one written. ends (may be NULL) gets each entry's end in b, as
 * size_t values appended to it. */
int resp_read_entries(rconn *rc, const sref *s, int64_t from, td_sid hi, size_t max, td_buf *b,
                      size_t *n, int64_t *next, td_buf *ends);
/* A stream's length: its entries from the log start to the high watermark, without those XDEL
 * removed. */
int64_t resp_stream_len(rconn *rc, const sref *s);
/* The entries of ids (in that order) as resp_read_entries writes them, or [id, nil] for one the
 * stream no longer has. */
int resp_read_ids(rconn *rc, const sref *s, const td_sid *ids, size_t n, td_buf *b);

/* Holds the connection's replies until offsets below `end` of the partition are durable (then
 * sends them and reads on), or closes it unanswered if that fails (server.c). */
void resp_wait_durable(rconn *rc, struct td_topic_ref *ref, int32_t partition, int64_t end);
/* The same, and then(arg, 0) runs once they are durable, on the connection's loop before the
 * held replies are sent (also if the connection closed meanwhile); then(arg, rc < 0) instead if
 * the wait failed or cannot be made (it must then only release arg). */
void resp_wait_durable_then(rconn *rc, struct td_topic_ref *ref, int32_t partition, int64_t end,
                            void (*then)(void *arg, int rc), void *arg);
/* The same until the consumer group changes up to seq are saved (xgroups_when_saved); nothing
 * for seq 0. */
void resp_wait_saved(rconn *rc, uint64_t seq);
/* Blocks the connection in b (an XREAD) for at most ms (0: forever): it is retried whenever a
 * partition advances, answered with a null array at the timeout (server.c). */
void resp_block_start(rconn *rc, resp_block *b, long long ms);
/* For server.c: retries a blocked XREAD (writing its reply: true) and frees one. */
bool resp_block_retry(rconn *rc, resp_w *w, resp_block *b);
void resp_block_free(resp_block *b);
/* Appends the connection's batched XADDs and writes their replies (before any other command of
 * the connection runs); frees the batch state at close. */
void resp_xadd_flush(rconn *rc, resp_w *w);
void resp_xbatch_free(resp_xbatch *xb);
/* Adds an `XADD key * fields` to the connection's batch (xadd_batch.c), fields fv[0..nfv) as
 * its value and trace[0..ntrace) as headers; false if it cannot be batched (the caller runs it
 * alone, after flushing). */
bool resp_xadd_batch_add(rconn *rc, resp_w *w, td_slice key, const td_slice *fv, size_t nfv,
                         const td_header *trace, size_t ntrace);

/* Authentication and authorization (authz.c). */
int resp_authz_create(resp_server *s);
void resp_authz_destroy(resp_server *s);
/* Whether the connection starts (and goes back to at RESET) unauthenticated: the listener
 * requires authentication (net_conn_auth_required) or redis.password is set. */
bool resp_auth_required(rconn *rc);
/* Authenticates the connection as user (NULL: default) with pass; false after writing
 * WRONGPASS (or an error). AUTH and HELLO AUTH. */
bool resp_authenticate(rconn *rc, resp_w *w, const td_slice *user, td_slice pass);
/* Whether the user default takes any password (Redis's `nopass`): no redis.password, no
 * tidings user named default, and a listener that does not require authentication. */
bool resp_default_nopass(rconn *rc);
/* Copies the connection's principal into rc->user (at open, AUTH, RESET). */
void resp_note_user(rconn *rc);
/* The connection's user as Redis names it: the principal, or "default" for anonymous. */
const char *resp_user(rconn *rc);
/* Checks the command against the permission table (docs/redis.md#authorization): true when
 * the principal may run it; false after writing Redis's NOPERM error, counting and logging the
 * refusal and adding it to ACL LOG. in_multi: the context ACL LOG names ("multi"). */
bool resp_authorize(rconn *rc, resp_w *w, const rcmd *parent, const rcmd *c, size_t argc,
                    const td_slice *argv, bool in_multi);
/* ACL DRYRUN: answers whether user (NULL: anonymous) could run the command from this
 * connection's host, as Redis words it (+OK, or a bulk string saying why not). */
void resp_dryrun(rconn *rc, resp_w *w, const char *user, const rcmd *parent, const rcmd *c,
                 size_t argc, const td_slice *argv);
/* Whether the principal may see the topic in listings (Describe): KEYS, SCAN, DBSIZE. */
bool resp_may_describe(rconn *rc, const char *topic);
/* Counts and audits a command refused before authentication (broker_audit: its own kind of
 * event, so that a client retrying without a password cannot hide the ACL refusals from the
 * rate-limited log). */
void resp_refuse_unauthenticated(rconn *rc, const char *command);
void resp_cmd_acl_log(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
/* The permission table's entry of a command (by full name, "xgroup|create"), for the unit test
 * that checks every command has one; NULL if it has none. */
const void *resp_perm_find(const char *fullname);
/* Whether the user exists: default always, else a tidings user (cmd_acl.c). */
bool resp_user_exists(rconn *rc, const char *name);

/* ACL (cmd_acl.c). */
extern const rcmd resp_acl_subs[];
/* ACL SETUSER's rules and the user's permissions as Redis shows them (acl_rules.c, pure:
 * unit-tested and fuzzed). The state between Redis's rules and tidings' ACLs: patterns (a
 * literal topic name, "*" for all, or a prefix) with flags, and the commands as bits. */
enum {
    RESP_ACL_KEY_R = 1,     /* %R~: read commands on the keys */
    RESP_ACL_KEY_W = 2,     /* %W~: write commands on the keys */
    RESP_ACL_CHAN = 4,      /* &: PUBLISH and SUBSCRIBE */
    RESP_ACL_UNMANAGED = 8, /* from ACLs SETUSER does not make: shown, never changed */
};
enum {
    RESP_ACL_CMD_READ = 1,
    RESP_ACL_CMD_WRITE = 2,
    RESP_ACL_CMD_ADMIN = 4, /* @admin, @dangerous */
    RESP_ACL_CMDS_ALL = 7,  /* @all */
};
typedef struct resp_acl_pat {
    uint8_t ptype; /* TD_PAT_LITERAL or TD_PAT_PREFIXED */
    uint8_t flags;
    char name[TD_ACL_NAME_MAX + 1];
} resp_acl_pat;
typedef struct resp_acl_state {
    resp_acl_pat *v; /* in the order Redis would show them */
    size_t n, cap;
    unsigned cmds;
} resp_acl_state;
void resp_acl_state_init(resp_acl_state *st);
void resp_acl_state_free(resp_acl_state *st);

typedef struct resp_acl_rules {
    bool on, off, nopass, resetpass;
    bool perms;   /* a key, channel or command rule was given */
    bool narrows; /* one of them is not one of those allowing everything (~*, +@all, ...) */
    const uint8_t *password; /* the last ">password", or NULL */
    size_t password_len;
} resp_acl_rules;
/* Reads the rules, applying the key, channel and command rules to *st left to right (st may be
 * NULL: validation only). 0; -1 with *bad the index of the rule refused and why[] the reason
 * (Redis's wording where Redis refuses it too), *st then half-changed; -ENOMEM. */
int resp_acl_rules_parse(const td_slice *rules, size_t n, resp_acl_rules *out, resp_acl_state *st,
                         size_t *bad, char *why, size_t why_len);
/* The ACLs (Allow, host "*", principal "User:<name>") that st grants, *out malloc'd. */
int resp_acl_encode(const resp_acl_state *st, const char *principal, td_acl **out, size_t *count);
/* The state that the principal's ACLs among v stand for (st initialised here); managed[i]
 * says whether v[i] is one SETUSER manages (replaced by the next SETUSER with rules). */
int resp_acl_decode(const td_acl *v, size_t n, const char *principal, resp_acl_state *st,
                    bool *managed);
enum {
    RESP_ACL_RENDER_LIST,
    RESP_ACL_RENDER_KEYS,
    RESP_ACL_RENDER_CHANNELS,
    RESP_ACL_RENDER_COMMANDS
};
/* Appends st in Redis 7's words: GETUSER's keys, channels or commands string, or ACL LIST's
 * "keys channels commands" part. 0 or -ENOMEM. */
int resp_acl_render(const resp_acl_state *st, int part, td_buf *b);

/* Pub/Sub (pubsub.c). */
int resp_pubsub_create(resp_pubsub **out);
void resp_pubsub_destroy(resp_pubsub *ps);
void resp_cmd_subscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_psubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_unsubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_punsubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_publish(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_pubsub_channels(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_pubsub_numsub(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_pubsub_numpat(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
/* The connection's channels and patterns together. */
size_t resp_subscriptions(const rconn *rc);
/* Drops every subscription of the connection (closing, RESET). */
void resp_pubsub_forget(rconn *rc);
/* Distinct sharded channels with subscribers (INFO). */
size_t resp_pubsub_shard_channels(resp_server *s);
/* Distinct channels and patterns with subscribers (INFO, PUBSUB NUMPAT). */
void resp_pubsub_counts(resp_server *s, size_t *channels, size_t *patterns);

/* Sharded Pub/Sub (pubsub.c): one shard, so every channel is in it. */
void resp_cmd_spublish(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_ssubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_cmd_sunsubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_pubsub_shardchannels(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
void resp_pubsub_shardnumsub(rconn *rc, resp_w *w, size_t argc, const td_slice *argv);
/* Publishes msg on channel (not sharded) to the subscribers of the channel and of the patterns
 * matching it; the number of subscribers it was posted to. Any thread. */
int64_t resp_pubsub_publish(resp_pubsub *ps, td_slice channel, td_slice msg);
/* Messages posted to subscribers' loops and not yet written to their connections. */
int64_t resp_pubsub_inflight(resp_pubsub *ps);
/* Whether anyone subscribes to a channel or a pattern (not sharded): an atomic load. */
bool resp_pubsub_any(resp_pubsub *ps);

/* Keyspace notifications (notify.c, docs/redis.md#keyspace-notifications): the classes of
 * notify-keyspace-events, with Redis 7.0's bits. */
enum {
    RESP_NOTIFY_KEYSPACE = 1 << 0,  /* K */
    RESP_NOTIFY_KEYEVENT = 1 << 1,  /* E */
    RESP_NOTIFY_GENERIC = 1 << 2,   /* g */
    RESP_NOTIFY_STRING = 1 << 3,    /* $ */
    RESP_NOTIFY_LIST = 1 << 4,      /* l */
    RESP_NOTIFY_SET = 1 << 5,       /* s */
    RESP_NOTIFY_HASH = 1 << 6,      /* h */
    RESP_NOTIFY_ZSET = 1 << 7,      /* z */
    RESP_NOTIFY_EXPIRED = 1 << 8,   /* x */
    RESP_NOTIFY_EVICTED = 1 << 9,   /* e */
    RESP_NOTIFY_STREAM = 1 << 10,   /* t */
    RESP_NOTIFY_KEY_MISS = 1 << 11, /* m: not in A */
    RESP_NOTIFY_MODULE = 1 << 13,   /* d */
    RESP_NOTIFY_NEW = 1 << 14,      /* n: not in A */
    RESP_NOTIFY_ALL = RESP_NOTIFY_GENERIC | RESP_NOTIFY_STRING | RESP_NOTIFY_LIST |
                      RESP_NOTIFY_SET | RESP_NOTIFY_HASH | RESP_NOTIFY_ZSET | RESP_NOTIFY_EXPIRED |
                      RESP_NOTIFY_EVICTED | RESP_NOTIFY_STREAM | RESP_NOTIFY_MODULE, /* A */
};
/* flags as Redis writes them ("AKE", "Et"); out holds at least 16 bytes. */
void resp_notify_flags_format(int flags, char *out);
/* Tells subscribers of an event of class type on key made by rc's command (the key as the
 * client wrote it): __keyspace@0__:<key> gets the event, __keyevent@0__:<event> the key, as
 * notify-keyspace-events selects. One atomic load when the class is off. */
void resp_notify(rconn *rc, int type, const char *event, td_slice key);
/* A read command's lookup of a key that does not exist: `keymiss` (class m), as Redis's
 * lookupKeyRead sends it (writes' lookups send none). resp_notify_lookup: the same when
 * found is false; returns found. */
void resp_notify_miss(rconn *rc, td_slice key);
bool resp_notify_lookup(rconn *rc, bool found, td_slice key);
/* XREADGROUP, XCLAIM, XAUTOCLAIM: whether the consumer exists (only looked up when
 * xgroup-createconsumer would be sent: true otherwise), and after the command, the
 * notification if it did not and does now. */
bool resp_notify_consumer_known(rconn *rc, const xstream *xs, td_slice group, td_slice consumer);
void resp_notify_consumer_made(rconn *rc, const xstream *xs, td_slice key, td_slice group,
                               td_slice consumer, bool known);
/* Publishes the notes held with the replies (rc->waits is 0 again). */
void resp_notify_release(rconn *rc);
/* Changes made through Kafka, HTTP and the CLI (broker_set_change_hook): attached with the
 * listener; muted on a thread while it runs the Redis listener's own commands, which tell of
 * their changes themselves, in their order. */
int resp_notify_attach(resp_server *s);
void resp_notify_detach(resp_server *s);
void resp_notify_wait_jobs(resp_server *s);
void resp_notify_mute(bool on);
/* CONFIG GET/SET notify-keyspace-events: the value; false after writing Redis's error. */
void resp_notify_config_get(resp_server *s, char *buf, size_t len);
bool resp_notify_config_set(resp_w *w, td_slice value, bool apply, resp_server *s);

/* Quotas (quota.c): a command's traffic (its request bytes, its reply's bytes, its time on
 * the loop in ns), a blocked read's reply, and the connection's close. */
void resp_quota_command(rconn *rc, td_slice cmd, size_t in_bytes, size_t out_bytes, int64_t ns);
void resp_quota_unblocked(rconn *rc, size_t out_bytes);
void resp_quota_close(rconn *rc);

#endif /* TD_PROTO_RESP_INT_H */
