/* libFuzzer target: the Redis protocol codec (proto/resp/codec.c). The input is read as a
 * pipeline of commands until one is incomplete or refused; each command's length must be within
 * what is left, every argument must lie in the input or be an inline copy no longer than its
 * line, every strict prefix of a command must need more input, and a refusal must say why with
 * a "Protocol error" text. The input split at its first NUL is also a glob pattern and a string,
 * matched against a plain recursive reference (Redis's stringmatchlen) on small sizes. Each
 * command's arguments are also read as ACL SETUSER rules: a refusal names a rule that exists
 * and says why, an accepted password lies inside the input, and the ACLs accepted rules make
 * are valid and survive being read back as rules (acl_rules.c). Each argument is also read as
 * notify-keyspace-events: an accepted value's canonical text reads back as the same classes
 * (notify.c; `A` leaves `n` out of the text, as Redis's does); and as a stream ID and a range
 * bound (stream_id.c): an accepted ID written back reads as the same ID, strict acceptance
 * implies the loose one, and a bound refused says why in Redis's words. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/resp/resp_int.h"

/* The arguments from argv[from] on as XADD's fields (fields.c's entity split). */
static void entity_check(const resp_cmd *c, size_t from)
{
    if (c->argc <= from)
        return;
    size_t nfv = (c->argc - from) & ~(size_t)1;
    const td_slice *fv = c->argv + from;
    td_slice rest[64];
    size_t nrest = 0;
    resp_entity en;
    const char *why = NULL;
    bool named = resp_fields_entity_named(fv, nfv);
    if (resp_fields_entity_split(fv, nfv, rest, &nrest, &en, &why) != 0) {
        if (!named || !why || strncmp(why, "ERR ", 4) || strchr(why, '\r') || strchr(why, '\n'))
            abort();
        return;
    }
    if (named != (en.has_key || en.has_expect) || (en.has_expect && !en.has_key) ||
        nrest + 2 * en.has_key + 2 * en.has_expect != nfv)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < nfv; i += 2) {
        if (en.has_key && fv[i + 1].p == en.key.p && fv[i + 1].n == en.key.n &&
            fv[i].n == strlen(RESP_ENTITY_KEY) && !memcmp(fv[i].p, RESP_ENTITY_KEY, fv[i].n))
            continue;
        if (en.has_expect && fv[i + 1].p == en.expect.p && fv[i].n == strlen(RESP_ENTITY_EXPECT) &&
            !memcmp(fv[i].p, RESP_ENTITY_EXPECT, fv[i].n))
            continue;
        if (k + 2 > nrest || rest[k].p != fv[i].p || rest[k + 1].p != fv[i + 1].p)
            abort();
        k += 2;
    }
    if (k != nrest)
        abort();
    if (en.by_id) { /* the ID written back reads as the same ID */
        char buf[RESP_SID_TEXT_MAX];
        td_sid back;
        size_t n = resp_sid_format(buf, en.id);
        if (!resp_sid_parse((const uint8_t *)buf, n, 0, RESP_SID_STRICT, &back, NULL) ||
            td_sid_cmp(back, en.id) != 0)
            abort();
    } else if (en.has_expect && en.expected < 0 && en.expected != TD_VERSION_ANY &&
               en.expected != TD_VERSION_NO_STREAM && en.expected != TD_VERSION_EXISTS) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Redis's recursive matcher, for '*', '?', '\' and [...] (without the nesting limit). */
static bool ref(const char *p, size_t pl, const char *s, size_t sl)
{
    while (pl && sl) {
        switch (p[0]) {
        case '*':
            while (pl > 1 && p[1] == '*') {
                p++;
                pl--;
            }
            if (pl == 1)
                return true;
            while (sl) {
                if (ref(p + 1, pl - 1, s, sl))
                    return true;
                s++;
                sl--;
            }
            return false;
        case '?':
            break;
        case '[': {
            p++;
            pl--;
            bool neg = pl && p[0] == '^', match = false;
            if (neg) {
                p++;
                pl--;
            }
            for (;;) {
                if (pl >= 2 && p[0] == '\\') {
                    p++;
                    pl--;
                    if (p[0] == s[0])
                        match = true;
                } else if (pl && p[0] == ']') {
                    break;
                } else if (pl == 0) {
                    p--;
                    pl++;
                    break;
                } else if (pl >= 3 && p[1] == '-') {
                    int a = (unsigned char)p[0], b = (unsigned char)p[2], c = (unsigned char)s[0];
                    if (a > b) {
                        int t = a;
                        a = b;
                        b = t;
                    }
                    p += 2;
                    pl -= 2;
                    if (c >= a && c <= b)
                        match = true;
                } else if (p[0] == s[0]) {
                    match = true;
                }
                p++;
                pl--;
            }
            if (neg)
                match = !match;
            if (!match)
                return false;
            break;
        }
        case '\\':
            if (pl >= 2) {
                p++;
                pl--;
            }
            /* fall through */
        default:
            if (p[0] != s[0])
                return false;
            break;
        }
        p++;
        pl--;
        s++;
        sl--;
        if (sl == 0) {
            while (pl && *p == '*') {
                p++;
                pl--;
            }
            break;
        }
    }
    return pl == 0 && sl == 0;
}

/* Stream entry fields: any value reads as fields without harm; fields split from the input (at
 * each '|') survive the encoding XADD picks, exactly. */
static void fields_round_trip(const uint8_t *data, size_t size)
{
    td_arena a;
    td_arena_init(&a);
    td_event ev = {.value = data, .value_len = size};
    td_slice *f;
    size_t n;
    if (resp_event_fields(&ev, &a, &f, &n) != 0)
        abort();
    td_slice in[64];
    size_t k = 0, from = 0;
    for (size_t i = 0; i <= size && k < 64; i++) {
        if (i == size || data[i] == '|') {
            in[k++] = td_slice_make(data + from, i - from);
            from = i + 1;
        }
    }
    k -= k % 2;
    bool json = resp_fields_json_ok(in, k);
    td_buf b;
    td_buf_init(&b);
    if (resp_fields_encode(&b, in, k, json) != 0)
        abort();
    td_header h = {"content-type", 12, RESP_FIELDS_CONTENT_TYPE,
                   sizeof(RESP_FIELDS_CONTENT_TYPE) - 1};
    td_event enc = {.value = b.p,
                    .value_len = b.len,
                    .headers = json ? NULL : &h,
                    .header_count = json ? 0 : 1};
    if (resp_event_fields(&enc, &a, &f, &n) != 0 || n != k)
        abort();
    for (size_t i = 0; i < k; i++)
        if (f[i].n != in[i].n || (in[i].n && memcmp(f[i].p, in[i].p, in[i].n)))
            abort();
    /* As XADD stores them: the Trace Context fields as headers (docs/tracing.md), read back
     * after the others, in their order. */
    td_slice rest[64], want[64];
    td_header trace[2], hs[3] = {h};
    size_t nrest, nt = resp_fields_trace_split(in, k, rest, &nrest, trace);
    if (nt > 2 || nrest + 2 * nt != k)
        abort();
    json = resp_fields_json_ok(rest, nrest);
    td_buf_reset(&b);
    if (resp_fields_encode(&b, rest, nrest, json) != 0)
        abort();
    size_t nh = json ? 0 : 1, nw = nrest;
    memcpy(want, rest, nrest * sizeof(*rest));
    for (size_t t = 0; t < nt; t++) {
        hs[nh++] = trace[t];
        want[nw++] = td_slice_make(trace[t].key, trace[t].key_len);
        want[nw++] = td_slice_make(trace[t].value, trace[t].value_len);
    }
    td_event split = {.value = b.p, .value_len = b.len, .headers = hs, .header_count = nh};
    if (resp_event_fields(&split, &a, &f, &n) != 0 || n != k)
        abort();
    for (size_t i = 0; i < k; i++)
        if (f[i].n != want[i].n || (want[i].n && memcmp(f[i].p, want[i].p, want[i].n)))
            abort();
    td_buf_free(&b);
    td_arena_free(&a);
}

/* Whether b holds every ACL of a (by resource, pattern, name and operation). */
static bool acls_within(const td_acl *a, size_t na, const td_acl *b, size_t nb)
{
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t k = 0; k < nb && !found; k++)
            found = a[i].resource_type == b[k].resource_type &&
                    a[i].pattern_type == b[k].pattern_type && a[i].operation == b[k].operation &&
                    !strcmp(a[i].name, b[k].name);
        if (!found)
            return false;
    }
    return true;
}

/* The rules applied to an empty state: the ACLs they make are valid, read back as a state that
 * makes the same ACLs (all of them SETUSER's), and render without failing. */
static void acl_state_check(const resp_cmd *c)
{
    resp_acl_state st, st2;
    resp_acl_state_init(&st);
    resp_acl_rules r;
    size_t bad = (size_t)-1;
    char why[256] = "";
    if (resp_acl_rules_parse(c->argv, c->argc, &r, &st, &bad, why, sizeof(why)) != 0) {
        resp_acl_state_free(&st);
        return;
    }
    td_acl *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (resp_acl_encode(&st, "User:u", &a, &na) != 0)
        abort();
    for (size_t i = 0; i < na; i++)
        if (td_acl_validate(&a[i]) != 0)
            abort();
    td_error_clear();
    bool *managed = calloc(na ? na : 1, sizeof(bool));
    if (!managed || resp_acl_decode(a, na, "User:u", &st2, managed) != 0)
        abort();
    for (size_t i = 0; i < na; i++)
        if (!managed[i])
            abort();
    if (resp_acl_encode(&st2, "User:u", &b, &nb) != 0 || na != nb || !acls_within(a, na, b, nb))
        abort();
    td_buf out;
    td_buf_init(&out);
    for (int part = RESP_ACL_RENDER_LIST; part <= RESP_ACL_RENDER_COMMANDS; part++)
        if (resp_acl_render(&st2, part, &out) != 0)
            abort();
    td_buf_free(&out);
    free(managed);
    free(a);
    free(b);
    resp_acl_state_free(&st);
    resp_acl_state_free(&st2);
}

static void acl_rules_check(const resp_cmd *c)
{
    resp_acl_rules r;
    size_t bad = (size_t)-1;
    char why[256] = "";
    if (resp_acl_rules_parse(c->argv, c->argc, &r, NULL, &bad, why, sizeof(why)) != 0) {
        if (bad >= c->argc || !why[0])
            abort();
        return;
    }
    if (r.password) {
        bool in = false;
        for (size_t i = 0; i < c->argc && !in; i++)
            in = r.password == c->argv[i].p + 1 && r.password_len == c->argv[i].n - 1;
        if (!in || r.off || r.nopass)
            abort();
    } else if (r.resetpass) {
        abort();
    }
    if (r.narrows && !r.perms)
        abort();
    acl_state_check(c);
}

static void notify_check(const resp_cmd *c)
{
    for (size_t i = 0; i < c->argc; i++) {
        int f = resp_notify_flags_parse((const char *)c->argv[i].p, c->argv[i].n);
        if (f < 0)
            continue;
        char text[32];
        resp_notify_flags_format(f, text);
        int back = resp_notify_flags_parse(text, strlen(text));
        int lost = (f & RESP_NOTIFY_ALL) == RESP_NOTIFY_ALL ? RESP_NOTIFY_NEW : 0;
        if (strlen(text) > 15 || back != (f & ~lost))
            abort();
    }
}

/* A stream ID argument under every flag combination, and as both range bounds. */
static void stream_id_check(td_slice a)
{
    td_sid strict, loose, back;
    bool given = true;
    bool ok_strict = resp_sid_parse(a.p, a.n, 3, RESP_SID_STRICT, &strict, NULL);
    bool ok_loose = resp_sid_parse(a.p, a.n, 3, 0, &loose, NULL);
    if (ok_strict && (!ok_loose || td_sid_cmp(strict, loose) != 0))
        abort();
    if (resp_sid_parse(a.p, a.n, 3, RESP_SID_STRICT | RESP_SID_MS_STAR, &back, &given) &&
        given != ok_strict)
        abort(); /* only `ms-*` is accepted with the star and not without */
    if (ok_loose) {
        char buf[RESP_SID_TEXT_MAX];
        size_t n = resp_sid_format(buf, loose);
        if (n > sizeof(buf) ||
            !resp_sid_parse((const uint8_t *)buf, n, 0, RESP_SID_STRICT, &back, NULL) ||
            td_sid_cmp(back, loose) != 0)
            abort();
    }
    for (int start = 0; start < 2; start++) {
        td_sid id;
        const char *e = resp_sid_bound(a.p, a.n, start, &id);
        if (e && strncmp(e, "ERR ", 4))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    resp_limits lim;
    resp_limits_default(&lim);
    lim.max_args = 64;
    lim.max_bulk = 4096;
    lim.max_inline = 1024;
    size_t pos = 0;
    for (int k = 0; k < 64 && pos < size; k++) {
        td_arena a;
        td_arena_init(&a);
        resp_cmd c;
        const char *why = NULL;
        int rc = resp_parse_command(data + pos, size - pos, &lim, &a, &c, &why);
        if (rc == TD_EPROTO && (!why || strncmp(why, "Protocol error: ", 16)))
            abort();
        if (rc != 0) {
            td_arena_free(&a);
            break;
        }
        if (c.len == 0 || c.len > size - pos || c.argc > lim.max_args)
            abort();
        for (size_t i = 0; i < c.argc; i++) {
            const td_slice *s = &c.argv[i];
            bool inside = s->p >= data + pos && s->p + s->n <= data + pos + c.len;
            if (s->n > c.len || (!inside && data[pos] == '*' && s->n))
                abort();
        }
        for (size_t cut = 0; cut < c.len; cut += 1 + cut / 4) {
            td_arena b;
            td_arena_init(&b);
            resp_cmd d;
            if (resp_parse_command(data + pos, cut, &lim, &b, &d, &why) != TD_EAGAIN)
                abort();
            td_arena_free(&b);
        }
        acl_rules_check(&c);
        notify_check(&c);
        for (size_t i = 0; i < c.argc; i++)
            stream_id_check(c.argv[i]);
        entity_check(&c, 1);
        entity_check(&c, 2);
        pos += c.len;
        td_arena_free(&a);
    }
    fields_round_trip(data, size);
    const uint8_t *nul = memchr(data, 0, size);
    if (nul && (size_t)(nul - data) <= 24 && size - (size_t)(nul - data) - 1 <= 24) {
        const char *p = (const char *)data, *s = (const char *)nul + 1;
        size_t pl = (size_t)(nul - data), sl = size - pl - 1;
        if (resp_glob_match(p, pl, s, sl, false) != ref(p, pl, s, sl))
            abort();
    }
    return 0;
}
