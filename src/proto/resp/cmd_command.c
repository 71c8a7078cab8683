/*
 * cmd_command.c: COMMAND and its subcommands (COUNT, DOCS, GETKEYS, GETKEYSANDFLAGS, HELP, INFO,
 * LIST), answered as Redis 7.0 answers them. What is served comes from the handler tables
 * (resp_commands[] and the *_subs tables); what is said about each command comes from the
 * generated metadata (cmd_meta.h), built from Redis 7.0.15's own command descriptions.
 *
 * One difference is unavoidable: Redis lists commands and subcommands in the order of its hash
 * tables, which is random per process; tidings lists them in its table order.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/resp/cmd_meta.h"
#include "proto/resp/resp_int.h"

static size_t count_table(const rcmd *t)
{
    size_t n = 0;
    while (t[n].name)
        n++;
    return n;
}

static int meta_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const resp_cmdmeta *)elem)->fullname);
}

/* The metadata of a full name in lower case ("client|list"), or NULL. */
static const resp_cmdmeta *meta_find(const char *full)
{
    return bsearch(full, resp_cmdmeta_table, resp_cmdmeta_count, sizeof(resp_cmdmeta), meta_cmp);
}

static const resp_cmdmeta *meta_of(const rcmd *parent, const rcmd *c)
{
    char full[64];
    resp_command_fullname(parent, c, full, sizeof(full));
    for (char *p = full; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return meta_find(full);
}

/* Writes a generated reply (cmd_meta.h's ops). */
static void emit_ops(resp_w *w, const char *ops)
{
    while (*ops) {
        char t = *ops++;
        const char *end = strchr(ops, '\x1e');
        size_t n = (size_t)(end - ops);
        switch (t) {
        case 'A':
            resp_w_array(w, strtoul(ops, NULL, 10));
            break;
        case 'M':
            resp_w_map(w, strtoul(ops, NULL, 10));
            break;
        case 'S':
            resp_w_set(w, strtoul(ops, NULL, 10));
            break;
        case ':':
            resp_w_int(w, strtoll(ops, NULL, 10));
            break;
        case 'B':
            resp_w_bulk(w, ops, n);
            break;
        default: { /* '+': a status; the longest is an ACL category or a flag */
            char buf[64];
            size_t k = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1;
            memcpy(buf, ops, k);
            buf[k] = 0;
            resp_w_simple(w, buf);
            break;
        }
        }
        ops = end + 1;
    }
}

/* COMMAND INFO's entry of one command (Redis's addReplyCommandInfo). A served command always
 * has metadata (test_command_meta checks it); a missing one would answer nil. */
static void command_info(resp_w *w, const rcmd *parent, const rcmd *c)
{
    const resp_cmdmeta *m = meta_of(parent, c);
    if (!m) {
        resp_w_null_array(w);
        return;
    }
    resp_w_array(w, 10);
    emit_ops(w, m->info);
    if (!c->subs) {
        resp_w_set(w, 0);
        return;
    }
    size_t ns = count_table(c->subs);
    resp_w_array(w, ns);
    for (size_t i = 0; i < ns; i++)
        command_info(w, c, &c->subs[i]);
}

/* COMMAND DOCS's value for one command (Redis's addReplyCommandDocs), after its name. */
static void command_docs_one(resp_w *w, const rcmd *parent, const rcmd *c)
{
    const resp_cmdmeta *m = meta_of(parent, c);
    if (!m) {
        resp_w_map(w, 0);
        return;
    }
    emit_ops(w, m->docs);
    if (!c->subs)
        return;
    size_t ns = count_table(c->subs);
    resp_w_str(w, "subcommands");
    resp_w_map(w, ns);
    for (size_t i = 0; i < ns; i++) {
        char full[64];
        resp_command_fullname(c, &c->subs[i], full, sizeof(full));
        resp_w_str(w, full);
        command_docs_one(w, c, &c->subs[i]);
    }
}

static void docs_entry(resp_w *w, const rcmd *parent, const rcmd *c)
{
    char full[64];
    resp_command_fullname(parent, c, full, sizeof(full));
    resp_w_str(w, full);
    command_docs_one(w, parent, c);
}

void resp_cmd_command(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argv;
    if (argc != 1) /* subcommands are dispatched on their own */
        return;
    size_t n = count_table(resp_commands);
    resp_w_array(w, n);
    for (size_t i = 0; i < n; i++)
        command_info(w, NULL, &resp_commands[i]);
}

static void command_count(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    resp_w_int(w, (int64_t)count_table(resp_commands));
}

/* "client|setname" or "client" (case-insensitive): the command, its parent in *parent (Redis's
 * lookupCommandBySds). */
static const rcmd *find_full(td_slice name, const rcmd **parent)
{
    *parent = NULL;
    const uint8_t *bar = memchr(name.p, '|', name.n);
    if (!bar)
        return resp_command_find(resp_commands, name);
    const rcmd *p = resp_command_find(resp_commands, td_slice_make(name.p, (size_t)(bar - name.p)));
    if (!p || !p->subs)
        return NULL;
    *parent = p;
    return resp_command_find(p->subs, td_slice_make(bar + 1, name.n - (size_t)(bar - name.p) - 1));
}

/* COMMAND LIST's filters (Redis's commandListFilter); MODULE matches nothing (no modules). */
typedef struct list_filter {
    int type; /* 0 none, 1 module, 2 aclcat, 3 pattern */
    td_slice arg;
    uint32_t cat;
} list_filter;

static bool list_keep(const list_filter *f, const rcmd *parent, const rcmd *c, const char *full)
{
    switch (f->type) {
    case 0:
        return true;
    case 2: {
        const resp_cmdmeta *m = meta_of(parent, c);
        return f->cat && m && (m->acl & f->cat);
    }
    case 3:
        return resp_glob_match((const char *)f->arg.p, f->arg.n, full, strlen(full), true);
    default:
        return false;
    }
}

static void command_list(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    list_filter f = {0, {NULL, 0}, 0};
    for (size_t i = 2; i < argc; i++) {
        if (resp_arg_is(argv[i], "filterby") && argc - 1 - i == 2) {
            if (resp_arg_is(argv[i + 1], "module"))
                f.type = 1;
            else if (resp_arg_is(argv[i + 1], "aclcat"))
                f.type = 2;
            else if (resp_arg_is(argv[i + 1], "pattern"))
                f.type = 3;
            else {
                resp_reply_syntax(w);
                return;
            }
            f.arg = argv[i + 2];
            i += 2;
        } else {
            resp_reply_syntax(w);
            return;
        }
    }
    if (f.type == 2)
        for (size_t k = 0; resp_acl_categories[k]; k++)
            if (resp_arg_is(f.arg, resp_acl_categories[k]))
                f.cat = 1u << k;
    /* Two passes (count, then write) keep the reply free of a deferred length. */
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0;
        for (const rcmd *c = resp_commands; c->name; c++) {
            char full[64];
            resp_command_fullname(NULL, c, full, sizeof(full));
            if (list_keep(&f, NULL, c, full) && ++n && pass)
                resp_w_str(w, full);
            for (const rcmd *s = c->subs; s && s->name; s++) {
                resp_command_fullname(c, s, full, sizeof(full));
                if (list_keep(&f, c, s, full) && ++n && pass)
                    resp_w_str(w, full);
            }
        }
        if (!pass)
            resp_w_array(w, n);
    }
}

static void command_info_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    if (argc == 2) {
        resp_cmd_command(rc, w, 1, argv);
        return;
    }
    resp_w_array(w, argc - 2);
    for (size_t i = 2; i < argc; i++) {
        const rcmd *parent, *c = find_full(argv[i], &parent);
        if (c)
            command_info(w, parent, c);
        else
            resp_w_null(w);
    }
}

static void command_docs(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    if (argc == 2) {
        size_t n = count_table(resp_commands);
        resp_w_map(w, n);
        for (size_t i = 0; i < n; i++)
            docs_entry(w, NULL, &resp_commands[i]);
        return;
    }
    size_t found = 0;
    for (size_t i = 2; i < argc; i++) {
        const rcmd *parent;
        found += find_full(argv[i], &parent) != NULL;
    }
    resp_w_map(w, found);
    for (size_t i = 2; i < argc; i++) {
        const rcmd *parent, *c = find_full(argv[i], &parent);
        if (c)
            docs_entry(w, parent, c);
    }
}

/* ---------------------------------------------------------------------------------------------
 * COMMAND GETKEYS and GETKEYSANDFLAGS: Redis's getKeysFromCommandWithSpecs over the key specs,
 * with xreadGetKeys as the fallback of XREAD and XREADGROUP.
 */
typedef struct key_ref {
    int pos;
    unsigned flags;
} key_ref;

/* The keys by the specs: their number (at most cap are stored), or -1 when a spec does not fit
 * the arguments (Redis's invalid_spec). */
static int keys_by_specs(const resp_cmdmeta *m, size_t argc, const td_slice *argv, key_ref *out,
                         int cap)
{
    int n = 0, ac = (int)argc;
    for (int j = 0; j < m->nspecs; j++) {
        const resp_keyspec *sp = &m->specs[j];
        if (sp->flags & RESP_KS_NOT_KEY)
            continue;
        int first = 0, last, step;
        if (sp->bs == RESP_BS_INDEX) {
            first = sp->pos;
        } else if (sp->bs == RESP_BS_KEYWORD) {
            int start = sp->startfrom > 0 ? sp->startfrom : ac + sp->startfrom;
            int end = sp->startfrom > 0 ? ac - 1 : 1;
            for (int i = start; i != end; i = start <= end ? i + 1 : i - 1) {
                if (i >= ac || i < 1)
                    break;
                if (resp_arg_is(argv[i], sp->keyword)) {
                    first = i + 1;
                    break;
                }
            }
            if (!first)
                continue;
        } else {
            return -1;
        }
        if (sp->fk == RESP_FK_RANGE) {
            step = sp->b;
            if (sp->a >= 0)
                last = first + sp->a;
            else if (!sp->c)
                last = ac + sp->a;
            else
                last = first + ((ac - first) / sp->c + sp->a);
        } else if (sp->fk == RESP_FK_KEYNUM) {
            long long nk;
            step = sp->c;
            if (sp->a >= ac || first + sp->a >= ac ||
                !resp_parse_ll(argv[first + sp->a].p, argv[first + sp->a].n, &nk) || nk < 0 ||
                nk > ac)
                return -1;
            first += sp->b;
            last = first + (int)nk - 1;
        } else {
            return -1;
        }
        if (last >= ac || last < first || first >= ac || step < 1)
            return -1;
        for (int i = first; i <= last; i += step)
            if (n < cap)
                out[n++] = (key_ref){i, sp->flags};
        if (sp->flags & RESP_KS_INCOMPLETE)
            return -1;
    }
    return n;
}

/* Redis's xreadGetKeys: the keys after STREAMS, half of what follows. */
static int keys_xread(size_t argc, const td_slice *argv, key_ref *out, int cap)
{
    size_t i, streams = 0;
    for (i = 1; i < argc; i++) {
        if (resp_arg_is(argv[i], "block") || resp_arg_is(argv[i], "count"))
            i++;
        else if (resp_arg_is(argv[i], "group"))
            i += 2;
        else if (resp_arg_is(argv[i], "noack"))
            continue;
        else {
            if (resp_arg_is(argv[i], "streams"))
                streams = i;
            break;
        }
    }
    size_t num = streams ? argc - streams - 1 : 0;
    if (!streams || num == 0 || num % 2)
        return 0;
    int n = 0;
    for (i = streams + 1; i < argc - num / 2; i++)
        if (n < cap)
            out[n++] = (key_ref){(int)i, 0};
    return n;
}

static void getkeys(resp_w *w, size_t argc, const td_slice *argv, bool with_flags)
{
    const td_slice *cargv = argv + 2;
    size_t cargc = argc - 2;
    const rcmd *parent = NULL, *c = resp_command_find(resp_commands, cargv[0]);
    if (c && c->subs && cargc > 1) {
        parent = c;
        c = resp_command_find(c->subs, cargv[1]);
    }
    const resp_cmdmeta *m = c ? meta_of(parent, c) : NULL;
    if (!m) {
        resp_w_error(w, "ERR Invalid command specified");
        return;
    }
    bool has_keys = (m->flags & RESP_META_XREAD_KEYS) != 0, varflags = false;
    for (int j = 0; j < m->nspecs; j++) {
        has_keys |= !(m->specs[j].flags & RESP_KS_NOT_KEY);
        varflags |= (m->specs[j].flags & RESP_KS_VARIABLE_FLAGS) != 0;
    }
    if (!has_keys) {
        resp_w_error(w, "ERR The command has no key arguments");
        return;
    }
    if ((m->arity > 0 && (size_t)m->arity != cargc) || (long long)cargc < -(long long)m->arity) {
        resp_w_error(w, "ERR Invalid number of arguments specified for command");
        return;
    }
    /* Bounded by the request's own argument count: a key is an argument. */
    key_ref stack[64], *keys = stack;
    int cap = (int)TD_ARRAY_LEN(stack);
    if (cargc > TD_ARRAY_LEN(stack)) {
        keys = malloc(cargc * sizeof(*keys));
        if (!keys) {
            resp_w_error(w, "ERR out of memory");
            return;
        }
        cap = (int)cargc;
    }
    int n = -1;
    bool spec_keys = false;
    for (int j = 0; j < m->nspecs; j++)
        spec_keys |= !(m->specs[j].flags & RESP_KS_NOT_KEY);
    if (spec_keys && !varflags)
        n = keys_by_specs(m, cargc, cargv, keys, cap);
    if (n < 0)
        n = (m->flags & RESP_META_XREAD_KEYS) ? keys_xread(cargc, cargv, keys, cap) : 0;
    if (n == 0) {
        if (m->flags & RESP_META_NO_MANDATORY_KEYS)
            resp_w_array(w, 0);
        else
            resp_w_error(w, "ERR Invalid arguments specified for command");
    } else {
        static const char *const kf[] = {
            "RO",     "RW",     "OW",      "RM",         "access",        "update",
            "insert", "delete", "not_key", "incomplete", "variable_flags"};
        resp_w_array(w, (size_t)n);
        for (int i = 0; i < n; i++) {
            const td_slice *k = &cargv[keys[i].pos];
            if (with_flags)
                resp_w_array(w, 2);
            resp_w_bulk(w, k->p, k->n);
            if (!with_flags)
                continue;
            size_t nf = 0;
            for (size_t b = 0; b < TD_ARRAY_LEN(kf); b++)
                nf += (keys[i].flags >> b) & 1;
            resp_w_set(w, nf);
            for (size_t b = 0; b < TD_ARRAY_LEN(kf); b++)
                if ((keys[i].flags >> b) & 1)
                    resp_w_simple(w, kf[b]);
        }
    }
    if (keys != stack)
        free(keys);
}

static void command_getkeys(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    getkeys(w, argc, argv, false);
}

static void command_getkeysandflags(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    getkeys(w, argc, argv, true);
}

static void command_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
        "HELP",
        "    Prints this help.",
        NULL};
    resp_reply_help(w, lines);
}

#define SRV "server"
const rcmd resp_command_subs[] = {
    {"count", 2, RF_LOADING | RF_STALE, command_count, SRV, NULL, NULL, 0, 0, 0, NULL, NULL},
    {"docs", -2, RF_LOADING | RF_STALE, command_docs, SRV, NULL, NULL, 0, 0, 0, NULL, NULL},
    {"getkeys", -4, RF_LOADING | RF_STALE, command_getkeys, SRV, NULL, NULL, 0, 0, 0, NULL, NULL},
    {"getkeysandflags", -4, RF_LOADING | RF_STALE, command_getkeysandflags, SRV, NULL, NULL, 0, 0,
     0, NULL, NULL},
    {"help", 2, RF_LOADING | RF_STALE, command_help, SRV, NULL, NULL, 0, 0, 0, NULL, NULL},
    {"info", -2, RF_LOADING | RF_STALE, command_info_cmd, SRV, NULL, NULL, 0, 0, 0, NULL, NULL},
    {"list", -2, RF_LOADING | RF_STALE, command_list, SRV, NULL, NULL, 0, 0, 0, NULL, NULL},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

bool resp_command_in_category(const rcmd *parent, const rcmd *c, const char *cat)
{
    const resp_cmdmeta *m = meta_of(parent, c);
    for (size_t k = 0; m && resp_acl_categories[k]; k++)
        if (!strcmp(resp_acl_categories[k], cat))
            return (m->acl >> k) & 1;
    return false;
}
