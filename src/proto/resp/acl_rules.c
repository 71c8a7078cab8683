/*
 * acl_rules.c: Redis's ACL SETUSER rules as tidings ACLs, and tidings ACLs as Redis rules
 * (docs/redis.md#acl-rules-and-tidings-acls). Pure functions over buffers: no engine, no I/O.
 *
 * Redis keeps, per user, key patterns (each with read and/or write permission), channel
 * patterns and a set of allowed commands. tidings keeps ACLs in Kafka's model. The state in
 * between (resp_acl_state) is what both sides can say:
 *
 *   - a pattern: a literal name ("orders.eu"; "*" for every topic) or a prefix ("orders." from
 *     Redis's "orders.*"), with flags: key read (R), key write (W), channel (C);
 *   - the commands as three bits: @read, @write, @admin (@dangerous is @admin, @all is all
 *     three).
 *
 * Encoding (state -> ACLs, all Allow, host "*", the user's principal) is (patterns) x
 * (operations): a key gives Read where both it and the commands have R, and Write, Create,
 * Delete and Alter (XADD, XADD making the topic, DEL/XDEL/XTRIM, XSETID: all @write in Redis)
 * where both have W; R and W with every command (@all) give All instead. A channel gives Read
 * (SUBSCRIBE) and Write (PUBLISH) on the topic of its name, whatever the commands. The commands
 * leave markers that the keys alone could not keep: @read gives Describe and Read on every
 * group (literal "*": XPENDING, XINFO CONSUMERS, XREADGROUP), @write Read and Delete on every
 * group (XREADGROUP, XACK, XGROUP DESTROY), @admin Alter on the cluster (an administrator).
 *
 * Decoding (ACLs -> state) inverts that on what encoding produces, so that encode(decode(x)) is
 * x for every x encoding made (the unit test and the fuzz target check it). A key's permission
 * that the commands did not let through (~x with only +@read gives Read on x) is read back as
 * granted (~x, not %R~x) unless the commands show it was not (%R~x with +@read +@write gives
 * Read only, and the @write marker says so). A pattern whose operations are not one of the
 * sets encoding makes (an ACL added with `tidings acl`: Describe alone, Read with Create, ...)
 * is not SETUSER's: it is shown as far as Read and Write say, never changed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/resp/resp_int.h"

/* Operation sets, as bits (1 << td_acl_op). */
#define OP(o) (1u << (o))
#define OPS_W4 (OP(TD_OP_WRITE) | OP(TD_OP_CREATE) | OP(TD_OP_DELETE) | OP(TD_OP_ALTER))
#define OPS_CHAN (OP(TD_OP_READ) | OP(TD_OP_WRITE))

/* ---------------------------------------------------------------------------------------------
 * The state
 */
void resp_acl_state_init(resp_acl_state *st)
{
    memset(st, 0, sizeof(*st));
}

void resp_acl_state_free(resp_acl_state *st)
{
    free(st->v);
    resp_acl_state_init(st);
}

static resp_acl_pat *find(resp_acl_state *st, int ptype, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (st->v[i].ptype == ptype && !strcmp(st->v[i].name, name))
            return &st->v[i];
    return NULL;
}

/* Adds flags to the pattern (made at the end, keeping Redis's order of first mention). */
static int add_flags(resp_acl_state *st, int ptype, const char *name, unsigned flags)
{
    resp_acl_pat *p = find(st, ptype, name);
    if (!p) {
        if (td_grow(&st->v, &st->cap, st->n, sizeof(*st->v), 8) != 0)
            return -ENOMEM;
        p = &st->v[st->n++];
        memset(p, 0, sizeof(*p));
        p->ptype = (uint8_t)ptype;
        snprintf(p->name, sizeof(p->name), "%s", name);
    }
    p->flags |= (uint8_t)flags;
    return 0;
}

/* Drops the flags from every pattern SETUSER manages, and the patterns left with none. */
static void clear_flags(resp_acl_state *st, unsigned flags)
{
    size_t k = 0;
    for (size_t i = 0; i < st->n; i++) {
        resp_acl_pat p = st->v[i];
        if (!(p.flags & RESP_ACL_UNMANAGED))
            p.flags &= (uint8_t)~flags;
        if (p.flags & (RESP_ACL_KEY_R | RESP_ACL_KEY_W | RESP_ACL_CHAN))
            st->v[k++] = p;
    }
    st->n = k;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing the rules
 */
static bool exact(td_slice a, const char *s)
{
    return a.n == strlen(s) && !memcmp(a.p, s, a.n);
}

#define WHY_GLOB                                                                                   \
    "tidings grants topics by exact name, by prefix ('orders.*': one '*' at the end) or all "      \
    "('*'): other glob patterns cannot be expressed as its ACLs"

/* A Redis pattern as an ACL's (pattern type, name): "*" is the literal "*" (every topic), a
 * pattern ending in its only unescaped '*' a prefix, a pattern without glob characters a
 * literal; '\' makes the next character literal. The pattern is on keys, and ACLs are on topic
 * names: a literal is its key's topic name (td_key_to_name, docs/redis.md#keys-and-topics), a
 * prefix is escaped byte by byte, which keeps it a prefix of the names of the keys it starts
 * (but for the keys "." and "..", whose names are %2E and %2E%2E). Channels are named so too.
 * NULL, or why not. */
static const char *glob_to_acl(td_slice g, int *ptype, char name[TD_ACL_NAME_MAX + 1])
{
    if (g.n == 1 && g.p[0] == '*') {
        *ptype = TD_PAT_LITERAL;
        strcpy(name, "*");
        return NULL;
    }
    uint8_t raw[TD_ACL_NAME_MAX];
    size_t k = 0;
    *ptype = TD_PAT_LITERAL;
    for (size_t i = 0; i < g.n; i++) {
        uint8_t c = g.p[i];
        bool escaped = c == '\\';
        if (escaped) {
            if (++i == g.n)
                return "the pattern ends with an escape ('\\')";
            c = g.p[i];
        }
        if (!escaped && c == '*' && i + 1 == g.n) {
            *ptype = TD_PAT_PREFIXED;
            break;
        }
        if (!escaped && (c == '*' || c == '?' || c == '[' || c == ']'))
            return WHY_GLOB;
        if (k == TD_TOPIC_NAME_MAX)
            return "the pattern is longer than a topic name's 249 bytes";
        raw[k++] = c;
    }
    if (*ptype == TD_PAT_LITERAL)
        return td_key_to_name(raw, k, name) < 0
                   ? "the key's topic name would be longer than 249 bytes (docs/redis.md#keys-"
                     "and-topics)"
                   : NULL;
    return td_name_escape(raw, k, name, TD_ACL_NAME_MAX + 1) < 0
               ? "the pattern's topic prefix would be longer than an ACL's 255 bytes"
               : NULL;
}

/* Redis 7.0's categories (ACL CAT), for telling an unknown one from one tidings cannot map. */
static bool redis_category(td_slice c)
{
    static const char *const cats[] = {
        "keyspace",   "read",        "write",     "set",         "sortedset", "list",
        "hash",       "string",      "bitmap",    "hyperloglog", "geo",       "stream",
        "pubsub",     "admin",       "fast",      "slow",        "blocking",  "dangerous",
        "connection", "transaction", "scripting", NULL};
    for (size_t i = 0; cats[i]; i++)
        if (resp_arg_is(c, cats[i]))
            return true;
    return false;
}

/* One command rule (+@cat, -@cat, +cmd, -cmd, allcommands, nocommands): NULL, or why not. */
static const char *command_rule(td_slice r, unsigned *cmds)
{
    if (resp_arg_is(r, "allcommands")) {
        *cmds = RESP_ACL_CMDS_ALL;
        return NULL;
    }
    if (resp_arg_is(r, "nocommands")) {
        *cmds = 0;
        return NULL;
    }
    bool add = r.p[0] == '+';
    if (r.n < 2 || r.p[1] != '@')
        return "tidings maps Redis's command categories, not single commands, onto ACL "
               "operations: use +@read, +@write, +@admin (or +@dangerous), +@all and their '-' "
               "forms";
    td_slice c = td_slice_make(r.p + 2, r.n - 2);
    unsigned bit = resp_arg_is(c, "all")                                    ? RESP_ACL_CMDS_ALL
                   : resp_arg_is(c, "read")                                 ? RESP_ACL_CMD_READ
                   : resp_arg_is(c, "write")                                ? RESP_ACL_CMD_WRITE
                   : resp_arg_is(c, "admin") || resp_arg_is(c, "dangerous") ? RESP_ACL_CMD_ADMIN
                                                                            : 0;
    if (!bit)
        return redis_category(c) ? "this category cannot be expressed as tidings ACLs: only "
                                   "@read, @write, @admin, @dangerous and @all can"
                                 : "Unknown command or category name in ACL";
    *cmds = add ? (*cmds | bit) : (*cmds & ~bit);
    return NULL;
}

/* A key or channel rule: NULL, or why not. st may be NULL (validation only). */
static const char *pattern_rule(td_slice r, resp_acl_state *st, int *nomem)
{
    unsigned flags;
    td_slice g;
    if (r.p[0] == '&') {
        flags = RESP_ACL_CHAN;
        g = td_slice_make(r.p + 1, r.n - 1);
    } else if (r.p[0] == '~') {
        flags = RESP_ACL_KEY_R | RESP_ACL_KEY_W;
        g = td_slice_make(r.p + 1, r.n - 1);
    } else { /* %R~, %W~, %RW~ */
        flags = 0;
        size_t i = 1;
        for (; i < r.n && r.p[i] != '~'; i++) {
            if (r.p[i] == 'R' || r.p[i] == 'r')
                flags |= RESP_ACL_KEY_R;
            else if (r.p[i] == 'W' || r.p[i] == 'w')
                flags |= RESP_ACL_KEY_W;
            else
                return "Syntax error";
        }
        if (i == r.n || flags == 0)
            return "Syntax error";
        g = td_slice_make(r.p + i + 1, r.n - i - 1);
    }
    /* Redis refuses a pattern with a space (isspace) or a NUL, escaped or not, as a syntax
     * error; keys with them are streams all the same, reached by prefixes and "*". */
    for (size_t i = 0; i < g.n; i++)
        if (g.p[i] == 0 || g.p[i] == ' ' || (g.p[i] >= '\t' && g.p[i] <= '\r'))
            return "Syntax error";
    int ptype;
    char name[TD_ACL_NAME_MAX + 1];
    const char *why = glob_to_acl(g, &ptype, name);
    if (why || !st)
        return why;
    if (add_flags(st, ptype, name, flags) != 0)
        *nomem = 1;
    return NULL;
}

int resp_acl_rules_parse(const td_slice *rules, size_t n, resp_acl_rules *out, resp_acl_state *st,
                         size_t *bad, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    const char *err = NULL;
    size_t i = 0, reset_at = 0, off_at = (size_t)-1;
    int nomem = 0;
    unsigned cmds = st ? st->cmds : 0;
    for (; i < n && !err && !nomem; i++) {
        td_slice r = rules[i];
        bool everything = exact(r, "~*") || exact(r, "%RW~*") || exact(r, "&*") ||
                          exact(r, "+@all") || resp_arg_is(r, "allkeys") ||
                          resp_arg_is(r, "allchannels") || resp_arg_is(r, "allcommands");
        bool perm_rule = false;
        if (resp_arg_is(r, "on")) {
            out->on = true;
        } else if (resp_arg_is(r, "off")) {
            err = "tidings users cannot be disabled: remove the user (ACL DELUSER) or change its "
                  "password";
        } else if (r.n >= 1 && r.p[0] == '>') {
            if (out->password) {
                err = "a tidings user has one password: give one '>password' (a new one replaces "
                      "the old one)";
            } else {
                out->password = r.p + 1;
                out->password_len = r.n - 1;
            }
        } else if (r.n >= 1 && r.p[0] == '<') {
            err = "a tidings user has exactly one password: set another with '>password'";
        } else if (r.n >= 1 && (r.p[0] == '#' || r.p[0] == '!')) {
            err = "tidings keeps SCRAM credentials, not SHA-256 hashes: give the password with "
                  "'>password'";
        } else if (resp_arg_is(r, "nopass")) {
            err = "tidings users always have a password";
        } else if (resp_arg_is(r, "resetpass")) {
            out->resetpass = true;
            reset_at = i;
        } else if (resp_arg_is(r, "sanitize-payload") || resp_arg_is(r, "skip-sanitize-payload")) {
            /* Redis's RESTORE payload checks: there is no RESTORE. */
        } else if (resp_arg_is(r, "reset")) {
            /* resetpass resetkeys resetchannels off -@all: accepted when 'on' and a password
             * follow (redis-py's acl_setuser(reset=True, enabled=True, passwords=...)). */
            out->resetpass = true;
            out->on = false;
            reset_at = off_at = i;
            if (st)
                clear_flags(st, RESP_ACL_KEY_R | RESP_ACL_KEY_W | RESP_ACL_CHAN);
            cmds = 0;
            out->perms = perm_rule = true;
        } else if (resp_arg_is(r, "allkeys") || resp_arg_is(r, "allchannels")) {
            err = pattern_rule(td_slice_make(r.p[3] == 'k' || r.p[3] == 'K' ? "~*" : "&*", 2), st,
                               &nomem);
            out->perms = perm_rule = true;
        } else if (resp_arg_is(r, "resetkeys") || resp_arg_is(r, "resetchannels")) {
            if (st)
                clear_flags(st, resp_arg_is(r, "resetkeys") ? RESP_ACL_KEY_R | RESP_ACL_KEY_W
                                                            : RESP_ACL_CHAN);
            out->perms = perm_rule = true;
        } else if (r.n >= 1 && (r.p[0] == '~' || r.p[0] == '&' || r.p[0] == '%')) {
            err = pattern_rule(r, st, &nomem);
            out->perms = perm_rule = true;
        } else if (resp_arg_is(r, "allcommands") || resp_arg_is(r, "nocommands") ||
                   (r.n >= 1 && (r.p[0] == '+' || r.p[0] == '-'))) {
            err = command_rule(r, &cmds);
            out->perms = perm_rule = true;
        } else if ((r.n >= 1 && r.p[0] == '(') || resp_arg_is(r, "clearselectors")) {
            err = "tidings has one set of permissions per user: selectors cannot be expressed";
        } else {
            err = "Syntax error"; /* Redis's text for an unknown modifier */
        }
        if (!err && perm_rule && !everything)
            out->narrows = true;
    }
    if (nomem)
        return -ENOMEM;
    if (err) {
        *bad = i - 1;
        snprintf(why, why_len, "%s", err);
        return -1;
    }
    if (off_at != (size_t)-1 && !out->on) {
        *bad = off_at;
        snprintf(why, why_len, "tidings users cannot be disabled: follow reset with 'on'");
        return -1;
    }
    if (out->resetpass && !out->password) {
        *bad = reset_at;
        snprintf(why, why_len,
                 "tidings users always have a password: follow resetpass with "
                 "'>password'");
        return -1;
    }
    if (st)
        st->cmds = cmds;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * State -> ACLs
 */
static int push(td_acl **v, size_t *n, size_t *cap, const char *principal, td_acl_resource type,
                int ptype, const char *name, td_acl_op op)
{
    if (td_grow(v, cap, *n, sizeof(**v), 16) != 0)
        return -ENOMEM;
    td_acl *a = &(*v)[(*n)++];
    memset(a, 0, sizeof(*a));
    snprintf(a->principal, sizeof(a->principal), "%s", principal);
    strcpy(a->host, "*");
    a->resource_type = type;
    a->pattern_type = (td_acl_pattern)ptype;
    snprintf(a->name, sizeof(a->name), "%s", name);
    a->operation = op;
    a->permission = TD_PERM_ALLOW;
    return 0;
}

/* The operations a managed pattern's flags give under the commands cmds. */
static unsigned pattern_ops(unsigned flags, unsigned cmds)
{
    unsigned ops = 0;
    if ((flags & RESP_ACL_KEY_R) && (cmds & RESP_ACL_CMD_READ))
        ops |= OP(TD_OP_READ);
    if ((flags & RESP_ACL_KEY_W) && (cmds & RESP_ACL_CMD_WRITE))
        ops |= OPS_W4;
    if ((flags & RESP_ACL_KEY_R) && (flags & RESP_ACL_KEY_W) && cmds == RESP_ACL_CMDS_ALL)
        ops = OP(TD_OP_ALL);
    if ((flags & RESP_ACL_CHAN) && ops != OP(TD_OP_ALL))
        ops |= OPS_CHAN;
    return ops;
}

int resp_acl_encode(const resp_acl_state *st, const char *principal, td_acl **out, size_t *count)
{
    td_acl *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < st->n; i++) {
        const resp_acl_pat *p = &st->v[i];
        if (p->flags & RESP_ACL_UNMANAGED)
            continue;
        unsigned ops = pattern_ops(p->flags, st->cmds);
        for (int op = TD_OP_ALL; rc == 0 && op <= TD_OP_IDEMPOTENT_WRITE; op++)
            if (ops & OP(op))
                rc = push(&v, &n, &cap, principal, TD_RES_TOPIC, p->ptype, p->name, (td_acl_op)op);
    }
    if (rc == 0 && (st->cmds & RESP_ACL_CMD_READ))
        rc = push(&v, &n, &cap, principal, TD_RES_GROUP, TD_PAT_LITERAL, "*", TD_OP_DESCRIBE);
    if (rc == 0 && (st->cmds & (RESP_ACL_CMD_READ | RESP_ACL_CMD_WRITE)))
        rc = push(&v, &n, &cap, principal, TD_RES_GROUP, TD_PAT_LITERAL, "*", TD_OP_READ);
    if (rc == 0 && (st->cmds & RESP_ACL_CMD_WRITE))
        rc = push(&v, &n, &cap, principal, TD_RES_GROUP, TD_PAT_LITERAL, "*", TD_OP_DELETE);
    if (rc == 0 && (st->cmds & RESP_ACL_CMD_ADMIN))
        rc = push(&v, &n, &cap, principal, TD_RES_CLUSTER, TD_PAT_LITERAL, TD_CLUSTER_NAME,
                  TD_OP_ALTER);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * ACLs -> state
 */
static bool is_marker(const td_acl *a)
{
    if (a->resource_type == TD_RES_GROUP)
        return a->pattern_type == TD_PAT_LITERAL && !strcmp(a->name, "*") &&
               (a->operation == TD_OP_DESCRIBE || a->operation == TD_OP_READ ||
                a->operation == TD_OP_DELETE);
    return a->resource_type == TD_RES_CLUSTER && a->operation == TD_OP_ALTER &&
           a->pattern_type == TD_PAT_LITERAL && !strcmp(a->name, TD_CLUSTER_NAME);
}

/* Whether the ACL is one the decoding reads: the principal's, host "*", Allow. */
static bool ours(const td_acl *a, const char *principal)
{
    return !strcmp(a->principal, principal) && !strcmp(a->host, "*") &&
           a->permission == TD_PERM_ALLOW;
}

static bool topic_pattern(const td_acl *a)
{
    return a->resource_type == TD_RES_TOPIC &&
           (a->pattern_type == TD_PAT_LITERAL || a->pattern_type == TD_PAT_PREFIXED);
}

/* The operations of every ACL of ours on the same topic pattern as a. */
static unsigned ops_of(const td_acl *v, size_t n, const char *principal, const td_acl *a)
{
    unsigned ops = 0;
    for (size_t i = 0; i < n; i++)
        if (ours(&v[i], principal) && topic_pattern(&v[i]) &&
            v[i].pattern_type == a->pattern_type && !strcmp(v[i].name, a->name) &&
            (int)v[i].operation > 0 && (int)v[i].operation < 16)
            ops |= OP(v[i].operation);
    return ops;
}

/* The flags an encodable operation set stands for; 0 if encoding never makes it. */
static unsigned flags_of(unsigned ops)
{
    if (ops == OP(TD_OP_ALL))
        return RESP_ACL_KEY_R | RESP_ACL_KEY_W | RESP_ACL_CHAN;
    if (ops == OP(TD_OP_READ))
        return RESP_ACL_KEY_R;
    if (ops == OPS_W4)
        return RESP_ACL_KEY_W;
    if (ops == (OPS_W4 | OP(TD_OP_READ)))
        return RESP_ACL_KEY_R | RESP_ACL_KEY_W;
    if (ops == OPS_CHAN)
        return RESP_ACL_CHAN;
    return 0;
}

/* flags_of, knowing the commands the markers show: Read with the four write operations is a
 * key with both permissions, which needs @read (and its marker), or, under @write without
 * @read, a key with write permission and a channel of the same name (`~x &x +@write`). */
static unsigned flags_marked(unsigned ops, unsigned marked)
{
    unsigned f = flags_of(ops);
    if (f == (RESP_ACL_KEY_R | RESP_ACL_KEY_W) && (marked & RESP_ACL_CMD_WRITE) &&
        !(marked & RESP_ACL_CMD_READ))
        return RESP_ACL_KEY_W | RESP_ACL_CHAN;
    return f;
}

int resp_acl_decode(const td_acl *v, size_t n, const char *principal, resp_acl_state *st,
                    bool *managed)
{
    resp_acl_state_init(st);
    unsigned marked = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ours(&v[i], principal) || !is_marker(&v[i]))
            continue;
        if (v[i].resource_type == TD_RES_CLUSTER)
            marked |= RESP_ACL_CMD_ADMIN;
        else if (v[i].operation == TD_OP_DESCRIBE)
            marked |= RESP_ACL_CMD_READ;
        else if (v[i].operation == TD_OP_DELETE)
            marked |= RESP_ACL_CMD_WRITE;
    }
    unsigned cmds = marked;
    /* The commands: the markers, and what the managed keys say. */
    for (size_t i = 0; i < n; i++) {
        managed[i] = false;
        if (!ours(&v[i], principal))
            continue;
        if (is_marker(&v[i])) {
            managed[i] = true;
        } else if (topic_pattern(&v[i])) {
            unsigned f = flags_marked(ops_of(v, n, principal, &v[i]), marked);
            managed[i] = f != 0;
            if (f & RESP_ACL_KEY_R)
                cmds |= RESP_ACL_CMD_READ;
            if (f & RESP_ACL_KEY_W)
                cmds |= RESP_ACL_CMD_WRITE;
        }
    }
    /* The patterns, each once, in the ACLs' order. */
    for (size_t i = 0; i < n; i++) {
        if (!ours(&v[i], principal) || !topic_pattern(&v[i]) ||
            find(st, v[i].pattern_type, v[i].name))
            continue;
        unsigned ops = ops_of(v, n, principal, &v[i]);
        unsigned f = flags_marked(ops, marked);
        if (f == 0) {
            /* Not SETUSER's: shown as far as Read and Write say, never encoded. */
            if (ops & (OP(TD_OP_READ) | OP(TD_OP_ALL)))
                f |= RESP_ACL_KEY_R;
            if (ops & (OP(TD_OP_WRITE) | OP(TD_OP_ALL)))
                f |= RESP_ACL_KEY_W;
            if (!f)
                continue;
            f |= RESP_ACL_UNMANAGED;
        } else if (f != (RESP_ACL_KEY_R | RESP_ACL_KEY_W | RESP_ACL_CHAN)) {
            /* A permission the commands did not let through was granted unless the commands
             * show it was not; a channel's Read is a key's too when there are read commands. */
            if (f == RESP_ACL_CHAN && (cmds & RESP_ACL_CMD_READ))
                f |= RESP_ACL_KEY_R;
            if ((f & RESP_ACL_KEY_R) && !(cmds & RESP_ACL_CMD_WRITE))
                f |= RESP_ACL_KEY_W;
            if ((f & RESP_ACL_KEY_W) && !(cmds & RESP_ACL_CMD_READ))
                f |= RESP_ACL_KEY_R;
        }
        if (add_flags(st, v[i].pattern_type, v[i].name, f) != 0) {
            resp_acl_state_free(st);
            return -ENOMEM;
        }
    }
    st->cmds = cmds;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * State -> Redis's words
 */
static int put(td_buf *b, const char *s)
{
    return td_buf_append(b, s, strlen(s));
}

/* A pattern as Redis writes it: the key (or key prefix) of the name (glob_to_acl's inverse;
 * a name that holds none, from an ACL made otherwise, as it is) with its glob characters
 * escaped, a prefix with its '*'. */
static int put_pattern(td_buf *b, const resp_acl_pat *p)
{
    if (p->ptype == TD_PAT_LITERAL && !strcmp(p->name, "*"))
        return put(b, "*");
    uint8_t key[TD_ACL_NAME_MAX];
    size_t n = strlen(p->name), bad;
    ssize_t kn = p->ptype == TD_PAT_LITERAL ? td_name_to_key(p->name, n, key, sizeof(key))
                                            : td_name_unescape(p->name, n, key, sizeof(key), &bad);
    if (kn < 0) {
        memcpy(key, p->name, n);
        kn = (ssize_t)n;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < (size_t)kn; i++) {
        if (key[i] && strchr("*?[]\\", key[i]))
            rc = td_buf_append(b, "\\", 1);
        if (rc == 0)
            rc = td_buf_append(b, &key[i], 1);
    }
    return rc == 0 && p->ptype == TD_PAT_PREFIXED ? put(b, "*") : rc;
}

/* The key or channel patterns, space-separated; with `list`, as ACL LIST writes them (channels
 * after "resetchannels" unless they are all) with a trailing space after each. */
static int put_patterns(td_buf *b, const resp_acl_state *st, bool chan, bool list)
{
    int rc = 0;
    bool first = true;
    for (size_t i = 0; rc == 0 && i < st->n; i++) {
        const resp_acl_pat *p = &st->v[i];
        unsigned k = p->flags & (RESP_ACL_KEY_R | RESP_ACL_KEY_W);
        if (chan ? !(p->flags & RESP_ACL_CHAN) : !k)
            continue;
        if (!first && !list)
            rc = put(b, " ");
        first = false;
        if (rc == 0)
            rc = put(b, chan                  ? "&"
                        : k == RESP_ACL_KEY_R ? "%R~"
                        : k == RESP_ACL_KEY_W ? "%W~"
                                              : "~");
        if (rc == 0)
            rc = put_pattern(b, p);
        if (rc == 0 && list)
            rc = put(b, " ");
    }
    return rc;
}

static int put_commands(td_buf *b, unsigned cmds)
{
    if (cmds == RESP_ACL_CMDS_ALL)
        return put(b, "+@all");
    /* Redis 7.0's order: @write before @read, then @admin. */
    int rc = put(b, "-@all");
    if (rc == 0 && (cmds & RESP_ACL_CMD_WRITE))
        rc = put(b, " +@write");
    if (rc == 0 && (cmds & RESP_ACL_CMD_READ))
        rc = put(b, " +@read");
    if (rc == 0 && (cmds & RESP_ACL_CMD_ADMIN))
        rc = put(b, " +@admin");
    return rc;
}

int resp_acl_render(const resp_acl_state *st, int part, td_buf *b)
{
    int rc;
    switch (part) {
    case RESP_ACL_RENDER_KEYS:
        return put_patterns(b, st, false, false);
    case RESP_ACL_RENDER_CHANNELS:
        return put_patterns(b, st, true, false);
    case RESP_ACL_RENDER_COMMANDS:
        return put_commands(b, st->cmds);
    default: /* ACL LIST's: "~a %R~b resetchannels &c -@all +@read" */
        rc = put_patterns(b, st, false, true);
        bool all_chan = false;
        for (size_t i = 0; i < st->n; i++)
            all_chan |= (st->v[i].flags & RESP_ACL_CHAN) && st->v[i].ptype == TD_PAT_LITERAL &&
                        !strcmp(st->v[i].name, "*");
        if (rc == 0 && all_chan)
            rc = put(b, "&* ");
        if (rc == 0 && !all_chan) {
            rc = put(b, "resetchannels ");
            if (rc == 0)
                rc = put_patterns(b, st, true, true);
        }
        return rc ? rc : put_commands(b, st->cmds);
    }
}
