/*
 * authz.c: who may do what on the Redis listener (docs/redis.md#authentication-and-acls).
 *
 * Authentication: AUTH and HELLO AUTH check the user `default` against redis.password and
 * every other name against the tidings user store (td_user_verify). Authorization: one table
 * maps every command of resp_commands to Kafka's resources and operations, and
 * resp_authorize asks broker_authorize before the command runs, so that what a principal may
 * not do through Kafka it cannot do through Redis either. A stream key is a topic, a Pub/Sub
 * channel is checked as the topic of its name, and consumer groups are groups.
 *
 * ACL LOG keeps the recent authentication failures and refusals as Redis does: a bounded ring
 * (ACL_LOG_MAX entries), an entry's count going up while the same failure repeats.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/scram.h"
#include "broker/audit.h"
#include "broker/authz.h"
#include "proto/resp/resp_int.h"

/* ---------------------------------------------------------------------------------------------
 * The permission table
 */
typedef enum kspec {
    K_NONE,    /* no topic */
    K_ARG1,    /* argv[1] is a stream key */
    K_ALL,     /* argv[1..] are keys (DEL, EXISTS, WATCH) */
    K_STREAMS, /* the keys after STREAMS (XREAD, XREADGROUP) */
    K_ARG2,    /* argv[2]: the key of a subcommand (XGROUP CREATE key ...) */
    K_CHAN1,   /* argv[1] is a channel (PUBLISH) */
    K_CHANS,   /* argv[1..] are channels or patterns (SUBSCRIBE, PSUBSCRIBE) */
} kspec;

enum {
    C_NONE = 0,
    C_XADD,     /* XADD creates a missing topic: Create on it (or on the cluster) */
    C_MKSTREAM, /* XGROUP CREATE ... MKSTREAM creates a missing topic */
    C_ACL_LOG,  /* ACL LOG RESET changes the log: Alter on the cluster, else Describe */
};

typedef struct resp_perm {
    const char *name; /* the full name, "xgroup|create"; the table is sorted by it */
    uint8_t keys;     /* kspec */
    uint8_t key_op;   /* td_acl_op on each topic */
    uint8_t group;    /* the argument naming a consumer group, 0 for none */
    uint8_t group_op;
    uint8_t cluster_op; /* td_acl_op on the cluster, 0 for none */
    uint8_t special;
} resp_perm;

#define R TD_OP_READ
#define W TD_OP_WRITE
#define D TD_OP_DELETE
#define DE TD_OP_DESCRIBE
#define A TD_OP_ALTER
/* Every command the listener knows has an entry (tests/unit/test_resp_authz.c checks it); a
 * command without one is refused to everyone but administrators. The Kafka analogues: XADD is
 * Produce (Write, and Create when it makes the topic); reads are Fetch (Read); XLEN, XINFO,
 * TYPE and EXISTS are ListOffsets and Metadata (Describe); the group commands are OffsetCommit
 * and OffsetFetch (Read on the topic and the group), XGROUP DESTROY is DeleteGroups (Delete on
 * the group); XTRIM and XDEL are DeleteRecords and DEL DeleteTopics (Delete on the topic);
 * XSETID alters the stream (Alter); FLUSHALL, FLUSHDB, CONFIG SET, CLIENT KILL and the ACL
 * changes are the administrator's (Alter on the cluster), what lists users, connections,
 * settings or channels needs Describe (DescribeConfigs) on the cluster. KEYS, SCAN and DBSIZE
 * need nothing: they leave out the topics the principal may not Describe. */
static const resp_perm perms[] = {
    {"acl|cat", K_NONE, 0, 0, 0, 0, 0},
    {"acl|deluser", K_NONE, 0, 0, 0, A, 0},
    {"acl|dryrun", K_NONE, 0, 0, 0, DE, 0},
    {"acl|genpass", K_NONE, 0, 0, 0, 0, 0},
    {"acl|getuser", K_NONE, 0, 0, 0, DE, 0},
    {"acl|help", K_NONE, 0, 0, 0, 0, 0},
    {"acl|list", K_NONE, 0, 0, 0, DE, 0},
    {"acl|load", K_NONE, 0, 0, 0, A, 0},
    {"acl|log", K_NONE, 0, 0, 0, DE, C_ACL_LOG},
    {"acl|save", K_NONE, 0, 0, 0, A, 0},
    {"acl|setuser", K_NONE, 0, 0, 0, A, 0},
    {"acl|users", K_NONE, 0, 0, 0, DE, 0},
    {"acl|whoami", K_NONE, 0, 0, 0, 0, 0},
    {"auth", K_NONE, 0, 0, 0, 0, 0},
    {"client|getname", K_NONE, 0, 0, 0, 0, 0},
    {"client|help", K_NONE, 0, 0, 0, 0, 0},
    {"client|id", K_NONE, 0, 0, 0, 0, 0},
    {"client|info", K_NONE, 0, 0, 0, 0, 0},
    {"client|kill", K_NONE, 0, 0, 0, A, 0},
    {"client|list", K_NONE, 0, 0, 0, DE, 0},
    {"client|no-evict", K_NONE, 0, 0, 0, 0, 0},
    {"client|no-touch", K_NONE, 0, 0, 0, 0, 0},
    {"client|reply", K_NONE, 0, 0, 0, 0, 0},
    {"client|setinfo", K_NONE, 0, 0, 0, 0, 0},
    {"client|setname", K_NONE, 0, 0, 0, 0, 0},
    {"client|unblock", K_NONE, 0, 0, 0, A, 0},
    {"command", K_NONE, 0, 0, 0, 0, 0},
    {"command|count", K_NONE, 0, 0, 0, 0, 0},
    {"command|docs", K_NONE, 0, 0, 0, 0, 0},
    {"command|getkeys", K_NONE, 0, 0, 0, 0, 0},
    {"command|getkeysandflags", K_NONE, 0, 0, 0, 0, 0},
    {"command|help", K_NONE, 0, 0, 0, 0, 0},
    {"command|info", K_NONE, 0, 0, 0, 0, 0},
    {"command|list", K_NONE, 0, 0, 0, 0, 0},
    {"config|get", K_NONE, 0, 0, 0, TD_OP_DESCRIBE_CONFIGS, 0},
    {"config|help", K_NONE, 0, 0, 0, 0, 0},
    {"config|resetstat", K_NONE, 0, 0, 0, A, 0},
    {"config|set", K_NONE, 0, 0, 0, A, 0},
    {"dbsize", K_NONE, 0, 0, 0, 0, 0},
    {"del", K_ALL, D, 0, 0, 0, 0},
    {"discard", K_NONE, 0, 0, 0, 0, 0},
    {"echo", K_NONE, 0, 0, 0, 0, 0},
    {"exec", K_NONE, 0, 0, 0, 0, 0},
    {"exists", K_ALL, DE, 0, 0, 0, 0},
    {"flushall", K_NONE, 0, 0, 0, A, 0},
    {"flushdb", K_NONE, 0, 0, 0, A, 0},
    {"function|flush", K_NONE, 0, 0, 0, 0, 0}, /* there are no functions */
    {"function|help", K_NONE, 0, 0, 0, 0, 0},
    {"function|list", K_NONE, 0, 0, 0, 0, 0},
    {"hello", K_NONE, 0, 0, 0, 0, 0},
    {"info", K_NONE, 0, 0, 0, 0, 0},
    {"keys", K_NONE, 0, 0, 0, 0, 0},
    {"latency|doctor", K_NONE, 0, 0, 0, DE, 0},
    {"latency|graph", K_NONE, 0, 0, 0, DE, 0},
    {"latency|help", K_NONE, 0, 0, 0, 0, 0},
    {"latency|histogram", K_NONE, 0, 0, 0, DE, 0},
    {"latency|history", K_NONE, 0, 0, 0, DE, 0},
    {"latency|latest", K_NONE, 0, 0, 0, DE, 0},
    {"latency|reset", K_NONE, 0, 0, 0, A, 0},
    {"monitor", K_NONE, 0, 0, 0, A, 0}, /* sees every client's commands and data */
    {"multi", K_NONE, 0, 0, 0, 0, 0},
    {"ping", K_NONE, 0, 0, 0, 0, 0},
    {"psubscribe", K_CHANS, R, 0, 0, 0, 0},
    {"publish", K_CHAN1, W, 0, 0, 0, 0},
    {"pubsub|channels", K_NONE, 0, 0, 0, DE, 0},
    {"pubsub|help", K_NONE, 0, 0, 0, 0, 0},
    {"pubsub|numpat", K_NONE, 0, 0, 0, 0, 0},
    {"pubsub|numsub", K_NONE, 0, 0, 0, 0, 0},
    {"pubsub|shardchannels", K_NONE, 0, 0, 0, DE, 0},
    {"pubsub|shardnumsub", K_NONE, 0, 0, 0, 0, 0},
    {"punsubscribe", K_NONE, 0, 0, 0, 0, 0},
    {"quit", K_NONE, 0, 0, 0, 0, 0},
    {"reset", K_NONE, 0, 0, 0, 0, 0},
    {"role", K_NONE, 0, 0, 0, 0, 0},
    {"scan", K_NONE, 0, 0, 0, 0, 0},
    {"select", K_NONE, 0, 0, 0, 0, 0},
    {"slowlog|get", K_NONE, 0, 0, 0, DE, 0},
    {"slowlog|help", K_NONE, 0, 0, 0, 0, 0},
    {"slowlog|len", K_NONE, 0, 0, 0, DE, 0},
    {"slowlog|reset", K_NONE, 0, 0, 0, A, 0},
    {"spublish", K_CHAN1, W, 0, 0, 0, 0},
    {"ssubscribe", K_CHANS, R, 0, 0, 0, 0},
    {"subscribe", K_CHANS, R, 0, 0, 0, 0},
    {"sunsubscribe", K_NONE, 0, 0, 0, 0, 0},
    {"time", K_NONE, 0, 0, 0, 0, 0},
    {"type", K_ARG1, DE, 0, 0, 0, 0},
    {"unlink", K_ALL, D, 0, 0, 0, 0},
    {"unsubscribe", K_NONE, 0, 0, 0, 0, 0},
    {"unwatch", K_NONE, 0, 0, 0, 0, 0},
    {"wait", K_NONE, 0, 0, 0, 0, 0},
    {"watch", K_ALL, DE, 0, 0, 0, 0},
    {"xack", K_ARG1, R, 2, R, 0, 0},
    {"xadd", K_ARG1, W, 0, 0, 0, C_XADD},
    {"xautoclaim", K_ARG1, R, 2, R, 0, 0},
    {"xclaim", K_ARG1, R, 2, R, 0, 0},
    {"xdel", K_ARG1, D, 0, 0, 0, 0},
    {"xgroup|create", K_ARG2, R, 3, R, 0, C_MKSTREAM},
    {"xgroup|createconsumer", K_ARG2, R, 3, R, 0, 0},
    {"xgroup|delconsumer", K_ARG2, R, 3, R, 0, 0},
    {"xgroup|destroy", K_ARG2, R, 3, D, 0, 0},
    {"xgroup|help", K_NONE, 0, 0, 0, 0, 0},
    {"xgroup|policy", K_ARG2, R, 3, R, 0, 0},
    {"xgroup|setid", K_ARG2, R, 3, R, 0, 0},
    {"xinfo|consumers", K_ARG2, DE, 3, DE, 0, 0},
    {"xinfo|groups", K_ARG2, DE, 0, 0, 0, 0},
    {"xinfo|help", K_NONE, 0, 0, 0, 0, 0},
    {"xinfo|stream", K_ARG2, DE, 0, 0, 0, 0},
    {"xkeyrange", K_ARG1, R, 0, 0, 0, 0},   /* an entity's events: Read, as XRANGE */
    {"xkeyversion", K_ARG1, R, 0, 0, 0, 0}, /* names its latest event: Read, as HTTP's */
    {"xlen", K_ARG1, DE, 0, 0, 0, 0},
    {"xpending", K_ARG1, R, 2, R, 0, 0},
    {"xrange", K_ARG1, R, 0, 0, 0, 0},
    {"xread", K_STREAMS, R, 0, 0, 0, 0},
    {"xreadgroup", K_STREAMS, R, 2, R, 0, 0},
    {"xrevrange", K_ARG1, R, 0, 0, 0, 0},
    {"xsetid", K_ARG1, A, 0, 0, 0, 0},
    {"xtrim", K_ARG1, D, 0, 0, 0, 0},
};
#undef R
#undef W
#undef D
#undef DE
#undef A

static int perm_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const resp_perm *)elem)->name);
}

const void *resp_perm_find(const char *fullname)
{
    return bsearch(fullname, perms, sizeof(perms) / sizeof(perms[0]), sizeof(perms[0]), perm_cmp);
}

/* ---------------------------------------------------------------------------------------------
 * Metrics, the log, ACL LOG
 */
#define ACL_LOG_MAX 128        /* Redis's acllog-max-len default */
#define ACL_LOG_GROUP_MS 60000 /* Redis groups a repeated failure within 60 s into one */
#define ACL_LOG_OBJECT_MAX 128
#define ACL_LOG_INFO_MAX 512

typedef struct acl_entry {
    char reason[8];  /* auth, command, key, channel */
    char context[9]; /* toplevel, multi */
    char object[ACL_LOG_OBJECT_MAX + 1];
    size_t object_len; /* binary-safe (a key) */
    char user[TD_USER_NAME_MAX + 1];
    char client_info[ACL_LOG_INFO_MAX];
    int64_t created_ms, updated_ms;
    uint64_t count;
} acl_entry;

struct resp_acl_log {
    pthread_mutex_t mu;
    acl_entry *v; /* v[0] the newest */
    size_t n;
};

int resp_authz_create(resp_server *s)
{
    td_metrics *m = broker_metrics(s->e);
    td_metric_family *ff = td_metrics_family(m, TD_COUNTER, "tidings_auth_failures_total",
                                             "Failed authentications, by protocol and mechanism.",
                                             "protocol,mechanism", NULL, 0);
    td_metric_family *fd =
        td_metrics_family(m, TD_COUNTER, "tidings_security_denied_total",
                          "Requests refused by a security check, by protocol and reason.",
                          "protocol,reason", NULL, 0);
    s->m_auth_failed = td_metric_get(ff, (const char *const[]){"redis", "password"});
    s->m_denied_acl = td_metric_get(fd, (const char *const[]){"redis", "acl"});
    s->m_denied_unauth = td_metric_get(fd, (const char *const[]){"redis", "unauthenticated"});
    s->acl_log = calloc(1, sizeof(*s->acl_log));
    if (!s->acl_log)
        return -ENOMEM;
    s->acl_log->v = calloc(ACL_LOG_MAX, sizeof(acl_entry));
    if (!s->acl_log->v) {
        free(s->acl_log);
        s->acl_log = NULL;
        return -ENOMEM;
    }
    pthread_mutex_init(&s->acl_log->mu, NULL);
    return 0;
}

void resp_authz_destroy(resp_server *s)
{
    if (!s->acl_log)
        return;
    pthread_mutex_destroy(&s->acl_log->mu);
    free(s->acl_log->v);
    free(s->acl_log);
    s->acl_log = NULL;
}

/* A user name or key for a log line: printable ASCII kept, anything else (a newline that would
 * forge a line, a control character) written as '?', cut at 64 bytes. */
static void printable(char *out, size_t cap, const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap && i < 64; i++)
        out[k++] = (p[i] >= ' ' && p[i] <= '~') ? p[i] : '?';
    if (n > 64 && k + 4 < cap)
        out[k++] = '.', out[k++] = '.', out[k++] = '.';
    out[k] = 0;
}

/* ACL LOG: adds an entry (reason "auth", "command", "key" or "channel"); object and user are
 * copied (and cut to their bounds). */
static void resp_acl_log_add(rconn *rc, const char *reason, bool in_multi, const char *object,
                             size_t object_len, const char *user, size_t user_len)
{
    resp_acl_log *l = rc->s->acl_log;
    if (!l)
        return;
    object_len = TD_MIN(object_len, (size_t)ACL_LOG_OBJECT_MAX);
    user_len = TD_MIN(user_len, (size_t)TD_USER_NAME_MAX);
    const char *ctx = in_multi ? "multi" : "toplevel";
    char info[ACL_LOG_INFO_MAX];
    td_buf b;
    td_buf_init(&b);
    pthread_mutex_lock(&rc->s->clients_mu);
    resp_client_line(rc, &b, true);
    pthread_mutex_unlock(&rc->s->clients_mu);
    size_t k = b.len && b.p[b.len - 1] == '\n' ? b.len - 1 : b.len; /* without its newline */
    k = TD_MIN(k, sizeof(info) - 1);
    memcpy(info, b.p ? (const char *)b.p : "", k);
    info[k] = 0;
    td_buf_free(&b);
    int64_t now = td_wall_ms();
    pthread_mutex_lock(&l->mu);
    size_t i = 0;
    for (; i < l->n; i++) { /* the same failure again, recently: counted in its entry */
        acl_entry *e = &l->v[i];
        if (!strcmp(e->reason, reason) && !strcmp(e->context, ctx) && e->object_len == object_len &&
            !memcmp(e->object, object, object_len) && strlen(e->user) == user_len &&
            !memcmp(e->user, user, user_len) && now - e->updated_ms < ACL_LOG_GROUP_MS)
            break;
    }
    acl_entry e;
    if (i < l->n) {
        e = l->v[i];
        e.count++;
    } else {
        memset(&e, 0, sizeof(e));
        snprintf(e.reason, sizeof(e.reason), "%s", reason);
        snprintf(e.context, sizeof(e.context), "%s", ctx);
        memcpy(e.object, object, object_len);
        e.object_len = object_len;
        memcpy(e.user, user, user_len);
        e.created_ms = now;
        e.count = 1;
        i = l->n < ACL_LOG_MAX ? l->n++ : ACL_LOG_MAX - 1; /* the oldest goes */
    }
    e.updated_ms = now;
    memcpy(e.client_info, info, sizeof(info));
    memmove(&l->v[1], &l->v[0], i * sizeof(acl_entry)); /* the newest first */
    l->v[0] = e;
    pthread_mutex_unlock(&l->mu);
}

/* ACL LOG [count | RESET]: the newest entries first, each as Redis 7.0 shows it. */
void resp_cmd_acl_log(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    resp_acl_log *l = rc->s->acl_log;
    long long max = 10;
    if (argc > 3) {
        resp_w_error(w, "ERR unknown subcommand or wrong number of arguments for 'LOG'. Try ACL "
                        "HELP.");
        return;
    }
    if (argc == 3) {
        if (resp_arg_is(argv[2], "RESET")) {
            pthread_mutex_lock(&l->mu);
            l->n = 0;
            pthread_mutex_unlock(&l->mu);
            TD_INFO("redis", "%s: ACL LOG reset by %s", rc->addr, resp_user(rc));
            resp_w_simple(w, "OK");
            return;
        }
        if (!resp_arg_ll(w, argv[2], &max))
            return;
    }
    int64_t now = td_wall_ms();
    pthread_mutex_lock(&l->mu);
    size_t n = max < 0 ? 0 : TD_MIN((size_t)max, l->n);
    resp_w_array(w, n);
    for (size_t i = 0; i < n; i++) {
        const acl_entry *e = &l->v[i];
        resp_w_map(w, 7);
        resp_w_str(w, "count");
        resp_w_int(w, (int64_t)e->count);
        resp_w_str(w, "reason");
        resp_w_str(w, e->reason);
        resp_w_str(w, "context");
        resp_w_str(w, e->context);
        resp_w_str(w, "object");
        resp_w_bulk(w, (const uint8_t *)e->object, e->object_len);
        resp_w_str(w, "username");
        resp_w_str(w, e->user);
        resp_w_str(w, "age-seconds");
        resp_w_double(w, (double)(now - e->created_ms) / 1000.0);
        resp_w_str(w, "client-info");
        resp_w_str(w, e->client_info);
    }
    pthread_mutex_unlock(&l->mu);
}

/* ---------------------------------------------------------------------------------------------
 * Authentication
 */
bool resp_auth_required(rconn *rc)
{
    pthread_mutex_lock(&rc->s->cfg_mu);
    bool has = rc->s->cfg.password[0] != 0;
    pthread_mutex_unlock(&rc->s->cfg_mu);
    return has || net_conn_auth_required(rc->c);
}

const char *resp_user(rconn *rc)
{
    const char *p = net_conn_principal(rc->c);
    return p ? p : "default";
}

static td_principal principal(rconn *rc, char *host, size_t cap)
{
    /* The peer without its port: "127.0.0.1:5000" -> "127.0.0.1", "[::1]:5000" -> "::1". */
    const char *peer = rc->addr;
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']')
        peer++, n -= 2;
    n = TD_MIN(n, cap - 1);
    memcpy(host, peer, n);
    host[n] = 0;
    return (td_principal){net_conn_principal(rc->c), host};
}

/* 0, or -ENOMEM: then the connection is back to what a new one is (anonymous, and not
 * authenticated where the listener asks for it), never left with the previous user. */
static int set_user(rconn *rc, const char *user)
{
    int r = net_conn_set_user(rc->c, user);
    if (r) {
        net_conn_set_user(rc->c, NULL);
        rc->authed = !resp_auth_required(rc);
    }
    resp_note_user(rc);
    return r;
}

void resp_note_user(rconn *rc)
{
    const char *p = net_conn_principal(rc->c); /* the user, else the certificate's name */
    pthread_mutex_lock(&rc->s->clients_mu);
    snprintf(rc->user, sizeof(rc->user), "%s", p ? p : "");
    pthread_mutex_unlock(&rc->s->clients_mu);
}

static void auth_failed(rconn *rc, resp_w *w, const char *user, size_t user_len)
{
    char u[80];
    printable(u, sizeof(u), user, user_len);
    td_counter_add(rc->s->m_auth_failed, 1);
    broker_audit(rc->s->e, TD_AUDIT_AUTH_FAILED, "redis", u, rc->addr,
                 "password: wrong password or no such user");
    resp_acl_log_add(rc, "auth", rc->in_exec, "AUTH", 4, user, user_len); /* in EXEC: multi */
    resp_w_error(w, "WRONGPASS invalid username-password pair or user is disabled.");
}

/* Whether the user store has a user named default. */
static bool default_user_exists(rconn *rc)
{
    td_scram_credential cr;
    bool exists = td_user_credential(rc->s->e, "default", TD_SCRAM_SHA_512, &cr) == 0 ||
                  td_user_credential(rc->s->e, "default", TD_SCRAM_SHA_256, &cr) == 0;
    memset(&cr, 0, sizeof(cr));
    td_error_clear();
    return exists;
}

bool resp_default_nopass(rconn *rc)
{
    return !resp_auth_required(rc) && !default_user_exists(rc);
}

/* The user `default`: redis.password when it is set (compared in constant time), else the
 * tidings user named default if there is one; with neither, any password passes (Redis's
 * `nopass` default user) unless the listener requires authentication. 1 pass, 0 fail, <0 an
 * engine error. *mapped: the principal the connection takes (NULL: anonymous). */
static int check_default(rconn *rc, td_slice pass, const char **mapped)
{
    char want[sizeof(rc->s->cfg.password)];
    pthread_mutex_lock(&rc->s->cfg_mu);
    memcpy(want, rc->s->cfg.password, sizeof(want));
    pthread_mutex_unlock(&rc->s->cfg_mu);
    *mapped = NULL;
    if (want[0]) {
        /* Both sides hashed first: the comparison's time tells nothing of the password. */
        uint8_t a[32], b[32];
        scram_hash(TD_SCRAM_SHA_256, want, strlen(want), a);
        scram_hash(TD_SCRAM_SHA_256, pass.p, pass.n, b);
        unsigned diff = 0;
        for (size_t i = 0; i < sizeof(a); i++)
            diff |= a[i] ^ b[i];
        memset(want, 0, sizeof(want));
        return diff == 0;
    }
    if (default_user_exists(rc)) {
        *mapped = "default";
        int r = td_user_verify(rc->s->e, "default", pass.p, pass.n);
        return r == 0 ? 1 : r == TD_EAUTH ? 0 : r;
    }
    return !net_conn_auth_required(rc->c);
}

bool resp_authenticate(rconn *rc, resp_w *w, const td_slice *user, td_slice pass)
{
    td_slice name = user ? *user : td_slice_make((const uint8_t *)"default", 7);
    bool is_default = name.n == 7 && !memcmp(name.p, "default", 7);
    const char *mapped = NULL;
    int r;
    if (is_default) {
        r = check_default(rc, pass, &mapped);
    } else {
        /* td_user_verify derives the key with PBKDF2 (4096 to 16384 HMACs: a few ms) on the
         * connection's loop; the loop's other connections wait that long. An unknown user
         * costs the same, so that timing does not tell which names exist. */
        char *n = resp_arg_str(rc, name);
        mapped = n;
        r = n && strlen(n) == name.n ? td_user_verify(rc->s->e, n, pass.p, pass.n) : TD_EAUTH;
        r = r == 0 ? 1 : r == TD_EAUTH ? 0 : r;
    }
    td_error_clear();
    if (r < 0) {
        resp_w_errorf(w, "ERR authentication failed: %s", td_strerror(r));
        return false;
    }
    if (r == 0) {
        auth_failed(rc, w, (const char *)name.p, name.n);
        return false;
    }
    if (set_user(rc, mapped) != 0) {
        resp_w_error(w, "ERR out of memory");
        return false;
    }
    rc->authed = true;
    return true;
}

void resp_refuse_unauthenticated(rconn *rc, const char *command)
{
    td_counter_add(rc->s->m_denied_unauth, 1);
    char c[80];
    printable(c, sizeof(c), command, strlen(command));
    broker_audit(rc->s->e, TD_AUDIT_UNAUTHENTICATED, "redis", net_conn_principal(rc->c), rc->addr,
                 "command '%s' (NOAUTH)", c);
}

/* ---------------------------------------------------------------------------------------------
 * Authorization
 */
bool resp_may_describe(rconn *rc, const char *topic)
{
    char host[64];
    td_principal p = principal(rc, host, sizeof(host));
    return broker_authorize(rc->s->e, &p, TD_RES_TOPIC, topic, TD_OP_DESCRIBE);
}

/* The topic a key names (resp_key_resolve: its own, or the topic of T for a partition key
 * "T/N"), NULL for a key whose topic name would be longer than 249 bytes: only an
 * administrator passes (such a key names no stream anyway). A channel's is the topic name of
 * its name, as for a key (ACL SETUSER's &pattern is mapped so, acl_rules.c); a channel is not
 * a topic, and may be longer: then its bytes escaped alike, which only "*" and prefix ACLs
 * can match. */
static char *key_topic_name(rconn *rc, td_slice key, bool channel)
{
    if (channel) {
        char name[TD_TOPIC_NAME_MAX + 1];
        if (resp_topic_name(key, name))
            return td_arena_strdup(&rc->arena, name);
        char *esc = td_arena_alloc(&rc->arena, 3 * key.n + 1);
        return esc && td_name_escape(key.p, key.n, esc, 3 * key.n + 1) >= 0 ? esc : NULL;
    }
    resp_skey k;
    if (resp_key_resolve(rc->s->e, key, &k) != 0)
        return NULL;
    return td_arena_strdup(&rc->arena, k.topic);
}

static void denied(rconn *rc, resp_w *w, bool in_multi, const char *reason, const char *what,
                   size_t what_len, const char *full)
{
    const char *user = resp_user(rc);
    char obj[80];
    printable(obj, sizeof(obj), what, what_len);
    td_counter_add(rc->s->m_denied_acl, 1);
    /* The principal as on the other protocols: the user or certificate name, else ANONYMOUS
     * (Redis's "default" without a user of that name). */
    if (!strcmp(reason, "command"))
        broker_audit(rc->s->e, TD_AUDIT_DENIED, "redis", net_conn_principal(rc->c), rc->addr,
                     "command '%s'", full);
    else
        broker_audit(rc->s->e, TD_AUDIT_DENIED, "redis", net_conn_principal(rc->c), rc->addr,
                     "%s '%s' (command '%s')", reason, obj, full);
    resp_acl_log_add(rc, reason, in_multi, what, what_len, user, strlen(user));
    if (!strcmp(reason, "key"))
        resp_w_error(w, "NOPERM this user has no permissions to access one of the keys used as "
                        "arguments");
    else if (!strcmp(reason, "channel"))
        resp_w_error(w, "NOPERM this user has no permissions to access one of the channels "
                        "used as arguments");
    else
        resp_w_errorf(w, "NOPERM this user has no permissions to run the '%s' command", full);
}

/* Whether the command may create the topic `name` and the principal may not: XADD to a missing
 * topic, XGROUP CREATE ... MKSTREAM. Create is asked first, so that the lookup of the topic is
 * made only for principals without it. */
static bool create_denied(rconn *rc, const td_principal *p, const resp_perm *pm, size_t argc,
                          const td_slice *argv, const char *name)
{
    if (pm->special == C_MKSTREAM) {
        bool mk = false;
        for (size_t i = 5; i < argc; i++)
            mk |= resp_arg_is(argv[i], "MKSTREAM");
        if (!mk)
            return false;
    } else if (pm->special != C_XADD) {
        return false;
    }
    if (broker_authorize(rc->s->e, p, TD_RES_TOPIC, name, TD_OP_CREATE) ||
        broker_authorize(rc->s->e, p, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_CREATE))
        return false;
    td_topic_info ti;
    bool exists = td_topic_describe(rc->s->e, name, &ti) == 0;
    td_error_clear();
    return !exists;
}

/* The range of key arguments [*from, *to) of a command. */
static void key_range(const resp_perm *pm, size_t argc, const td_slice *argv, size_t *from,
                      size_t *to)
{
    *from = *to = 0;
    switch (pm->keys) {
    case K_ARG1:
    case K_CHAN1:
        *from = 1, *to = argc > 1 ? 2 : 1;
        break;
    case K_ARG2:
        *from = 2, *to = argc > 2 ? 3 : 2;
        break;
    case K_ALL:
    case K_CHANS:
        *from = 1, *to = argc;
        break;
    case K_STREAMS:
        /* XREAD [COUNT n] [BLOCK ms] STREAMS k... id...: the first STREAMS, as Redis finds
         * the keys; a malformed command (odd count) is refused by the command itself. */
        for (size_t i = 1; i < argc; i++)
            if (resp_arg_is(argv[i], "STREAMS")) {
                size_t n = (argc - i - 1) / 2;
                *from = i + 1, *to = i + 1 + n;
                break;
            }
        break;
    }
}

/* The decision for principal p: NULL when the command may run, else why not ("command",
 * "key" or "channel"; *argi the key's or channel's argument). full: the command's full name. */
static const char *check(rconn *rc, const td_principal *p, const char *full, size_t argc,
                         const td_slice *argv, size_t *argi)
{
    const resp_perm *pm = resp_perm_find(full);
    td_engine *e = rc->s->e;
    if (!pm) /* a command not in the table: the administrator's */
        return broker_authorize(e, p, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER) ? NULL
                                                                                    : "command";
    int cop = pm->cluster_op;
    if (pm->special == C_ACL_LOG && argc == 3 && resp_arg_is(argv[2], "RESET"))
        cop = TD_OP_ALTER;
    if (cop && !broker_authorize(e, p, TD_RES_CLUSTER, TD_CLUSTER_NAME, (td_acl_op)cop))
        return "command";
    bool chan = pm->keys == K_CHAN1 || pm->keys == K_CHANS;
    size_t from, to;
    key_range(pm, argc, argv, &from, &to);
    for (size_t i = from; i < to; i++) {
        char *name = key_topic_name(rc, argv[i], chan);
        bool ok = name ? broker_authorize(e, p, TD_RES_TOPIC, name, (td_acl_op)pm->key_op) &&
                             !create_denied(rc, p, pm, argc, argv, name)
                       : broker_authorize(e, p, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER);
        if (!ok) {
            *argi = i;
            return chan ? "channel" : "key";
        }
    }
    if (pm->group && pm->group < argc) {
        char *g = memchr(argv[pm->group].p, 0, argv[pm->group].n)
                      ? NULL
                      : resp_arg_str(rc, argv[pm->group]);
        /* Redis has no group permissions: the refusal is the command's. */
        if (!g || !broker_authorize(e, p, TD_RES_GROUP, g, (td_acl_op)pm->group_op))
            return "command";
    }
    return NULL;
}

bool resp_authorize(rconn *rc, resp_w *w, const rcmd *parent, const rcmd *c, size_t argc,
                    const td_slice *argv, bool in_multi)
{
    char full[64];
    resp_command_fullname(parent, c, full, sizeof(full));
    char host[64];
    td_principal p = principal(rc, host, sizeof(host));
    size_t i = 0;
    const char *why = check(rc, &p, full, argc, argv, &i);
    if (!why)
        return true;
    if (!strcmp(why, "command"))
        denied(rc, w, in_multi, why, full, strlen(full), full);
    else
        denied(rc, w, in_multi, why, (const char *)argv[i].p, argv[i].n, full);
    return false;
}

void resp_dryrun(rconn *rc, resp_w *w, const char *user, const rcmd *parent, const rcmd *c,
                 size_t argc, const td_slice *argv)
{
    char full[64];
    resp_command_fullname(parent, c, full, sizeof(full));
    char host[64];
    td_principal p = principal(rc, host, sizeof(host));
    p.user = user;
    size_t i = 0;
    const char *why = check(rc, &p, full, argc, argv, &i);
    char text[1200];
    if (!why) {
        resp_w_simple(w, "OK");
        return;
    }
    /* Redis answers a refusal as a bulk string, not an error. */
    if (!strcmp(why, "command"))
        snprintf(text, sizeof(text), "This user has no permissions to run the '%s' command", full);
    else
        snprintf(text, sizeof(text), "This user has no permissions to access the '%.*s' %s",
                 (int)TD_MIN(argv[i].n, 1024), (const char *)argv[i].p, why);
    resp_w_str(w, text);
}
