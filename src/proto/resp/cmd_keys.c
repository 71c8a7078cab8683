/*
 * cmd_keys.c: the Redis listener's keyspace commands (docs/redis.md): DBSIZE, KEYS, SCAN, TYPE,
 * EXISTS, DEL, UNLINK, FLUSHALL and FLUSHDB, with Redis 7.0's replies and error texts. A stream
 * key is a topic: the keyspace is the topics.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/resp/resp_int.h"

/* ---------------------------------------------------------------------------------------------
 * Keys and topics (docs/redis.md#keys-and-topics): a key is the topic td_key_to_name makes of
 * it; "T/N" (N a canonical decimal) is partition N of the topic of T when no topic holds the
 * key "T/N" itself and T's topic exists with more than N partitions.
 */
bool resp_topic_name(td_slice key, char name[TD_TOPIC_NAME_MAX + 1])
{
    return td_key_to_name(key.p, key.n, name) >= 0;
}

/* The partition number of a key "T/N": the offset of its last '/' and N, or false when the key
 * has no such suffix (N is "0" or a decimal without a leading zero, at most INT32_MAX). */
static bool partition_suffix(td_slice key, size_t *slash, int32_t *part)
{
    size_t i = key.n;
    while (i > 0 && key.p[i - 1] >= '0' && key.p[i - 1] <= '9')
        i--;
    size_t digits = key.n - i;
    if (i == 0 || key.p[i - 1] != '/' || digits == 0 || digits > 10 ||
        (digits > 1 && key.p[i] == '0'))
        return false;
    long long v;
    if (!resp_parse_ll(key.p + i, digits, &v) || v > INT32_MAX)
        return false;
    *slash = i - 1;
    *part = (int32_t)v;
    return true;
}

/* The partitions of topic `name`, or 0 when there is no such topic. */
static int32_t topic_partitions(td_engine *e, const char *name)
{
    td_topic_ref *ref;
    if (broker_topic_acquire(e, name, &ref) != 0) {
        td_error_clear();
        return 0;
    }
    int32_t n = broker_topic_partitions(ref);
    broker_topic_release(ref);
    return n;
}

int resp_key_resolve(td_engine *e, td_slice key, resp_skey *k)
{
    k->part = -1;
    bool whole = td_key_to_name(key.p, key.n, k->topic) >= 0;
    size_t slash;
    int32_t part;
    if (!partition_suffix(key, &slash, &part) || (whole && topic_partitions(e, k->topic) > 0))
        return whole ? 0 : -1;
    /* enc(T) is shorter than enc(T/N), so it fits whenever that does; it may fit when that
     * does not, and then the key can only be a partition. */
    char t[TD_TOPIC_NAME_MAX + 1];
    if (td_key_to_name(key.p, slash, t) >= 0 && topic_partitions(e, t) > part) {
        memcpy(k->topic, t, sizeof(t));
        k->part = part;
        return 0;
    }
    return whole ? 0 : -1;
}

/* Whether a key names a topic, or a partition of one. */
static bool topic_exists(rconn *rc, td_slice key)
{
    resp_skey k;
    if (resp_key_resolve(rc->s->e, key, &k) != 0)
        return false;
    return topic_partitions(rc->s->e, k.topic) > TD_MAX(k.part, 0);
}

/* A topic's key into the reply (every valid name has one; a name that had none, which storage
 * cannot hold, would be written as it is). */
static void reply_key(resp_w *w, const char *name)
{
    size_t n = strlen(name);
    uint8_t key[TD_TOPIC_NAME_MAX];
    ssize_t kn = td_name_to_key(name, n, key, sizeof(key));
    if (kn >= 0)
        resp_w_bulk(w, key, (size_t)kn);
    else
        resp_w_bulk(w, name, n);
}

void resp_cmd_dbsize(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    td_topic_info *t = NULL;
    size_t n = 0;
    if (td_topic_list(rc->s->e, &t, &n) != 0)
        n = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) /* the keys the principal may see */
        k += resp_may_describe(rc, t[i].name);
    free(t);
    resp_w_int(w, (int64_t)k);
}

/* Whether the key of topic `name` matches a KEYS or SCAN pattern (Redis's glob, on keys). As
 * Redis, "*" alone matches every key without matching, so that it lists the empty key, which
 * the glob itself matches to no pattern but the empty one. */
static bool key_matches(td_slice pattern, const char *name)
{
    uint8_t key[TD_TOPIC_NAME_MAX];
    ssize_t kn = td_name_to_key(name, strlen(name), key, sizeof(key));
    return kn >= 0 && ((pattern.n == 1 && pattern.p[0] == '*') ||
                       resp_glob_match((const char *)pattern.p, pattern.n, (const char *)key,
                                       (size_t)kn, false));
}

void resp_cmd_keys(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    td_topic_info *t = NULL;
    size_t n = 0, k = 0;
    if (td_topic_list(rc->s->e, &t, &n) != 0)
        n = 0;
    /* Topics the principal may not Describe are left out, as Kafka's Metadata leaves them. */
    bool *show = calloc(n ? n : 1, sizeof(*show));
    for (size_t i = 0; show && i < n; i++) {
        show[i] = key_matches(argv[1], t[i].name) && resp_may_describe(rc, t[i].name);
        k += show[i];
    }
    if (!show) {
        free(t);
        resp_w_error(w, "ERR out of memory");
        return;
    }
    resp_w_array(w, k);
    for (size_t i = 0; i < n; i++)
        if (show[i])
            reply_key(w, t[i].name);
    free(show);
    free(t);
}

/* SCAN's order: a hash of the name (63 bits, so that every client reads the cursor as a
 * positive 64-bit integer), then the name. A cursor is the hash to go on from: names that stay
 * the whole scan are returned once each, whatever is created or deleted meanwhile. */
static uint64_t scan_hash(const char *s)
{
    uint64_t h = td_hash64(s, strlen(s));
    h ^= h >> 29;
    return h >> 1;
}

typedef struct scan_item {
    uint64_t h;
    const char *name;
} scan_item;

static int scan_cmp(const void *a, const void *b)
{
    const scan_item *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h ? 1 : strcmp(x->name, y->name);
}

void resp_cmd_scan(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    char buf[32];
    if (argv[1].n == 0 || argv[1].n >= sizeof(buf)) {
        resp_w_error(w, "ERR invalid cursor");
        return;
    }
    memcpy(buf, argv[1].p, argv[1].n);
    buf[argv[1].n] = 0;
    char *end;
    errno = 0;
    unsigned long long cursor = strtoull(buf, &end, 10);
    if (errno || *end || buf[0] == '-') {
        resp_w_error(w, "ERR invalid cursor");
        return;
    }
    td_slice match = {0};
    long long countv = 10;
    bool type_stream = true;
    for (size_t i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            resp_reply_syntax(w);
            return;
        }
        if (resp_arg_is(argv[i], "MATCH")) {
            match = argv[i + 1];
        } else if (resp_arg_is(argv[i], "COUNT")) {
            if (!resp_arg_ll(w, argv[i + 1], &countv))
                return;
            if (countv < 1) {
                resp_reply_syntax(w);
                return;
            }
        } else if (resp_arg_is(argv[i], "TYPE")) {
            type_stream = resp_arg_is(argv[i + 1], "stream");
        } else {
            resp_reply_syntax(w);
            return;
        }
    }
    td_topic_info *t = NULL;
    size_t n = 0;
    if (td_topic_list(rc->s->e, &t, &n) != 0)
        n = 0;
    scan_item *v = malloc((n ? n : 1) * sizeof(*v));
    if (!v) {
        free(t);
        resp_w_error(w, "ERR out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (scan_item){scan_hash(t[i].name), t[i].name};
    qsort(v, n, sizeof(*v), scan_cmp);
    size_t from = 0;
    while (from < n && v[from].h < cursor)
        from++;
    size_t to = from;
    while (to < n && (to - from < (size_t)countv || v[to].h == v[to - 1].h))
        to++;
    size_t k = 0;
    const char **out = malloc((to - from + 1) * sizeof(*out));
    for (size_t i = from; out && i < to; i++)
        if (type_stream && (!match.p || key_matches(match, v[i].name)) &&
            resp_may_describe(rc, v[i].name)) /* as KEYS: what may be seen */
            out[k++] = v[i].name;
    resp_w_array(w, 2);
    resp_w_bulk_int(w, to < n ? (int64_t)v[to - 1].h + 1 : 0);
    resp_w_array(w, k);
    for (size_t i = 0; i < k; i++)
        reply_key(w, out[i]);
    free(out);
    free(v);
    free(t);
}

void resp_cmd_type(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    bool found = resp_notify_lookup(rc, topic_exists(rc, argv[1]), argv[1]); /* keymiss */
    resp_w_simple(w, found ? "stream" : "none");
}

void resp_cmd_exists(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++)
        n += resp_notify_lookup(rc, topic_exists(rc, argv[i]), argv[i]);
    resp_w_int(w, n);
}

/* DEL and UNLINK: the count of topics deleted. Redis's DEL cannot fail, ours can (the storage
 * failed): then the reply is an error with the reason, never a count that hides the failure;
 * the keys before the failing one are deleted, and the error says how many. A key that names a
 * partition ("T/N") deletes nothing: a topic loses no partition. */
void resp_cmd_del(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++) {
        resp_skey k;
        const char *name = k.topic;
        int r = resp_key_resolve(rc->s->e, argv[i], &k) == 0 && k.part < 0
                    ? td_topic_delete(rc->s->e, name)
                    : TD_ENOTFOUND;
        if (r == 0) {
            n++;
            TD_INFO("redis", "deleted topic %s (DEL from %s)", name, rc->addr);
            resp_notify(rc, RESP_NOTIFY_GENERIC, "del", argv[i]);
        } else if (r != TD_ENOTFOUND) {
            const char *why = td_last_error();
            resp_w_errorf(w, "ERR cannot delete '%s' (%" PRId64 " keys before it deleted): %s",
                          name, n, why[0] ? why : td_strerror(r));
            return;
        }
    }
    td_error_clear();
    resp_w_int(w, n);
}

void resp_cmd_flush(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    if (argc > 2 ||
        (argc == 2 && !resp_arg_is(argv[1], "ASYNC") && !resp_arg_is(argv[1], "SYNC"))) {
        resp_reply_syntax(w);
        return;
    }
    if (!rc->s->cfg.allow_flush) {
        resp_w_errorf(w,
                      "ERR %s is disabled on this broker: it deletes every topic. Set "
                      "redis.allow.flush=true in its configuration to allow it",
                      resp_arg_is(argv[0], "flushall") ? "FLUSHALL" : "FLUSHDB");
        return;
    }
    td_topic_info *t = NULL;
    size_t n = 0;
    int lr = td_topic_list(rc->s->e, &t, &n);
    if (lr) {
        resp_reply_engine_error(w, lr);
        return;
    }
    size_t deleted = 0, failed = 0;
    char why[512] = "";
    for (size_t i = 0; i < n; i++) {
        int r = td_topic_delete(rc->s->e, t[i].name);
        if (r == 0) {
            deleted++;
        } else if (r != TD_ENOTFOUND && failed++ == 0) { /* TD_ENOTFOUND: deleted meanwhile */
            const char *d = td_last_error();
            snprintf(why, sizeof(why), "'%s': %s", t[i].name, d[0] ? d : td_strerror(r));
        }
    }
    td_error_clear();
    TD_WARN("redis", "%.*s from %s deleted %zu topics", (int)argv[0].n, (const char *)argv[0].p,
            rc->addr, deleted);
    free(t);
    if (failed)
        resp_w_errorf(w, "ERR %s deleted %zu topics, %zu could not be deleted; the first, %s",
                      resp_arg_is(argv[0], "flushall") ? "FLUSHALL" : "FLUSHDB", deleted, failed,
                      why);
    else
        resp_w_simple(w, "OK");
}
