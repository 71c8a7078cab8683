/*
 * fields.c: stream entry fields <-> events (docs/redis.md#fields). Pure functions over buffers.
 *
 * XADD's fields become the event's value: a JSON object {"name":"value",...} when every name and
 * value is valid UTF-8 and the names are distinct (readable by any Kafka or HTTP consumer), else
 * a RESP array of the names and values with the header content-type: application/x-redis-fields
 * (binary-safe, order and repeated names kept). Reading turns any event into fields: those of
 * such an array, or `key` (when there is a key), the members of a JSON object value (strings
 * unescaped, other values as their JSON text) or `value` (any other value), and every header.
 *
 * The fields named `traceparent` and `tracestate` (W3C Trace Context, docs/tracing.md) are the
 * event's headers of those names, not members of its value, when each appears once; reading
 * gives them back as fields after the others, as every header. The fields `tidings-key` and
 * `tidings-expected-version` (docs/event-sourcing.md#redis) are the event's key and its
 * condition (resp_fields_entity_split); reading gives the key back as `key`, first.
 *
 * XADD's options DELAY and DELIVERAT (docs/redis.md#delayed-delivery) become a header of the
 * event too (resp_delay_parse).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "broker/broker.h"
#include "proto/resp/resp.h"
#include "proto/resp/stream_id.h"

#define JSON_MAX_FIELDS 256 /* above, names are not compared for uniqueness: RESP array */
#define JSON_MAX_DEPTH 64

bool resp_fields_json_ok(const td_slice *fv, size_t n)
{
    if (n / 2 > JSON_MAX_FIELDS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!td_utf8_valid(fv[i].p, fv[i].n))
            return false;
    for (size_t i = 0; i < n; i += 2)
        for (size_t j = i + 2; j < n; j += 2)
            if (fv[i].n == fv[j].n && memcmp(fv[i].p, fv[j].p, fv[i].n) == 0)
                return false;
    return true;
}

static int json_string(td_buf *b, td_slice s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = td_buf_append(b, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < s.n && rc == 0; i++) {
        uint8_t c = s.p[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = td_buf_append(b, s.p + from, i - from);
        char esc[6] = {'\\', (char)c, 0};
        size_t en = 2;
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            en = 6;
        }
        if (rc == 0)
            rc = td_buf_append(b, esc, en);
        from = i + 1;
    }
    if (rc == 0)
        rc = td_buf_append(b, s.p + from, s.n - from);
    if (rc == 0)
        rc = td_buf_append(b, "\"", 1);
    return rc;
}

int resp_fields_encode(td_buf *out, const td_slice *fv, size_t n, bool json)
{
    int rc = 0;
    char hdr[32];
    if (json) {
        rc = td_buf_append(out, "{", 1);
        for (size_t i = 0; i + 1 < n && rc == 0; i += 2) {
            if (i)
                rc = td_buf_append(out, ",", 1);
            if (rc == 0)
                rc = json_string(out, fv[i]);
            if (rc == 0)
                rc = td_buf_append(out, ":", 1);
            if (rc == 0)
                rc = json_string(out, fv[i + 1]);
        }
        return rc ? rc : td_buf_append(out, "}", 1);
    }
    int k = snprintf(hdr, sizeof(hdr), "*%zu\r\n", n);
    rc = td_buf_append(out, hdr, (size_t)k);
    for (size_t i = 0; i < n && rc == 0; i++) {
        k = snprintf(hdr, sizeof(hdr), "$%zu\r\n", fv[i].n);
        rc = td_buf_append(out, hdr, (size_t)k);
        if (rc == 0)
            rc = td_buf_append(out, fv[i].p, fv[i].n);
        if (rc == 0)
            rc = td_buf_append(out, "\r\n", 2);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Reading JSON objects: a strict RFC 8259 scanner for the top-level object's members.
 */
typedef struct jscan {
    const uint8_t *p;
    size_t n, i;
} jscan;

static void ws(jscan *j)
{
    while (j->i < j->n &&
           (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' || j->p[j->i] == '\r'))
        j->i++;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_u4(jscan *j, uint32_t *out)
{
    if (j->n - j->i < 4)
        return false;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(j->p[j->i + (size_t)k]);
        if (h < 0)
            return false;
        v = v << 4 | (uint32_t)h;
    }
    j->i += 4;
    *out = v;
    return true;
}

static size_t put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string at j->i (the opening quote); *out (may be NULL: only checked) gets its decoded bytes,
 * in the arena when it has escapes. */
static bool scan_string(jscan *j, td_arena *a, td_slice *out)
{
    j->i++;
    size_t start = j->i;
    bool escaped = false;
    while (j->i < j->n && j->p[j->i] != '"') {
        uint8_t c = j->p[j->i];
        if (c < 0x20)
            return false;
        if (c == '\\') {
            escaped = true;
            j->i++;
            if (j->i >= j->n)
                return false;
        }
        j->i++;
    }
    if (j->i >= j->n)
        return false;
    size_t end = j->i++;
    if (!td_utf8_valid(j->p + start, end - start))
        return false;
    if (!escaped) {
        if (out)
            *out = td_slice_make(j->p + start, end - start);
        return true;
    }
    /* Decoding never makes a string longer than its text. */
    uint8_t *o = out ? td_arena_alloc(a, end - start + 1) : NULL;
    if (out && !o)
        return false;
    size_t on = 0;
    jscan e = {j->p, end, start};
    while (e.i < e.n) {
        uint8_t c = e.p[e.i++];
        if (c != '\\') {
            if (o)
                o[on] = c;
            on++;
            continue;
        }
        c = e.p[e.i++];
        uint8_t r;
        switch (c) {
        case '"':
            r = '"';
            break;
        case '\\':
            r = '\\';
            break;
        case '/':
            r = '/';
            break;
        case 'b':
            r = '\b';
            break;
        case 'f':
            r = '\f';
            break;
        case 'n':
            r = '\n';
            break;
        case 'r':
            r = '\r';
            break;
        case 't':
            r = '\t';
            break;
        case 'u': {
            uint32_t cp, lo;
            if (!read_u4(&e, &cp))
                return false;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return false; /* a lone low surrogate */
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (e.n - e.i < 6 || e.p[e.i] != '\\' || e.p[e.i + 1] != 'u')
                    return false;
                e.i += 2;
                if (!read_u4(&e, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return false;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            uint8_t tmp[4];
            size_t k = put_utf8(tmp, cp);
            if (o)
                memcpy(o + on, tmp, k);
            on += k;
            continue;
        }
        default:
            return false;
        }
        if (o)
            o[on] = r;
        on++;
    }
    if (out)
        *out = td_slice_make(o, on);
    return true;
}

static bool scan_value(jscan *j, int depth);

/* Skips a run of decimal digits; returns its length. */
static size_t digits(jscan *j)
{
    size_t d = j->i;
    while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
        j->i++;
    return j->i - d;
}

static bool scan_number(jscan *j)
{
    size_t s = j->i;
    if (j->i < j->n && j->p[j->i] == '-')
        j->i++;
    if (j->i >= j->n)
        return false;
    if (j->p[j->i] == '0') {
        j->i++;
    } else if (j->p[j->i] >= '1' && j->p[j->i] <= '9') {
        digits(j);
    } else {
        return false;
    }
    if (j->i < j->n && j->p[j->i] == '.') {
        j->i++;
        if (digits(j) == 0)
            return false;
    }
    if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
        j->i++;
        if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-'))
            j->i++;
        if (digits(j) == 0)
            return false;
    }
    return j->i > s;
}

static bool scan_word(jscan *j, const char *w)
{
    size_t k = strlen(w);
    if (j->n - j->i < k || memcmp(j->p + j->i, w, k) != 0)
        return false;
    j->i += k;
    return true;
}

/* A value of any kind, only checked (nested containers up to JSON_MAX_DEPTH). */
static bool scan_value(jscan *j, int depth)
{
    ws(j);
    if (j->i >= j->n || depth > JSON_MAX_DEPTH)
        return false;
    uint8_t c = j->p[j->i];
    if (c == '"')
        return scan_string(j, NULL, NULL);
    if (c == 't')
        return scan_word(j, "true");
    if (c == 'f')
        return scan_word(j, "false");
    if (c == 'n')
        return scan_word(j, "null");
    if (c == '{' || c == '[') {
        uint8_t close = c == '{' ? '}' : ']';
        j->i++;
        ws(j);
        if (j->i < j->n && j->p[j->i] == close) {
            j->i++;
            return true;
        }
        for (;;) {
            if (c == '{') {
                ws(j);
                if (j->i >= j->n || j->p[j->i] != '"' || !scan_string(j, NULL, NULL))
                    return false;
                ws(j);
                if (j->i >= j->n || j->p[j->i++] != ':')
                    return false;
            }
            if (!scan_value(j, depth + 1))
                return false;
            ws(j);
            if (j->i >= j->n)
                return false;
            if (j->p[j->i] == ',') {
                j->i++;
                continue;
            }
            if (j->p[j->i++] != close)
                return false;
            return true;
        }
    }
    return scan_number(j);
}

static bool push(td_arena *a, td_slice **v, size_t *vn, size_t *cap, td_slice s)
{
    if (*vn + 1 > *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        td_slice *nv = td_arena_alloc(a, nc * sizeof(*nv));
        if (!nv)
            return false;
        if (*vn)
            memcpy(nv, *v, *vn * sizeof(*nv));
        *v = nv;
        *cap = nc;
    }
    (*v)[(*vn)++] = s;
    return true;
}

/* The members of a JSON object, appended to *v (names and values alternating): strings decoded,
 * other values as their text. 0 if p[0..n) is not exactly one object (nothing added), 1 when it
 * is, -1 when memory ran out. */
static int json_members(const uint8_t *p, size_t n, td_arena *a, td_slice **v, size_t *vn,
                        size_t *cap)
{
    jscan j = {p, n, 0};
    ws(&j);
    if (j.i >= n || p[j.i] != '{')
        return 0;
    /* Checked whole first, so that a bad object adds nothing. */
    jscan chk = j;
    if (!scan_value(&chk, 0))
        return 0;
    ws(&chk);
    if (chk.i != n)
        return 0;
    j.i++;
    for (;;) {
        ws(&j);
        if (p[j.i] == '}')
            return 1;
        td_slice name, val;
        if (!scan_string(&j, a, &name))
            return -1; /* checked above: only memory can fail */
        ws(&j);
        j.i++; /* ':' */
        ws(&j);
        size_t vs = j.i;
        if (p[j.i] == '"') {
            if (!scan_string(&j, a, &val))
                return -1;
        } else {
            scan_value(&j, 1);
            val = td_slice_make(p + vs, j.i - vs);
        }
        if (!push(a, v, vn, cap, name) || !push(a, v, vn, cap, val))
            return -1;
        ws(&j);
        if (p[j.i] == ',')
            j.i++;
    }
}

static bool is_fields_header(const td_header *h)
{
    static const char ct[] = "content-type", val[] = RESP_FIELDS_CONTENT_TYPE;
    return h->key_len == sizeof(ct) - 1 && strncasecmp(h->key, ct, h->key_len) == 0 && h->value &&
           h->value_len == sizeof(val) - 1 && memcmp(h->value, val, h->value_len) == 0;
}

/* How many times the field name `name` (n bytes) is among fv's names. */
static size_t name_count(const td_slice *fv, size_t nfv, const void *name, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i + 1 < nfv; i += 2)
        c += fv[i].n == n && memcmp(fv[i].p, name, n) == 0;
    return c;
}

size_t resp_fields_trace_split(const td_slice *fv, size_t nfv, td_slice *rest, size_t *nrest,
                               td_header trace[2])
{
    size_t k = 0, t = 0;
    for (size_t i = 0; i + 1 < nfv; i += 2) {
        if (td_trace_header_name(fv[i].p, fv[i].n) &&
            name_count(fv, nfv, fv[i].p, fv[i].n) == 1) {
            trace[t++] = (td_header){(const char *)fv[i].p, fv[i].n, fv[i + 1].p, fv[i + 1].n};
            continue;
        }
        rest[k++] = fv[i];
        rest[k++] = fv[i + 1];
    }
    *nrest = k;
    return t;
}

static bool is_name(td_slice f, const char *name)
{
    size_t n = strlen(name);
    return f.n == n && memcmp(f.p, name, n) == 0;
}

bool resp_fields_entity_named(const td_slice *fv, size_t nfv)
{
    for (size_t i = 0; i + 1 < nfv; i += 2)
        if (is_name(fv[i], RESP_ENTITY_KEY) || is_name(fv[i], RESP_ENTITY_EXPECT))
            return true;
    return false;
}

int resp_fields_entity_split(const td_slice *fv, size_t nfv, td_slice *rest, size_t *nrest,
                             resp_entity *out, const char **why)
{
    *out = (resp_entity){.expected = TD_VERSION_ANY};
    size_t k = 0;
    for (size_t i = 0; i + 1 < nfv; i += 2) {
        bool key = is_name(fv[i], RESP_ENTITY_KEY), exp = is_name(fv[i], RESP_ENTITY_EXPECT);
        if (!key && !exp) {
            rest[k++] = fv[i];
            rest[k++] = fv[i + 1];
            continue;
        }
        if ((key && out->has_key) || (exp && out->has_expect)) {
            *why = key ? "ERR the field " RESP_ENTITY_KEY " is given twice"
                       : "ERR the field " RESP_ENTITY_EXPECT " is given twice";
            return -1;
        }
        if (key) {
            out->key = fv[i + 1];
            out->has_key = true;
            continue;
        }
        out->expect = fv[i + 1];
        out->has_expect = true;
        bool given = false;
        if (broker_expected_version_parse(fv[i + 1].p, fv[i + 1].n, &out->expected) == 0)
            continue;
        /* A stream ID, in full: "<ms>-<seq>" (an incomplete "<ms>" is an offset above). */
        if (memchr(fv[i + 1].p, '-', fv[i + 1].n) &&
            resp_sid_parse(fv[i + 1].p, fv[i + 1].n, 0, RESP_SID_STRICT, &out->id, &given) &&
            given) {
            out->by_id = true;
            continue;
        }
        *why = "ERR " RESP_ENTITY_EXPECT " must be any, no_stream, exists, an offset or a stream "
               "ID (<ms>-<seq>)";
        return -1;
    }
    if (out->has_expect && !out->has_key) {
        *why = "ERR " RESP_ENTITY_EXPECT " needs the field " RESP_ENTITY_KEY " (the entity)";
        return -1;
    }
    *nrest = k;
    return 0;
}

/* XADD's binary-safe form: the fields header, and besides it only Trace Context headers (each
 * once, as XADD writes them); a key when XADD gave one (tidings-key). */
static bool is_fields_form(const td_event *ev)
{
    size_t ct = 0, tp = 0, ts = 0;
    if (!ev->value)
        return false;
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        if (is_fields_header(h))
            ct++;
        else if (h->key_len == 11 && td_trace_header_name(h->key, h->key_len) && h->value)
            tp++;
        else if (h->key_len == 10 && td_trace_header_name(h->key, h->key_len) && h->value)
            ts++;
        else
            return false;
    }
    return ct == 1 && tp <= 1 && ts <= 1;
}

int resp_event_fields(const td_event *ev, td_arena *a, td_slice **out, size_t *n)
{
    td_slice *v = NULL;
    size_t vn = 0, cap = 0;
    /* XADD's binary-safe form: the value an array of bulk strings, then the trace headers. */
    if (is_fields_form(ev)) {
        resp_limits lim;
        resp_limits_default(&lim);
        resp_cmd cmd;
        const char *why;
        const uint8_t *p = ev->value;
        if (ev->value_len > 0 && p[0] == '*' &&
            resp_parse_command(p, ev->value_len, &lim, a, &cmd, &why) == 0 &&
            cmd.len == ev->value_len && cmd.argc % 2 == 0) {
            if (ev->header_count == 1 && !ev->key) {
                *out = cmd.argv;
                *n = cmd.argc;
                return 0;
            }
            bool ok = true;
            if (ev->key) /* first, as rule 2 gives it */
                ok = push(a, &v, &vn, &cap, td_slice_make("key", 3)) &&
                     push(a, &v, &vn, &cap, td_slice_make(ev->key, ev->key_len));
            for (size_t i = 0; ok && i < cmd.argc; i++)
                ok = push(a, &v, &vn, &cap, cmd.argv[i]);
            for (size_t i = 0; ok && i < ev->header_count; i++) {
                const td_header *h = &ev->headers[i];
                if (!is_fields_header(h))
                    ok = push(a, &v, &vn, &cap, td_slice_make(h->key, h->key_len)) &&
                         push(a, &v, &vn, &cap, td_slice_make(h->value, h->value_len));
            }
            if (!ok)
                return -1;
            *out = v;
            *n = vn;
            return 0;
        }
    }
    bool ok = true;
    if (ev->key) {
        ok = push(a, &v, &vn, &cap, td_slice_make("key", 3)) &&
             push(a, &v, &vn, &cap, td_slice_make(ev->key, ev->key_len));
    }
    int js = ok && ev->value ? json_members(ev->value, ev->value_len, a, &v, &vn, &cap) : 1;
    ok = ok && js >= 0;
    if (ok && js == 0) {
        ok = push(a, &v, &vn, &cap, td_slice_make("value", 5)) &&
             push(a, &v, &vn, &cap, td_slice_make(ev->value, ev->value_len));
    }
    for (size_t i = 0; ok && i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        ok = push(a, &v, &vn, &cap, td_slice_make(h->key, h->key_len)) &&
             push(a, &v, &vn, &cap, td_slice_make(h->value ? h->value : "", h->value_len));
    }
    if (!ok)
        return -1;
    *out = v;
    *n = vn;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * XADD's DELAY and DELIVERAT
 */
const char *resp_delay_parse(td_slice opt, td_slice arg, resp_delay *d)
{
    bool at = opt.n == 9 && !strncasecmp((const char *)opt.p, "deliverat", 9);
    if (d->h.key)
        return "ERR syntax error, DELAY and DELIVERAT are given once";
    /* An integer as Redis's string2ll reads one: an optional '-', digits, no leading zero. */
    size_t i = arg.n && arg.p[0] == '-' ? 1 : 0;
    bool ok = arg.n > i && arg.n - i <= 18 && (arg.p[i] != '0' || (arg.n - i == 1 && !i));
    long long v = 0;
    for (size_t k = i; ok && k < arg.n; k++) {
        ok = arg.p[k] >= '0' && arg.p[k] <= '9';
        v = v * 10 + (arg.p[k] - '0');
    }
    if (!ok)
        return "ERR value is not an integer or out of range";
    if (td_delay_header(at, i ? -v : v, d->text, &d->h) != 0) {
        td_error_clear();
        return at ? "ERR The DELIVERAT argument must be > 0 (ms since the epoch)"
                  : "ERR The DELAY argument must be >= 0 and at most ten years in ms";
    }
    return NULL;
}
