/*
 * cmd_acl.c: Redis's ACL command on the tidings user store (docs/redis.md#authentication-and-acls).
 *
 * Redis users are tidings users: ACL SETUSER creates one or changes its password (td_user_add,
 * td_user_passwd), ACL DELUSER removes it, ACL LIST, USERS and GETUSER show them. The user
 * `default` is redis.password when that is set, else the tidings user named default if there is
 * one, else Redis's `nopass` default user. What a user may do is the Kafka-model ACLs every
 * protocol shares: SETUSER's key, channel and command rules are applied to the user's ACLs
 * (acl_rules.c maps between the two), GETUSER and LIST read them back as Redis rules, DELUSER
 * removes them. Who may run what here is in authz.c's table: SETUSER, DELUSER and LOG RESET
 * need an administrator.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/scram.h"
#include "broker/audit.h"
#include "broker/authz.h"
#include "proto/resp/resp_int.h"

static bool exact(td_slice a, const char *s)
{
    return a.n == strlen(s) && !memcmp(a.p, s, a.n);
}

/* ---------------------------------------------------------------------------------------------
 * Users as Redis shows them
 */
static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

/* What stands for a user's password after '#' in ACL LIST and in GETUSER's passwords: for
 * default with redis.password, SHA-256 of the password, as Redis shows it; for a tidings user,
 * SHA-256 of its SCRAM StoredKey (SCRAM-SHA-256's, else SCRAM-SHA-512's). That is not SHA-256 of
 * the password (tidings never has it) and cannot be given back to ACL SETUSER; it changes
 * whenever the password does and reveals nothing a client could log in with. false when the
 * user has no credential. */
static bool fingerprint(rconn *rc, const char *user, char out[65])
{
    uint8_t h[32];
    if (!strcmp(user, "default")) {
        char pw[sizeof(rc->s->cfg.password)];
        pthread_mutex_lock(&rc->s->cfg_mu);
        memcpy(pw, rc->s->cfg.password, sizeof(pw));
        pthread_mutex_unlock(&rc->s->cfg_mu);
        if (pw[0]) {
            scram_hash(TD_SCRAM_SHA_256, pw, strlen(pw), h);
            memset(pw, 0, sizeof(pw));
            hex(h, sizeof(h), out);
            return true;
        }
    }
    td_scram_credential c;
    if (td_user_credential(rc->s->e, user, TD_SCRAM_SHA_256, &c) != 0 &&
        td_user_credential(rc->s->e, user, TD_SCRAM_SHA_512, &c) != 0) {
        td_error_clear();
        return false;
    }
    scram_hash(TD_SCRAM_SHA_256, c.stored_key, c.key_len, h);
    memset(&c, 0, sizeof(c));
    hex(h, sizeof(h), out);
    return true;
}

static bool user_exists(rconn *rc, const char *name)
{
    char fp[65];
    return fingerprint(rc, name, fp);
}

bool resp_user_exists(rconn *rc, const char *name)
{
    return !strcmp(name, "default") || user_exists(rc, name);
}

/* The users, sorted, default among them once. *names is malloc'd (each entry in it too). */
static int user_names(rconn *rc, char ***names, size_t *n)
{
    td_user_info *u = NULL;
    size_t k = 0;
    int r = td_user_list(rc->s->e, &u, &k);
    if (r)
        return r;
    char **v = calloc(k + 1, sizeof(*v));
    size_t m = 0;
    bool has_default = false;
    for (size_t i = 0; v && i < k; i++)
        has_default |= !strcmp(u[i].name, "default");
    for (size_t i = 0, d = has_default; v && i <= k; i++) {
        /* default goes where it sorts: before the first name greater than it */
        if (!d && (i == k || strcmp(u[i].name, "default") > 0)) {
            v[m++] = strdup("default");
            d = true;
        }
        if (i < k)
            v[m++] = strdup(u[i].name);
    }
    free(u);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < m; i++)
        if (!v[i])
            r = -ENOMEM;
    *names = v;
    *n = m;
    return r;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* default is Redis's `nopass` user when nothing else says what its password is. */
static bool default_nopass(rconn *rc, const char *user)
{
    return !strcmp(user, "default") && resp_default_nopass(rc);
}

/* ---------------------------------------------------------------------------------------------
 * Permissions: the user's ACLs as Redis rules (acl_rules.c), and SETUSER's changes to them
 */

/* Whether the Redis user stands for the anonymous principal, as AUTH maps it: default while
 * redis.password is set or no tidings user is called default. */
static bool is_anonymous(rconn *rc, const char *name)
{
    if (strcmp(name, "default"))
        return false;
    pthread_mutex_lock(&rc->s->cfg_mu);
    bool legacy = rc->s->cfg.password[0] != 0;
    pthread_mutex_unlock(&rc->s->cfg_mu);
    return legacy || !user_exists(rc, name);
}

static void principal_of(rconn *rc, const char *name, char out[TD_ACL_PRINCIPAL_MAX + 1])
{
    snprintf(out, TD_ACL_PRINCIPAL_MAX + 1, "User:%s", is_anonymous(rc, name) ? "ANONYMOUS" : name);
}

/* The principal's ACLs with host "*": the ones SETUSER reads and manages. */
static int principal_acls(rconn *rc, const char *principal, td_acl **v, size_t *n)
{
    td_acl_filter f;
    td_acl_filter_init(&f);
    f.principal = principal;
    f.host = "*";
    return td_acl_list(rc->s->e, &f, v, n);
}

/* The user's permissions as Redis's state: everything for super users (and for anonymous while
 * anonymous.access=all, or an ACL allows it All on the cluster), else what its ACLs say. */
static int user_state(rconn *rc, const char *name, resp_acl_state *st)
{
    resp_acl_state_init(st);
    bool anon = is_anonymous(rc, name);
    td_principal np = {NULL, NULL};
    if (anon ? broker_authorize(rc->s->e, &np, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALL)
             : broker_is_super_user(rc->s->e, name)) {
        static const td_slice all[] = {
            {(const uint8_t *)"~*", 2}, {(const uint8_t *)"&*", 2}, {(const uint8_t *)"+@all", 5}};
        resp_acl_rules ru;
        size_t bad;
        char why[64];
        return resp_acl_rules_parse(all, 3, &ru, st, &bad, why, sizeof(why)) ? -ENOMEM : 0;
    }
    char principal[TD_ACL_PRINCIPAL_MAX + 1];
    principal_of(rc, name, principal);
    td_acl *v = NULL;
    size_t n = 0;
    int r = principal_acls(rc, principal, &v, &n);
    bool *managed = r ? NULL : calloc(n ? n : 1, sizeof(bool));
    if (!r && !managed)
        r = -ENOMEM;
    if (!r)
        r = resp_acl_decode(v, n, principal, st, managed);
    free(managed);
    free(v);
    return r;
}

/* One part of the user's rules (RESP_ACL_RENDER_*) as a malloc'd string; NULL on failure. */
static char *user_rules(const resp_acl_state *st, int part)
{
    td_buf b;
    td_buf_init(&b);
    if (resp_acl_render(st, part, &b) != 0 || td_buf_append(&b, "", 1) != 0) {
        td_buf_free(&b);
        return NULL;
    }
    return (char *)b.p;
}

static bool acl_eq(const td_acl *a, const td_acl *b)
{
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           a->operation == b->operation && a->permission == b->permission &&
           !strcmp(a->principal, b->principal) && !strcmp(a->host, b->host) &&
           !strcmp(a->name, b->name);
}

static bool acl_in(const td_acl *a, const td_acl *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (acl_eq(a, &v[i]))
            return true;
    return false;
}

/* Who changes the ACLs, for the audit trail of each ACL added or removed. */
static td_audit_who actor_of(rconn *rc)
{
    return (td_audit_who){"redis", net_conn_principal(rc->c), rc->addr};
}

/* Applies the rules' key, channel and command rules to the user's ACLs: its state read from
 * them, the rules applied left to right, the ACLs of the new state replacing those SETUSER
 * manages. The store has no transaction over several ACLs, so the ACLs that go are removed
 * first and the new ones added after: a failure midway leaves the user with no more than it
 * had before (maybe less), never more. Cost: O(ACLs of the principal squared), each change one
 * catalog transaction. 0, or an engine error (td_last_error says more). */
static int apply_perms(rconn *rc, const char *name, const td_slice *rules, size_t n)
{
    char principal[TD_ACL_PRINCIPAL_MAX + 1];
    principal_of(rc, name, principal);
    td_audit_who who = actor_of(rc);
    td_acl *old = NULL, *neu = NULL;
    size_t nold = 0, nnew = 0;
    bool *managed = NULL;
    resp_acl_state st;
    resp_acl_state_init(&st);
    resp_acl_rules ru;
    size_t bad;
    char why[256];
    /* Two SETUSERs of this listener are not interleaved (each would undo the other's part);
     * a change through Kafka or HTTP meanwhile is not ordered with it. */
    pthread_mutex_lock(&rc->s->acl_mu);
    int r = principal_acls(rc, principal, &old, &nold);
    if (r == 0 && !(managed = calloc(nold ? nold : 1, sizeof(bool))))
        r = -ENOMEM;
    if (r == 0)
        r = resp_acl_decode(old, nold, principal, &st, managed);
    if (r == 0 && resp_acl_rules_parse(rules, n, &ru, &st, &bad, why, sizeof(why)) != 0)
        r = -ENOMEM; /* the rules were checked before: only memory can fail here */
    if (r == 0)
        r = resp_acl_encode(&st, principal, &neu, &nnew);
    for (size_t i = 0; r == 0 && i < nold; i++) {
        if (!managed[i] || acl_in(&old[i], neu, nnew))
            continue;
        td_acl_filter f = {old[i].principal,    old[i].host, old[i].resource_type,
                           old[i].pattern_type, old[i].name, old[i].operation,
                           old[i].permission};
        r = broker_acl_remove(rc->s->e, &f, &who, NULL, NULL);
    }
    for (size_t i = 0; r == 0 && i < nnew; i++)
        if (!acl_in(&neu[i], old, nold))
            r = broker_acl_add(rc->s->e, &neu[i], &who);
    pthread_mutex_unlock(&rc->s->acl_mu);
    resp_acl_state_free(&st);
    free(managed);
    free(old);
    free(neu);
    return r;
}

/* Removes every ACL of the user's principal (ACL DELUSER). */
static int remove_acls(rconn *rc, const char *name)
{
    char principal[TD_ACL_PRINCIPAL_MAX + 1];
    snprintf(principal, sizeof(principal), "User:%s", name);
    td_audit_who who = actor_of(rc);
    td_acl_filter f;
    td_acl_filter_init(&f);
    f.principal = principal;
    return broker_acl_remove(rc->s->e, &f, &who, NULL, NULL);
}

static void acl_users(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    char **v;
    size_t n;
    int r = user_names(rc, &v, &n);
    if (r) {
        resp_reply_engine_error(w, r);
        return;
    }
    resp_w_array(w, n);
    for (size_t i = 0; i < n; i++)
        resp_w_str(w, v[i]);
    free_names(v, n);
}

static void acl_list(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    char **v;
    size_t n;
    int r = user_names(rc, &v, &n);
    if (r) {
        resp_reply_engine_error(w, r);
        return;
    }
    resp_w_array(w, n);
    for (size_t i = 0; i < n; i++) {
        char fp[65], line[TD_USER_NAME_MAX + 128];
        const char *pass = default_nopass(rc, v[i]) ? " nopass" : "";
        bool has = !pass[0] && fingerprint(rc, v[i], fp);
        resp_acl_state st;
        char *rules = user_state(rc, v[i], &st) == 0 ? user_rules(&st, RESP_ACL_RENDER_LIST) : NULL;
        resp_acl_state_free(&st);
        td_error_clear();
        snprintf(line, sizeof(line), "user %s on%s%s%s ", v[i], pass, has ? " #" : "",
                 has ? fp : "");
        td_buf b;
        td_buf_init(&b);
        if (td_buf_append(&b, line, strlen(line)) == 0 && rules &&
            td_buf_append(&b, rules, strlen(rules)) == 0)
            resp_w_bulk(w, b.p, b.len);
        else
            resp_w_error(w, "ERR out of memory");
        td_buf_free(&b);
        free(rules);
    }
    free_names(v, n);
}

static void acl_getuser(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    char *name = resp_arg_str(rc, argv[2]);
    char fp[65];
    bool nopass = name && default_nopass(rc, name);
    bool has = name && !nopass && fingerprint(rc, name, fp);
    if (!name || (!has && !nopass && strcmp(name, "default"))) {
        resp_w_null(w);
        return;
    }
    resp_w_map(w, 6);
    resp_w_str(w, "flags");
    resp_w_set(w, nopass ? 2 : 1);
    resp_w_str(w, "on");
    if (nopass)
        resp_w_str(w, "nopass");
    resp_w_str(w, "passwords");
    resp_w_array(w, has);
    if (has)
        resp_w_str(w, fp);
    resp_acl_state st;
    int r = user_state(rc, name, &st);
    char *parts[3] = {NULL, NULL, NULL};
    static const int which[3] = {RESP_ACL_RENDER_COMMANDS, RESP_ACL_RENDER_KEYS,
                                 RESP_ACL_RENDER_CHANNELS};
    for (int i = 0; i < 3 && r == 0; i++)
        if (!(parts[i] = user_rules(&st, which[i])))
            r = -ENOMEM;
    resp_acl_state_free(&st);
    static const char *const keys[3] = {"commands", "keys", "channels"};
    for (int i = 0; i < 3; i++) {
        resp_w_str(w, keys[i]);
        if (r == 0)
            resp_w_str(w, parts[i]);
        else
            resp_w_error(w, "ERR the user's ACLs could not be read");
        free(parts[i]);
    }
    td_error_clear();
    resp_w_str(w, "selectors");
    resp_w_array(w, 0);
}

static void acl_whoami(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    resp_w_str(w, resp_user(rc));
}

static bool valid_redis_name(td_slice n)
{
    for (size_t i = 0; i < n.n; i++)
        if (n.p[i] == ' ' || n.p[i] == 0)
            return false;
    return true;
}

static void acl_setuser(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    if (!valid_redis_name(argv[2])) {
        resp_w_error(w, "ERR Usernames can't contain spaces or null characters");
        return;
    }
    resp_acl_rules ru;
    size_t bad = 0;
    char why[512];
    int pr = resp_acl_rules_parse(argv + 3, argc - 3, &ru, NULL, &bad, why, sizeof(why));
    if (pr == -ENOMEM) {
        resp_w_error(w, "ERR out of memory");
        return;
    }
    if (pr != 0) {
        td_slice m = argv[3 + bad];
        resp_w_errorf(w, "ERR Error in ACL SETUSER modifier '%.*s': %s", (int)TD_MIN(m.n, 128),
                      (const char *)m.p, why);
        return;
    }
    char *name = resp_arg_str(rc, argv[2]);
    if (!name || td_user_name_validate(name) != 0) {
        resp_w_errorf(w, "ERR invalid user name: %s", td_last_error());
        td_error_clear();
        return;
    }
    bool is_default = !strcmp(name, "default");
    pthread_mutex_lock(&rc->s->cfg_mu);
    bool legacy = is_default && rc->s->cfg.password[0] != 0;
    pthread_mutex_unlock(&rc->s->cfg_mu);
    if (legacy && ru.password) {
        resp_w_error(w, "ERR the default user's password is redis.password: change it with "
                        "CONFIG SET requirepass");
        return;
    }
    /* default, when it is the anonymous principal (and stays it: no password makes it the
     * tidings user default), takes the rules that allow everything (they change nothing:
     * anonymous.access says what anonymous may do) and no other. */
    if (ru.narrows && is_anonymous(rc, name) && !(ru.password && !legacy)) {
        resp_w_error(w, "ERR default is the anonymous principal here: what it may do is "
                        "anonymous.access and the ACLs of User:ANONYMOUS ('tidings acl add'), "
                        "not Redis rules");
        return;
    }
    /* default always exists; any other new user needs a password. */
    bool exists = legacy || user_exists(rc, name);
    if (!exists && !ru.password && !is_default) {
        resp_w_errorf(w,
                      "ERR a new user needs a password: ACL SETUSER %s on >password (tidings "
                      "users are always enabled and always have one)",
                      name);
        return;
    }
    int r = 0;
    const int mech = TD_SCRAM_SHA_256 | TD_SCRAM_SHA_512;
    if (ru.password)
        r = exists ? td_user_passwd(rc->s->e, name, ru.password, ru.password_len, mech, 0)
                   : td_user_add(rc->s->e, name, ru.password, ru.password_len, mech, 0);
    if (r) {
        const char *d = td_last_error();
        resp_w_errorf(w, "ERR %s", d[0] ? d : td_strerror(r));
        td_error_clear();
        return;
    }
    if (ru.password)
        broker_audit(rc->s->e, TD_AUDIT_USER_CHANGE, "redis", net_conn_principal(rc->c), rc->addr,
                     "ACL SETUSER: %s user '%s'", exists ? "changed the password of" : "added",
                     name);
    if (ru.perms && !is_anonymous(rc, name) && (r = apply_perms(rc, name, argv + 3, argc - 3))) {
        const char *d = td_last_error();
        resp_w_errorf(w, "ERR the user's ACLs were not all changed: %s", d[0] ? d : td_strerror(r));
        td_error_clear();
        return;
    }
    resp_w_simple(w, "OK");
}

static void acl_deluser(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    for (size_t i = 2; i < argc; i++)
        if (exact(argv[i], "default")) {
            resp_w_error(w, "ERR The 'default' user cannot be removed");
            return;
        }
    int64_t n = 0;
    for (size_t i = 2; i < argc; i++) {
        char *name = resp_arg_str(rc, argv[i]);
        if (!name || strlen(name) != argv[i].n || td_user_name_validate(name) != 0) {
            td_error_clear();
            continue;
        }
        /* The user's ACLs go first: if removing the user then fails, it is left with fewer
         * permissions, never a removed user's ACLs waiting for the next one of that name. */
        int r = user_exists(rc, name) ? remove_acls(rc, name) : TD_ENOTFOUND;
        if (r == 0)
            r = td_user_remove(rc->s->e, name);
        if (r == 0) {
            n++;
            /* As Redis does, the user's connections are closed: they no longer have a user. */
            resp_kill_filter kf = {0, NULL, NULL, name, -1, NULL};
            size_t k = resp_clients_kill(rc->s, &kf, rc);
            broker_audit(rc->s->e, TD_AUDIT_USER_CHANGE, "redis", net_conn_principal(rc->c),
                         rc->addr, "ACL DELUSER: removed user '%s' (%zu connection%s closed)", name,
                         k, k == 1 ? "" : "s");
        } else if (r != TD_ENOTFOUND) {
            resp_reply_engine_error(w, r);
            td_error_clear();
            return;
        }
        td_error_clear();
    }
    resp_w_int(w, n);
}

/* Redis 7.0's categories, in its order. */
static const char *const categories[] = {
    "keyspace", "read",        "write",      "set",         "sortedset", "list",  "hash", "string",
    "bitmap",   "hyperloglog", "geo",        "stream",      "pubsub",    "admin", "fast", "slow",
    "blocking", "dangerous",   "connection", "transaction", "scripting", NULL};

static void acl_cat(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    size_t nc = 0;
    while (categories[nc])
        nc++;
    if (argc == 2) {
        resp_w_array(w, nc);
        for (size_t i = 0; i < nc; i++)
            resp_w_str(w, categories[i]);
        return;
    }
    if (argc > 3) {
        resp_w_error(w, "ERR wrong number of arguments for 'acl|cat' command");
        return;
    }
    const char *cat = NULL;
    for (size_t i = 0; i < nc && !cat; i++)
        if (resp_arg_is(argv[2], categories[i]))
            cat = categories[i];
    if (!cat) {
        resp_w_errorf(w, "ERR Unknown category '%.*s'", (int)TD_MIN(argv[2].n, 128),
                      (const char *)argv[2].p);
        return;
    }
    char full[64];
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++) { /* count, then write */
        if (pass)
            resp_w_array(w, k);
        for (const rcmd *c = resp_commands; c->name; c++) {
            if (!c->subs) {
                if (resp_command_in_category(NULL, c, cat)) {
                    if (pass)
                        resp_w_str(w, c->name);
                    else
                        k++;
                }
                continue;
            }
            for (const rcmd *s = c->subs; s->name; s++)
                if (resp_command_in_category(c, s, cat)) {
                    resp_command_fullname(c, s, full, sizeof(full));
                    if (pass)
                        resp_w_str(w, full);
                    else
                        k++;
                }
        }
    }
}

/* ACL DRYRUN user command [arg ...]: whether user could run it (authz.c decides). */
static void acl_dryrun(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    char *name = resp_arg_str(rc, argv[2]);
    if (!name || strlen(name) != argv[2].n || !resp_user_exists(rc, name)) {
        resp_w_errorf(w, "ERR User '%.*s' not found", (int)TD_MIN(argv[2].n, 128),
                      (const char *)argv[2].p);
        return;
    }
    const td_slice *cv = argv + 3;
    size_t cn = argc - 3;
    const rcmd *parent = NULL, *c = resp_command_find(resp_commands, cv[0]);
    if (c && c->subs && cn >= 2) {
        parent = c;
        c = resp_command_find(c->subs, cv[1]);
    }
    if (!c || (!c->fn && !c->subs)) {
        resp_w_errorf(w, "ERR Command '%.*s' not found", (int)TD_MIN(cv[0].n, 128),
                      (const char *)cv[0].p);
        return;
    }
    if (c->arity > 0 ? cn != (size_t)c->arity : cn < (size_t)-c->arity) {
        char full[64];
        resp_command_fullname(parent, c, full, sizeof(full));
        resp_w_errorf(w, "ERR wrong number of arguments for '%s' command", full);
        return;
    }
    /* default is the anonymous principal unless a tidings user is called default and
     * redis.password does not stand for it, as AUTH maps it. */
    pthread_mutex_lock(&rc->s->cfg_mu);
    bool legacy = rc->s->cfg.password[0] != 0;
    pthread_mutex_unlock(&rc->s->cfg_mu);
    const char *user = name;
    if (!strcmp(name, "default") && (legacy || !user_exists(rc, name)))
        user = NULL;
    resp_dryrun(rc, w, user, parent, c, cn, cv);
}

/* ACL GENPASS [bits]: a random password of bits/4 hex digits (rounded up), 256 bits by default,
 * from getrandom(2), as Redis makes one. */
static void acl_genpass(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    long long bits = 256;
    if (argc > 3) {
        resp_w_error(w, "ERR wrong number of arguments for 'acl|genpass' command");
        return;
    }
    if (argc == 3 && !resp_arg_ll(w, argv[2], &bits))
        return;
    if (bits <= 0 || bits > 4096) {
        resp_w_error(w, "ERR ACL GENPASS argument must be the number of bits for the output "
                        "password, a positive number up to 4096");
        return;
    }
    size_t chars = (size_t)(bits + 3) / 4;
    uint8_t raw[512];
    size_t nraw = (chars + 1) / 2;
    if (getrandom(raw, nraw, 0) != (ssize_t)nraw) {
        resp_w_error(w, "ERR no random bytes from the kernel");
        return;
    }
    char out[1025];
    hex(raw, nraw, out);
    memset(raw, 0, sizeof(raw));
    resp_w_bulk(w, out, chars);
    memset(out, 0, sizeof(out));
}

/* ACL LOAD and ACL SAVE: there is no ACL file (users are in the catalog); Redis's answer when it
 * has none. */
static void acl_nofile(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    resp_w_error(w, "ERR This Redis instance is not configured to use an ACL file. You may want "
                    "to specify users via the ACL SETUSER command and then issue a CONFIG "
                    "REWRITE (assuming you have a Redis configuration file set) in order to "
                    "store users in the Redis configuration.");
}

static void acl_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Prints this help.",
        NULL};
    resp_reply_help(w, lines);
}

#define ACL_ADMIN (RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE)
#define ACL_ADMIN_CATS "@admin @slow @dangerous"
const rcmd resp_acl_subs[] = {
    {"cat", -2, RF_NOSCRIPT | RF_LOADING | RF_STALE, acl_cat, "server",
     "Lists the ACL categories, or the commands inside a category.", "6.0.0", 0, 0, 0, NULL,
     "@slow"},
    {"deluser", -3, ACL_ADMIN, acl_deluser, "server",
     "Deletes ACL users, and terminates their connections.", "6.0.0", 0, 0, 0, NULL,
     ACL_ADMIN_CATS},
    {"dryrun", -4, ACL_ADMIN, acl_dryrun, "server",
     "Simulates the execution of a command by a user, without executing the command.", "7.0.0", 0,
     0, 0, NULL, ACL_ADMIN_CATS},
    {"genpass", -2, RF_NOSCRIPT | RF_LOADING | RF_STALE, acl_genpass, "server",
     "Generates a pseudorandom, secure password that can be used to identify ACL users.", "6.0.0",
     0, 0, 0, NULL, "@slow"},
    {"getuser", 3, ACL_ADMIN, acl_getuser, "server", "Lists the ACL rules of a user.", "6.0.0", 0,
     0, 0, NULL, ACL_ADMIN_CATS},
    {"help", 2, RF_LOADING | RF_STALE, acl_help, "server",
     "Returns helpful text about the different subcommands.", "6.0.0", 0, 0, 0, NULL, "@slow"},
    {"list", 2, ACL_ADMIN, acl_list, "server", "Dumps the effective rules in ACL file format.",
     "6.0.0", 0, 0, 0, NULL, ACL_ADMIN_CATS},
    {"load", 2, ACL_ADMIN, acl_nofile, "server", "Reloads the rules from the configured ACL file.",
     "6.0.0", 0, 0, 0, NULL, ACL_ADMIN_CATS},
    {"log", -2, ACL_ADMIN, resp_cmd_acl_log, "server",
     "Lists recent security events generated due to ACL rules.", "6.0.0", 0, 0, 0, NULL,
     ACL_ADMIN_CATS},
    {"save", 2, ACL_ADMIN, acl_nofile, "server",
     "Saves the effective ACL rules in the configured ACL file.", "6.0.0", 0, 0, 0, NULL,
     ACL_ADMIN_CATS},
    {"setuser", -3, ACL_ADMIN, acl_setuser, "server",
     "Creates and modifies an ACL user and its rules.", "6.0.0", 0, 0, 0, NULL, ACL_ADMIN_CATS},
    {"users", 2, ACL_ADMIN, acl_users, "server", "Lists all ACL users.", "6.0.0", 0, 0, 0, NULL,
     ACL_ADMIN_CATS},
    {"whoami", 2, RF_NOSCRIPT | RF_LOADING | RF_STALE, acl_whoami, "server",
     "Returns the authenticated username of the current connection.", "6.0.0", 0, 0, 0, NULL,
     "@slow"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
