/*
 * cmd_xgroup.c: Redis consumer groups (docs/redis.md#consumer-groups): XGROUP, XACK, XPENDING,
 * XCLAIM, XAUTOCLAIM and XINFO, and XDEL (whose removed entries the groups keep), with Redis 7.0's
 * replies and error texts, on the broker's consumer groups (broker/xgroup.c). XREADGROUP shares
 * XREAD's code in cmd_stream.c.
 *
 * Commands that change a group or remove entries (all here but XPENDING and XINFO) answer once the
 * change is saved: the connection's replies are held until then (inside EXEC, the command waits).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/xgroup.h"
#include "proto/resp/resp_int.h"
#include "proto/resp/xnodes.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */
/* After a change's reply is written: its save is waited for, in EXEC as elsewhere. The reply
 * (EXEC's whole array in a transaction) is held until the save is durable, and a failed save
 * closes the connection unanswered, so that the loop never waits for an fsync. */
static void after_reply(rconn *rc, uint64_t seq)
{
    if (seq)
        resp_wait_saved(rc, seq);
}

static void reply_nogroup(resp_w *w, td_slice key, td_slice group)
{
    resp_w_errorf(w, "NOGROUP No such key '%.*s' or consumer group '%.*s'", (int)TD_MIN(key.n, 300),
                  (const char *)key.p, (int)TD_MIN(group.n, 300), (const char *)group.p);
}

static void reply_nogroup_for_key(resp_w *w, td_slice key, td_slice group)
{
    resp_w_errorf(w, "NOGROUP No such consumer group '%.*s' for key name '%.*s'",
                  (int)TD_MIN(group.n, 300), (const char *)group.p, (int)TD_MIN(key.n, 300),
                  (const char *)key.p);
}

/* How a change's TD_ENOTFOUND is answered: Redis words it two ways. */
enum { NOGROUP_PLAIN, NOGROUP_FOR_KEY };

/* After a changing call returned r: answers its failure (TD_ENOTFOUND as NOGROUP for the key
 * and group at kg[0] and kg[1]) and returns false, or returns true. The caller
 * writes its reply when true, then calls after_reply. */
static bool change_ok(resp_w *w, int r, const td_slice *kg, int nogroup)
{
    if (r == TD_ENOTFOUND && nogroup == NOGROUP_FOR_KEY)
        reply_nogroup_for_key(w, kg[0], kg[1]);
    else if (r == TD_ENOTFOUND)
        reply_nogroup(w, kg[0], kg[1]);
    else if (r)
        resp_reply_engine_error(w, r);
    else
        return true;
    return false;
}

/* A strict ID (no "-", "+" or "("): "ms" or "ms-seq". */
static bool strict_id(td_slice a, td_sid *id)
{
    bool big;
    if (!resp_id_parse(a, 0, id, &big))
        return false;
    if (big)
        *id = (td_sid){UINT64_MAX, UINT64_MAX};
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * XGROUP
 */
static void xgroup_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "POLICY <key> <groupname> [NONE | <option> <value> ...]",
        "    Show, set or remove the group's queue policy (a tidings extension): the broker",
        "    then redelivers entries not acknowledged in time and dead-letters them at the",
        "    limit. Options: ack.timeout.ms, max.deliveries, backoff.initial.ms,",
        "    backoff.multiplier, backoff.max.ms, backoff.jitter, dead.letter.topic.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Prints this help.",
        NULL};
    resp_reply_help(w, lines);
}

static const char xgroup_need_key[] =
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to "
    "use the MKSTREAM option to create an empty stream automatically.";

/* The stream of an XGROUP subcommand: false after answering Redis's error for a missing key. */
static bool xgroup_stream(rconn *rc, resp_w *w, td_slice key, bool create, sref *s)
{
    int o = resp_stream_open(rc, w, key, create, s);
    if (o == 0)
        resp_w_error(w, xgroup_need_key);
    return o == 1;
}

/* Redis's answer to a subcommand's arguments it does not take (the subcommand as typed). */
static void xgroup_syntax(resp_w *w, td_slice sub)
{
    resp_w_errorf(w,
                  "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try XGROUP "
                  "HELP.",
                  (int)TD_MIN(sub.n, 128), (const char *)sub.p);
}

/* The options of CREATE and SETID: false after answering Redis's error. */
static bool xgroup_options(resp_w *w, size_t argc, const td_slice *argv, bool create,
                           bool *mkstream, int64_t *entries_read)
{
    *mkstream = false;
    *entries_read = -1; /* Redis's default: unknown until a delivery estimates it */
    for (size_t i = 5; i < argc;) {
        long long n;
        if (create && resp_arg_is(argv[i], "mkstream")) {
            *mkstream = true;
            i++;
        } else if (resp_arg_is(argv[i], "entriesread") && i + 1 < argc) {
            if (!resp_arg_ll(w, argv[i + 1], &n))
                return false;
            if (n < 0 && n != -1) {
                resp_w_error(w, "ERR value for ENTRIESREAD must be positive or -1");
                return false;
            }
            *entries_read = n;
            i += 2;
        } else {
            xgroup_syntax(w, argv[1]);
            return false;
        }
    }
    return true;
}

/* The ID `$` names: the stream's last, or, while a transaction is open, just below its first
 * entry (the group then gets that transaction's entries if it commits). */
static void stream_last_stable(const sref *s, td_sid *last)
{
    broker_stream_last(s->p, last);
    int64_t lso = broker_part_last_stable(s->p);
    td_sid id;
    if (lso < broker_part_high_watermark(s->p) && broker_stream_id(s->p, lso, &id, NULL) == 0) {
        if (id.seq)
            id.seq--;
        else if (id.ms)
            id = (td_sid){id.ms - 1, UINT64_MAX};
        *last = id;
    }
}

/* CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n], SETID key group id|$ [ENTRIESREAD n], in
 * Redis 7.0's order of checks: the options, the key (created by MKSTREAM only once nothing can
 * fail), SETID's group, the number of arguments, then the ID (CREATE's strict: no "-" or "+";
 * SETID's also "-" for 0-0 and "+" for the largest ID). */
static void xgroup_create_or_setid(rconn *rc, resp_w *w, size_t argc, const td_slice *argv,
                                   bool create)
{
    bool mkstream;
    int64_t entries_read;
    if (!xgroup_options(w, argc, argv, create, &mkstream, &entries_read))
        return;
    sref s = {0};
    int o = resp_stream_open(rc, w, argv[2], false, &s);
    if (o < 0)
        return;
    xstream xs = o == 1 ? resp_xstream(&s) : (xstream){0};
    xgroup_info gi;
    td_sid last = {0, 0};
    uint64_t seq = 0;
    int r;
    if (o == 0 && !mkstream) {
        resp_w_error(w, xgroup_need_key);
        return;
    }
    if (!create && xgroup_consumers(rc->s->e, &xs, argv[3], &gi, NULL, NULL) == TD_ENOTFOUND) {
        reply_nogroup_for_key(w, argv[2], argv[3]);
        goto out;
    }
    if (create ? argc > 8 : argc != 5 && argc != 7) {
        xgroup_syntax(w, argv[1]);
        goto out;
    }
    if (argv[4].n == 1 && argv[4].p[0] == '$') {
        if (o == 1)
            stream_last_stable(&s, &last);
    } else if (!create && argv[4].n == 1 && (argv[4].p[0] == '-' || argv[4].p[0] == '+')) {
        resp_bound_parse(argv[4], true, &last);
    } else if (!strict_id(argv[4], &last)) {
        resp_w_error(w, resp_invalid_id);
        goto out;
    }
    if (o == 0 && !xgroup_stream(rc, w, argv[2], true, &s)) /* MKSTREAM */
        return;
    xs = resp_xstream(&s);
    r = create ? xgroup_create(rc->s->e, &xs, argv[3], last, entries_read, &seq)
               : xgroup_setid(rc->s->e, &xs, argv[3], last, entries_read, &seq);
    if (r == TD_EEXIST)
        resp_w_error(w, "BUSYGROUP Consumer Group name already exists");
    else if (change_ok(w, r, argv + 2, NOGROUP_FOR_KEY))
        resp_w_simple(w, "OK");
    after_reply(rc, seq);
    if (r == 0)
        resp_notify(rc, RESP_NOTIFY_STREAM, create ? "xgroup-create" : "xgroup-setid", argv[2]);
out:
    broker_topic_release(s.ref);
}

static void xgroup_create_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    xgroup_create_or_setid(rc, w, argc, argv, true);
}

static void xgroup_setid_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    xgroup_create_or_setid(rc, w, argc, argv, false);
}

static void xgroup_destroy_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    sref s;
    if (!xgroup_stream(rc, w, argv[2], false, &s))
        return;
    xstream xs = resp_xstream(&s);
    bool destroyed;
    uint64_t seq;
    int r = xgroup_destroy(rc->s->e, &xs, argv[3], &destroyed, &seq);
    if (change_ok(w, r, argv + 2, NOGROUP_FOR_KEY))
        resp_w_int(w, destroyed);
    after_reply(rc, seq);
    if (r == 0 && destroyed)
        resp_notify(rc, RESP_NOTIFY_STREAM, "xgroup-destroy", argv[2]);
    broker_topic_release(s.ref);
}

static void xgroup_consumer_cmd(rconn *rc, resp_w *w, const td_slice *argv, bool create)
{
    sref s;
    if (!xgroup_stream(rc, w, argv[2], false, &s))
        return;
    xstream xs = resp_xstream(&s);
    uint64_t seq = 0;
    bool created = false;
    int64_t pending = 0;
    int r = create ? xgroup_consumer_create(rc->s->e, &xs, argv[3], argv[4], td_wall_ms(), &created,
                                            &seq)
                   : xgroup_consumer_delete(rc->s->e, &xs, argv[3], argv[4], &pending, &seq);
    if (change_ok(w, r, argv + 2, NOGROUP_FOR_KEY))
        resp_w_int(w, create ? created : pending);
    after_reply(rc, seq);
    if (r == 0 && (create ? created : seq != 0)) /* DELCONSUMER: a change saved, it existed */
        resp_notify(rc, RESP_NOTIFY_STREAM, create ? "xgroup-createconsumer" : "xgroup-delconsumer",
                    argv[2]);
    broker_topic_release(s.ref);
}

static void xgroup_createconsumer_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    xgroup_consumer_cmd(rc, w, argv, true);
}

static void xgroup_delconsumer_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    xgroup_consumer_cmd(rc, w, argv, false);
}

/* POLICY key group [NONE | option value ...] */
static void xgroup_policy_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    const char *const *keys = xgroup_policy_keys();
    bool none = argc == 5 && resp_arg_is(argv[4], "none");
    if (argc > 4 && !none && (argc - 4) % 2) {
        resp_w_error(w, "ERR syntax error: XGROUP POLICY key group [NONE | option value ...]");
        return;
    }
    td_config_entry en[16];
    size_t n = 0;
    for (size_t i = 4; !none && i + 1 < argc; i += 2) {
        size_t k = 0;
        while (keys[k] && !resp_arg_is(argv[i], keys[k]))
            k++;
        if (!keys[k]) {
            resp_w_errorf(w,
                          "ERR unknown policy option '%.*s' (ack.timeout.ms, max.deliveries, "
                          "backoff.initial.ms, backoff.multiplier, backoff.max.ms, "
                          "backoff.jitter, dead.letter.topic)",
                          (int)TD_MIN(argv[i].n, 64), (const char *)argv[i].p);
            return;
        }
        if (n == 16) {
            resp_reply_syntax(w);
            return;
        }
        en[n++] = (td_config_entry){keys[k], resp_arg_str(rc, argv[i + 1])};
    }
    sref s;
    if (!xgroup_stream(rc, w, argv[2], false, &s))
        return;
    xstream xs = resp_xstream(&s);
    td_queue_policy pol;
    bool has;
    uint64_t seq = 0;
    int r = xgroup_get_policy(rc->s->e, &xs, argv[3], &pol, &has);
    if (r == 0 && argc == 4) {
        /* Show it: a map of the options, or nil without a policy. */
        if (!has) {
            resp_w_null(w);
        } else {
            size_t nk = 0;
            while (keys[nk])
                nk++;
            resp_w_map(w, nk);
            for (size_t k = 0; k < nk; k++) {
                char v[TD_TOPIC_NAME_MAX + 32];
                td_queue_policy_get(&pol, keys[k], v, sizeof(v));
                resp_w_str(w, keys[k]);
                resp_w_str(w, v);
            }
        }
        goto out;
    }
    if (r == 0 && !none) {
        if (!has)
            td_queue_policy_init(&pol);
        if (td_queue_policy_apply(&pol, en, n) != 0) {
            resp_w_errorf(w, "ERR %s", td_last_error());
            goto out;
        }
        if (!strcmp(pol.dead_letter_topic, broker_topic_name(s.ref))) {
            resp_w_error(w, "ERR dead.letter.topic cannot be the stream's own topic");
            goto out;
        }
    }
    if (r == 0)
        r = xgroup_set_policy(rc->s->e, &xs, argv[3], none ? NULL : &pol, &seq);
    if (change_ok(w, r, argv + 2, NOGROUP_FOR_KEY))
        resp_w_simple(w, "OK");
    after_reply(rc, seq);
out:
    broker_topic_release(s.ref);
}

#define XG_ACL "@write @stream @slow"
const rcmd resp_xgroup_subs[] = {
    {"create", -5, RF_WRITE, xgroup_create_cmd, "stream", "Creates a consumer group.", "5.0.0", 2,
     2, 1, NULL, XG_ACL},
    {"createconsumer", 5, RF_WRITE, xgroup_createconsumer_cmd, "stream",
     "Creates a consumer in a consumer group.", "6.2.0", 2, 2, 1, NULL, XG_ACL},
    {"delconsumer", 5, RF_WRITE, xgroup_delconsumer_cmd, "stream",
     "Deletes a consumer from a consumer group.", "5.0.0", 2, 2, 1, NULL, XG_ACL},
    {"destroy", 4, RF_WRITE, xgroup_destroy_cmd, "stream", "Destroys a consumer group.", "5.0.0", 2,
     2, 1, NULL, XG_ACL},
    {"help", 2, RF_LOADING | RF_STALE, xgroup_help, "stream",
     "Returns helpful text about the different subcommands.", "5.0.0", 0, 0, 0, NULL,
     "@stream @slow"},
    {"policy", -4, RF_WRITE, xgroup_policy_cmd, "stream",
     "Shows, sets or removes a consumer group's queue policy (tidings).", "7.0.0", 2, 2, 1, NULL,
     XG_ACL},
    {"setid", -5, RF_WRITE, xgroup_setid_cmd, "stream",
     "Sets the last-delivered ID of a consumer group.", "5.0.0", 2, 2, 1, NULL, XG_ACL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

/* ---------------------------------------------------------------------------------------------
 * XACK
 */
void resp_cmd_xack(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    sref s;
    int o = resp_stream_open(rc, w, argv[1], false, &s);
    if (o == 0)
        resp_w_int(w, 0);
    if (o == 0)
        resp_notify_miss(rc, argv[1]);
    if (o != 1)
        return;
    xstream xs = resp_xstream(&s);
    size_t n = argc - 3, acked = 0;
    uint64_t seq = 0;
    xgroup_info gi;
    td_sid *ids = NULL;
    bool ok = true;
    if (xgroup_consumers(rc->s->e, &xs, argv[2], &gi, NULL, NULL) == TD_ENOTFOUND) {
        resp_w_int(w, 0); /* no group: nothing to acknowledge, as Redis (before the IDs) */
        goto out;
    }
    if (!(ids = malloc(n * sizeof(*ids)))) {
        resp_w_error(w, "ERR out of memory");
        goto out;
    }
    /* All IDs first: the command acknowledges all or nothing. */
    for (size_t i = 0; i < n && ok; i++)
        ok = strict_id(argv[3 + i], &ids[i]);
    int r = ok ? xgroup_ack(rc->s->e, &xs, argv[2], ids, n, &acked, &seq) : 0;
    if (!ok)
        resp_w_error(w, resp_invalid_id);
    else if (change_ok(w, r == TD_ENOTFOUND ? 0 : r, argv + 1, NOGROUP_PLAIN))
        resp_w_int(w, (int64_t)acked); /* a group gone meanwhile: 0 acknowledged */
    after_reply(rc, seq);
out:
    free(ids);
    broker_topic_release(s.ref);
}

/* ---------------------------------------------------------------------------------------------
 * XDEL (here for its saving, which is the consumer groups')
 */
void resp_cmd_xdel(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    size_t n = argc - 2, deleted = 0;
    /* The stream first, as Redis: a missing key is 0 whatever the IDs. */
    sref s;
    int o = resp_stream_open(rc, w, argv[1], false, &s);
    if (o == 0)
        resp_w_int(w, 0);
    if (o != 1)
        return;
    td_sid *ids = malloc(n * sizeof(*ids));
    if (!ids) {
        resp_w_error(w, "ERR out of memory");
        broker_topic_release(s.ref);
        return;
    }
    /* Every ID before anything is removed: nothing is if one is invalid. */
    for (size_t i = 0; i < n; i++) {
        if (!strict_id(argv[2 + i], &ids[i])) {
            resp_w_error(w, resp_invalid_id);
            free(ids);
            broker_topic_release(s.ref);
            return;
        }
    }
    uint64_t seq = 0;
    int r = resp_xnodes_delete(rc, &s, ids, n, &deleted, &seq); /* the node model follows */
    if (change_ok(w, r, argv + 1, NOGROUP_PLAIN))
        resp_w_int(w, (int64_t)deleted);
    after_reply(rc, seq);
    if (r == 0 && deleted)
        resp_notify(rc, RESP_NOTIFY_STREAM, "xdel", argv[1]);
    broker_topic_release(s.ref);
    free(ids);
}

/* ---------------------------------------------------------------------------------------------
 * XPENDING
 */
typedef struct pend_out {
    resp_w w;
    size_t n;
    int64_t now; /* 0: the delivery time, not the idle time (XINFO STREAM FULL) */
    bool no_consumer;
} pend_out;

/* [id, consumer, idle or delivery time, deliveries]; without the consumer for FULL's
 * consumers. */
static void pend_one(void *arg, const xpending_info *p)
{
    pend_out *o = arg;
    resp_w_array(&o->w, o->no_consumer ? 3 : 4);
    resp_w_id(&o->w, p->id);
    if (!o->no_consumer)
        resp_w_bulk(&o->w, p->consumer.p, p->consumer.n);
    resp_w_int(&o->w, o->now ? TD_MAX(0, o->now - p->delivery_ms) : p->delivery_ms);
    resp_w_int(&o->w, p->deliveries);
    o->n++;
}

static void pend_consumer(void *arg, const xconsumer_info *c)
{
    pend_out *o = arg;
    if (!c->pending)
        return;
    resp_w_array(&o->w, 2);
    resp_w_bulk(&o->w, c->name.p, c->name.n);
    resp_w_bulk_int(&o->w, (int64_t)c->pending);
    o->n++;
}

void resp_cmd_xpending(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    long long min_idle = 0, count = 0;
    td_sid lo = {0, 0}, hi = {UINT64_MAX, UINT64_MAX};
    td_slice consumer = {NULL, 0};
    if (argc != 3 && (argc < 6 || argc > 9)) {
        resp_reply_syntax(w);
        return;
    }
    if (argc >= 6) {
        size_t at = 3;
        if (resp_arg_is(argv[3], "idle")) {
            if (!resp_arg_ll(w, argv[4], &min_idle))
                return;
            if (argc < 8) {
                resp_reply_syntax(w);
                return;
            }
            at += 2;
        }
        if (!resp_arg_ll(w, argv[at + 2], &count))
            return;
        if (count < 0)
            count = 0;
        if (!resp_bound_parse(argv[at], true, &lo)) {
            resp_w_bound_error(w, argv[at], true);
            return;
        }
        if (!resp_bound_parse(argv[at + 1], false, &hi)) {
            resp_w_bound_error(w, argv[at + 1], false);
            return;
        }
        if (at + 3 < argc)
            consumer = argv[at + 3];
    }
    sref s;
    int o = resp_stream_open(rc, w, argv[1], false, &s);
    if (o == 0)
        reply_nogroup(w, argv[1], argv[2]);
    if (o == 0)
        resp_notify_miss(rc, argv[1]);
    if (o != 1)
        return;
    xstream xs = resp_xstream(&s);
    td_buf b;
    td_buf_init(&b);
    pend_out po = {.w = {&b, rc->proto, false}, .now = td_wall_ms()};
    xgroup_info gi;
    int r;
    if (argc == 3) {
        r = xgroup_consumers(rc->s->e, &xs, argv[2], &gi, pend_consumer, &po);
        if (r == 0 && gi.pending == 0) {
            resp_w_array(w, 4);
            resp_w_int(w, 0);
            resp_w_null(w);
            resp_w_null(w);
            resp_w_null_array(w);
        } else if (r == 0) {
            resp_w_array(w, 4);
            resp_w_int(w, (int64_t)gi.pending);
            resp_w_id(w, gi.pel_min);
            resp_w_id(w, gi.pel_max);
            resp_w_array(w, po.n);
            td_buf_append(w->b, b.p, b.len);
        }
    } else {
        r = count == 0 ? xgroup_consumers(rc->s->e, &xs, argv[2], &gi, NULL, NULL)
                       : xgroup_pending(rc->s->e, &xs, argv[2], lo, hi, consumer, min_idle,
                                        (size_t)count, po.now, pend_one, &po);
        if (r == 0) {
            resp_w_array(w, po.n);
            td_buf_append(w->b, b.p, b.len);
        }
    }
    if (r == TD_ENOTFOUND)
        reply_nogroup(w, argv[1], argv[2]);
    else if (r)
        resp_reply_engine_error(w, r);
    if (po.w.oom)
        w->oom = true;
    td_buf_free(&b);
    broker_topic_release(s.ref);
}

/* ---------------------------------------------------------------------------------------------
 * XCLAIM, XAUTOCLAIM
 */
/* Writes claimed entries (or their IDs with justid) as an array. */
static int write_claimed(rconn *rc, resp_w *w, const sref *s, const td_sid *ids, size_t n,
                         bool justid)
{
    resp_w_array(w, n);
    if (justid) {
        for (size_t i = 0; i < n; i++)
            resp_w_id(w, ids[i]);
        return 0;
    }
    return resp_read_ids(rc, s, ids, n, w->b);
}

/* XCLAIM's options that take an integer, with the error Redis gives for a bad one. */
enum { CLAIM_IDLE, CLAIM_TIME, CLAIM_RETRYCOUNT, CLAIM_INT_OPTS };
static const char *const claim_int_opts[CLAIM_INT_OPTS] = {"IDLE", "TIME", "RETRYCOUNT"};

void resp_cmd_xclaim(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    long long min_idle;
    xclaim_opts o = {.delivery_ms = -1, .retry_count = -1};
    int64_t now = td_wall_ms();
    if (!resp_parse_ll(argv[4].p, argv[4].n, &min_idle)) {
        resp_w_error(w, "ERR Invalid min-idle-time argument for XCLAIM");
        return;
    }
    o.min_idle_ms = min_idle < 0 ? 0 : min_idle;
    /* The IDs, up to the first argument that is not one: the options follow. */
    td_sid *ids = malloc((argc - 5) * sizeof(*ids)), *claimed = NULL;
    size_t nids = 0, nclaimed = 0;
    if (!ids) {
        resp_w_error(w, "ERR out of memory");
        return;
    }
    while (5 + nids < argc && strict_id(argv[5 + nids], &ids[nids]))
        nids++;
    for (size_t j = 5 + nids; j < argc; j++) {
        bool more = j + 1 < argc;
        size_t k = 0;
        while (k < CLAIM_INT_OPTS && !resp_arg_is(argv[j], claim_int_opts[k]))
            k++;
        long long v;
        if (k < CLAIM_INT_OPTS && more) {
            j++;
            if (!resp_parse_ll(argv[j].p, argv[j].n, &v)) {
                resp_w_errorf(w, "ERR Invalid %s option argument for XCLAIM", claim_int_opts[k]);
                goto out;
            }
            if (k == CLAIM_RETRYCOUNT)
                o.retry_count = v;
            else if (k != CLAIM_IDLE)
                o.delivery_ms = v;
            else /* Outside [0, now] an idle time means now, as in Redis (below); now - v is
                  * not computed for those, since it overflows for v near LLONG_MIN. */
                o.delivery_ms = v < 0 || v > now ? now : now - v;
        } else if (resp_arg_is(argv[j], "force")) {
            o.force = true;
        } else if (resp_arg_is(argv[j], "justid")) {
            o.justid = true;
        } else if (resp_arg_is(argv[j], "lastid") && more) {
            if (!strict_id(argv[++j], &o.last_id)) {
                resp_w_error(w, resp_invalid_id);
                goto out;
            }
            o.has_last_id = true;
        } else {
            resp_w_errorf(w, "ERR Unrecognized XCLAIM option '%.*s'", (int)TD_MIN(argv[j].n, 128),
                          (const char *)argv[j].p);
            goto out;
        }
    }
    if (o.delivery_ms != -1 && (o.delivery_ms < 0 || o.delivery_ms > now))
        o.delivery_ms = now;
    sref s;
    int op = resp_stream_open(rc, w, argv[1], false, &s);
    if (op == 0)
        reply_nogroup(w, argv[1], argv[2]);
    if (op == 0)
        resp_notify_miss(rc, argv[1]);
    if (op == 1) {
        uint64_t seq = 0;
        xstream xs = resp_xstream(&s);
        bool known = resp_notify_consumer_known(rc, &xs, argv[2], argv[3]);
        int r = xgroup_claim(rc->s->e, &xs, argv[2], argv[3], ids, nids, &o, now, &claimed,
                             &nclaimed, &seq);
        if (change_ok(w, r, argv + 1, NOGROUP_PLAIN) &&
            write_claimed(rc, w, &s, claimed, nclaimed, o.justid) != 0)
            w->oom = true;
        after_reply(rc, seq);
        resp_notify_consumer_made(rc, &xs, argv[1], argv[2], argv[3], known);
        broker_topic_release(s.ref);
    }
out:
    free(ids);
    free(claimed);
}

void resp_cmd_xautoclaim(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    long long min_idle, count = 100;
    xclaim_opts o = {.delivery_ms = -1, .retry_count = -1};
    int64_t now = td_wall_ms();
    if (!resp_parse_ll(argv[4].p, argv[4].n, &min_idle)) {
        resp_w_error(w, "ERR Invalid min-idle-time argument for XAUTOCLAIM");
        return;
    }
    o.min_idle_ms = min_idle < 0 ? 0 : min_idle;
    td_sid start;
    if (!resp_bound_parse(argv[5], true, &start)) {
        resp_w_bound_error(w, argv[5], true);
        return;
    }
    for (size_t j = 6; j < argc; j++) {
        if (resp_arg_is(argv[j], "count") && j + 1 < argc) {
            long long v;
            j++;
            if (!resp_parse_ll(argv[j].p, argv[j].n, &v) || v < 1 ||
                v > (long long)(INT64_MAX / 16)) {
                resp_w_error(w, "ERR COUNT must be > 0");
                return;
            }
            count = v;
        } else if (resp_arg_is(argv[j], "justid")) {
            o.justid = true;
        } else {
            resp_reply_syntax(w);
            return;
        }
    }
    sref s;
    int op = resp_stream_open(rc, w, argv[1], false, &s);
    if (op == 0)
        reply_nogroup(w, argv[1], argv[2]);
    if (op == 0)
        resp_notify_miss(rc, argv[1]);
    if (op != 1)
        return;
    xstream xs = resp_xstream(&s);
    td_sid *claimed, *deleted, next;
    size_t nclaimed, ndeleted;
    uint64_t seq = 0;
    bool known = resp_notify_consumer_known(rc, &xs, argv[2], argv[3]);
    int r = xgroup_autoclaim(rc->s->e, &xs, argv[2], argv[3], start, (size_t)count, &o, now,
                             &claimed, &nclaimed, &deleted, &ndeleted, &next, &seq);
    if (change_ok(w, r, argv + 1, NOGROUP_PLAIN)) {
        resp_w_array(w, 3);
        resp_w_id(w, next);
        if (write_claimed(rc, w, &s, claimed, nclaimed, o.justid) != 0)
            w->oom = true;
        resp_w_array(w, ndeleted);
        for (size_t i = 0; i < ndeleted; i++)
            resp_w_id(w, deleted[i]);
    }
    after_reply(rc, seq);
    resp_notify_consumer_made(rc, &xs, argv[1], argv[2], argv[3], known);
    free(claimed);
    free(deleted);
    broker_topic_release(s.ref);
}

/* ---------------------------------------------------------------------------------------------
 * XINFO
 */
static void xinfo_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Prints this help.",
        NULL};
    resp_reply_help(w, lines);
}

/* The stream of an XINFO subcommand: false after answering "no such key". */
static bool xinfo_stream(rconn *rc, resp_w *w, td_slice key, sref *s)
{
    int o = resp_stream_open(rc, w, key, false, s);
    if (o == 0)
        resp_w_error(w, "ERR no such key");
    if (o == 0)
        resp_notify_miss(rc, key);
    return o == 1;
}

typedef struct info_out {
    resp_w w;
    size_t n;
    int64_t now;
    rconn *rc;
    const xstream *xs;
    size_t count; /* XINFO STREAM FULL */
} info_out;

/* entries-read and lag as Redis 7.0 answers them: nil where it has no count or estimate. */
static void group_read_lag(resp_w *w, const xgroup_info *g)
{
    resp_w_str(w, "entries-read");
    if (g->entries_read != -1)
        resp_w_int(w, g->entries_read);
    else
        resp_w_null(w);
    resp_w_str(w, "lag");
    if (g->lag_known)
        resp_w_int(w, g->lag);
    else
        resp_w_null(w);
}

static void group_map(info_out *o, const xgroup_info *g)
{
    resp_w_map(&o->w, 6);
    resp_w_str(&o->w, "name");
    resp_w_bulk(&o->w, g->name.p, g->name.n);
    resp_w_str(&o->w, "consumers");
    resp_w_int(&o->w, (int64_t)g->consumers);
    resp_w_str(&o->w, "pending");
    resp_w_int(&o->w, (int64_t)g->pending);
    resp_w_str(&o->w, "last-delivered-id");
    resp_w_id(&o->w, g->last_id);
    group_read_lag(&o->w, g);
}

/* Group names and infos, collected so that what is written of them may call into the groups again
 * (the visitors run under their lock). */
typedef struct group_list {
    xgroup_info *v;
    td_buf names;
    size_t n, cap;
    bool oom;
} group_list;

static void collect_group(void *arg, const xgroup_info *g)
{
    group_list *l = arg;
    if (td_grow(&l->v, &l->cap, l->n, sizeof(*l->v), 8) != 0) {
        l->oom = true;
        return;
    }
    l->v[l->n] = *g;
    l->v[l->n].name.p = (const uint8_t *)(uintptr_t)l->names.len; /* an offset until the end */
    if (td_buf_append(&l->names, g->name.p, g->name.n) != 0)
        l->oom = true;
    l->n++;
}

/* The groups of a stream (free with group_list_free). */
static void group_list_get(rconn *rc, const xstream *xs, group_list *gl)
{
    *gl = (group_list){.n = 0};
    td_buf_init(&gl->names);
    xgroup_list(rc->s->e, xs, collect_group, gl);
    for (size_t i = 0; i < gl->n; i++)
        gl->v[i].name.p = gl->names.p + (uintptr_t)gl->v[i].name.p;
}

static void group_list_free(group_list *gl)
{
    free(gl->v);
    td_buf_free(&gl->names);
}

static void xinfo_groups(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    sref s;
    if (!xinfo_stream(rc, w, argv[2], &s))
        return;
    xstream xs = resp_xstream(&s);
    group_list gl;
    group_list_get(rc, &xs, &gl);
    info_out o = {.w = *w, .rc = rc, .xs = &xs};
    resp_w_array(w, gl.n);
    for (size_t i = 0; i < gl.n; i++)
        group_map(&o, &gl.v[i]);
    w->oom |= o.w.oom || gl.oom;
    group_list_free(&gl);
    broker_topic_release(s.ref);
}

static void consumer_one(void *arg, const xconsumer_info *c)
{
    info_out *o = arg;
    resp_w_map(&o->w, 3);
    resp_w_str(&o->w, "name");
    resp_w_bulk(&o->w, c->name.p, c->name.n);
    resp_w_str(&o->w, "pending");
    resp_w_int(&o->w, (int64_t)c->pending);
    resp_w_str(&o->w, "idle");
    resp_w_int(&o->w, TD_MAX(0, o->now - c->seen_ms));
    o->n++;
}

static void xinfo_consumers(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    sref s;
    if (!xinfo_stream(rc, w, argv[2], &s))
        return;
    xstream xs = resp_xstream(&s);
    td_buf b;
    td_buf_init(&b);
    info_out o = {.w = {&b, rc->proto, false}, .now = td_wall_ms()};
    xgroup_info gi;
    if (xgroup_consumers(rc->s->e, &xs, argv[3], &gi, consumer_one, &o) == TD_ENOTFOUND) {
        reply_nogroup_for_key(w, argv[2], argv[3]);
    } else {
        resp_w_array(w, o.n);
        td_buf_append(w->b, b.p, b.len);
        w->oom |= o.w.oom;
    }
    td_buf_free(&b);
    broker_topic_release(s.ref);
}

/* The offset of the stream's first or last entry (committed, not removed by XDEL), or -1:
 * looked for in a window at that end of the stream, doubled until it holds one. */
static int64_t edge_offset(rconn *rc, const sref *s, bool last)
{
    int64_t ls = broker_part_log_start(s->p), end = broker_part_last_stable(s->p);
    xstream xs = resp_xstream(s);
    for (int64_t w = 64, lo, hi;; w = w > INT64_MAX / 2 ? INT64_MAX : w * 2) {
        lo = last ? TD_MAX(ls, end - w) : ls;
        hi = last ? end : (end - ls <= w ? end : ls + w);
        int64_t *del, off = -1;
        size_t ndel;
        broker_run *runs;
        size_t nruns;
        if (lo >= hi || xstream_deleted(rc->s->e, &xs, lo, hi, &del, &ndel, NULL) != 0)
            return -1;
        if (broker_part_visible_runs(s->p, lo, hi, 0, &runs, &nruns) != 0) {
            free(del);
            return -1;
        }
        /* Each run's offsets from the chosen end, past those XDEL removed (del is sorted). */
        size_t d = last ? ndel : 0;
        for (size_t i = 0; i < nruns && off < 0; i++) {
            const broker_run *r = &runs[last ? nruns - 1 - i : i];
            for (int64_t o = last ? r->to - 1 : r->from; o >= r->from && o < r->to && off < 0;
                 o += last ? -1 : 1) {
                if (last) {
                    while (d > 0 && del[d - 1] > o)
                        d--;
                    off = d > 0 && del[d - 1] == o ? -1 : o;
                } else {
                    while (d < ndel && del[d] < o)
                        d++;
                    off = d < ndel && del[d] == o ? -1 : o;
                }
            }
        }
        free(runs);
        free(del);
        if (off >= 0 || (lo == ls && hi == end))
            return off;
    }
}

/* The stream's first or last entry, or nil. */
static void edge_entry(rconn *rc, resp_w *w, const sref *s, bool last)
{
    int64_t off = edge_offset(rc, s, last);
    if (off < 0) {
        resp_w_null(w);
        return;
    }
    td_buf b;
    td_buf_init(&b);
    size_t n = 0;
    int64_t next;
    const td_sid all = {UINT64_MAX, UINT64_MAX};
    if (resp_read_entries(rc, s, off, all, 1, &b, &n, &next, NULL) == 0 && n == 1)
        td_buf_append(w->b, b.p, b.len);
    else
        resp_w_null(w);
    td_buf_free(&b);
}

/* Collects consumer names (the visitor may not call back into the groups). */
typedef struct name_list {
    td_buf names; /* each: size_t length, then the bytes */
    td_buf seen;  /* int64_t per name */
    td_buf pel;   /* size_t per name: its pending entries */
    size_t n;
} name_list;

static void collect_consumer(void *arg, const xconsumer_info *c)
{
    name_list *l = arg;
    td_buf_append(&l->names, &c->name.n, sizeof(c->name.n));
    td_buf_append(&l->names, c->name.p, c->name.n);
    td_buf_append(&l->seen, &c->seen_ms, sizeof(c->seen_ms));
    td_buf_append(&l->pel, &c->pending, sizeof(c->pending));
    l->n++;
}

static void full_group(info_out *o, const xgroup_info *g)
{
    td_engine *e = o->rc->s->e;
    const td_sid lo = {0, 0}, hi = {UINT64_MAX, UINT64_MAX};
    resp_w_map(&o->w, 7);
    resp_w_str(&o->w, "name");
    resp_w_bulk(&o->w, g->name.p, g->name.n);
    resp_w_str(&o->w, "last-delivered-id");
    resp_w_id(&o->w, g->last_id);
    group_read_lag(&o->w, g);
    resp_w_str(&o->w, "pel-count");
    resp_w_int(&o->w, (int64_t)g->pending);
    resp_w_str(&o->w, "pending");
    td_buf sub;
    td_buf_init(&sub);
    pend_out so = {.w = {&sub, o->w.proto, false}};
    xgroup_pending(e, o->xs, g->name, lo, hi, td_slice_make(NULL, 0), 0, o->count, 0, pend_one,
                   &so);
    resp_w_array(&o->w, so.n);
    td_buf_append(o->w.b, sub.p, sub.len);
    resp_w_str(&o->w, "consumers");
    name_list l = {.n = 0};
    td_buf_init(&l.names);
    td_buf_init(&l.seen);
    td_buf_init(&l.pel);
    xgroup_info gi;
    xgroup_consumers(e, o->xs, g->name, &gi, collect_consumer, &l);
    resp_w_array(&o->w, l.n);
    size_t at = 0;
    for (size_t i = 0; i < l.n; i++) {
        size_t len;
        memcpy(&len, l.names.p + at, sizeof(len));
        td_slice name = td_slice_make(l.names.p + at + sizeof(len), len);
        at += sizeof(len) + len;
        int64_t seen;
        size_t pel;
        memcpy(&seen, l.seen.p + i * sizeof(seen), sizeof(seen));
        memcpy(&pel, l.pel.p + i * sizeof(pel), sizeof(pel));
        sub.len = 0;
        so.n = 0;
        so.no_consumer = true;
        xgroup_pending(e, o->xs, g->name, lo, hi, name, 0, o->count, 0, pend_one, &so);
        resp_w_map(&o->w, 4);
        resp_w_str(&o->w, "name");
        resp_w_bulk(&o->w, name.p, name.n);
        resp_w_str(&o->w, "seen-time");
        resp_w_int(&o->w, seen);
        resp_w_str(&o->w, "pel-count");
        resp_w_int(&o->w, (int64_t)pel);
        resp_w_str(&o->w, "pending");
        resp_w_array(&o->w, so.n);
        td_buf_append(o->w.b, sub.p, sub.len);
    }
    o->w.oom |= so.w.oom;
    td_buf_free(&sub);
    td_buf_free(&l.names);
    td_buf_free(&l.seen);
    td_buf_free(&l.pel);
}

/* XINFO STREAM's options, after the key as in Redis: [FULL [COUNT n]] (a negative COUNT is
 * 10, 0 is all); false after answering the error. */
static bool xinfo_stream_opts(resp_w *w, size_t argc, const td_slice *argv, bool *full,
                              long long *count)
{
    *full = false;
    *count = 10;
    if (argc == 3)
        return true;
    if ((argc != 4 && argc != 6) || !resp_arg_is(argv[3], "full") ||
        (argc == 6 && !resp_arg_is(argv[4], "count"))) {
        resp_w_errorf(w,
                      "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                      "XINFO HELP.",
                      (int)TD_MIN(argv[1].n, 128), (const char *)argv[1].p);
        return false;
    }
    *full = true;
    if (argc == 6 && !resp_arg_ll(w, argv[5], count))
        return false;
    if (*count < 0)
        *count = 10;
    return true;
}

static void xinfo_stream_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    bool full;
    long long count;
    sref s;
    if (!xinfo_stream(rc, w, argv[2], &s))
        return;
    if (!xinfo_stream_opts(w, argc, argv, &full, &count)) {
        broker_topic_release(s.ref);
        return;
    }
    xstream xs = resp_xstream(&s);
    td_sid last, first = {0, 0}, max_deleted;
    broker_stream_last(s.p, &last);
    int64_t ls = broker_part_log_start(s.p), hw = broker_part_high_watermark(s.p), first_off, *none;
    size_t nnone;
    if ((first_off = edge_offset(rc, &s, false)) >= 0)
        broker_stream_id(s.p, first_off, &first, NULL);
    xstream_deleted(rc->s->e, &xs, 0, 0, &none, &nnone, &max_deleted);
    free(none);
    group_list gl;
    group_list_get(rc, &xs, &gl);
    resp_w_map(w, full ? 9 : 10);
    resp_w_str(w, "length");
    resp_w_int(w, resp_stream_len(rc, &s));
    /* The nodes Redis would hold (xnodes.c). */
    int64_t rkeys = 0, rnodes = 1;
    if (resp_xnodes_radix(rc, &s, &rkeys, &rnodes) != 0)
        TD_WARN("redis", "XINFO STREAM on %s: the node model failed", broker_topic_name(s.ref));
    resp_w_str(w, "radix-tree-keys");
    resp_w_int(w, rkeys);
    resp_w_str(w, "radix-tree-nodes");
    resp_w_int(w, rnodes);
    resp_w_str(w, "last-generated-id");
    resp_w_id(w, last);
    resp_w_str(w, "max-deleted-entry-id");
    resp_w_id(w, max_deleted);
    resp_w_str(w, "entries-added"); /* Redis prints its uint64_t signed */
    resp_w_int(w, (int64_t)broker_stream_added(s.p, hw));
    resp_w_str(w, "recorded-first-entry-id");
    resp_w_id(w, first);
    if (!full) {
        resp_w_str(w, "groups");
        resp_w_int(w, (int64_t)gl.n);
        resp_w_str(w, "first-entry");
        edge_entry(rc, w, &s, false);
        resp_w_str(w, "last-entry");
        edge_entry(rc, w, &s, true);
    } else {
        resp_w_str(w, "entries");
        td_buf b;
        td_buf_init(&b);
        size_t n = 0;
        int64_t next;
        const td_sid all = {UINT64_MAX, UINT64_MAX};
        int r = resp_read_entries(rc, &s, ls, all, (size_t)count, &b, &n, &next, NULL);
        resp_w_array(w, r == 0 ? n : 0);
        if (r == 0)
            td_buf_append(w->b, b.p, b.len);
        td_buf_free(&b);
        resp_w_str(w, "groups");
        resp_w_array(w, gl.n);
        info_out o = {.w = *w, .rc = rc, .xs = &xs, .count = (size_t)count};
        for (size_t i = 0; i < gl.n; i++)
            full_group(&o, &gl.v[i]);
        w->oom |= o.w.oom;
    }
    w->oom |= gl.oom;
    group_list_free(&gl);
    broker_topic_release(s.ref);
}

const rcmd resp_xinfo_subs[] = {
    {"consumers", 4, RF_READONLY, xinfo_consumers, "stream",
     "Returns a list of the consumers in a consumer group.", "5.0.0", 2, 2, 1, NULL,
     "@read @stream @slow"},
    {"groups", 3, RF_READONLY, xinfo_groups, "stream",
     "Returns a list of the consumer groups of a stream.", "5.0.0", 2, 2, 1, NULL,
     "@read @stream @slow"},
    {"help", 2, RF_LOADING | RF_STALE, xinfo_help, "stream",
     "Returns helpful text about the different subcommands.", "5.0.0", 0, 0, 0, NULL,
     "@stream @slow"},
    {"stream", -3, RF_READONLY, xinfo_stream_cmd, "stream", "Returns information about a stream.",
     "5.0.0", 2, 2, 1, NULL, "@read @stream @slow"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
