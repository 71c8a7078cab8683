/*
 * queue_wire.c: the queue receive's answer and the outcomes' bodies and answers, written and
 * read by hand (queue_wire.h).
 *
 * Why by hand: a receive of 1 000 events built one jansson object per event, per field and per
 * header, then dumped the tree and scanned the whole text again for reals; an ack of 1 000 ids
 * built a tree of 1 000 strings and answered with 1 000 objects. Measured with perf on the
 * release build under bench/queue.sh, malloc, free and jansson took over half of the broker's
 * CPU. Here a receive's answer is appended to one buffer (its only allocation, reused growth),
 * and an outcome's body is read in place: its ids are slices of the body.
 *
 * The answers are the same JSON as before (tests/unit/test_queue_wire.c and the qwire fuzz
 * target compare them with http_event_json's tree): strings are escaped as jansson does with
 * JSON_ENSURE_ASCII (", \, \b \f \n \r \t, other controls as \u00XX, non-ASCII as \uXXXX with
 * surrogate pairs), bytes that are not UTF-8 (as jansson checks it: no overlong forms, no
 * surrogates, nothing above U+10FFFF) go as base64. Only a value that may be a JSON text, in
 * the default values mode, is still parsed and dumped by jansson, as http_event_json does.
 */
#include "proto/http/queue_wire.h"

#include "broker/queue.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Writing JSON into a td_buf
 */
static const char hex[] = "0123456789abcdef";

/* Appends n bytes: a copy when they fit (the answer's buffer is reserved for a whole batch up
 * front, so nearly always), td_buf_append's growth otherwise. A receive makes about 30 of these
 * per event: a call into td_buf_reserve each was a tenth of the broker's profile. */
static inline int put(td_buf *b, const void *p, size_t n)
{
    if (b->p && b->cap - b->len >= n) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
        return 0;
    }
    return td_buf_append(b, p, n);
}

static int put_str(td_buf *b, const char *s)
{
    return td_buf_append(b, s, strlen(s));
}

static int put_i64(td_buf *b, int64_t v)
{
    char t[24];
    size_t n = 0;
    if (v < 0)
        t[n++] = '-';
    n += td_u64_text(t + n, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    return put(b, t, n);
}

/* The code point of the UTF-8 sequence at p (n bytes left) and its length, or 0 when it is not
 * one as jansson accepts it. */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2 || c > 0xF4)
        return 0;
    if (c < 0xE0) {
        len = 2;
        v = c & 0x1F;
    } else if (c < 0xF0) {
        len = 3;
        v = c & 0x0F;
    } else {
        len = 4;
        v = c & 0x07;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static bool utf8_valid(const uint8_t *p, size_t n)
{
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) { /* ASCII, the common case, without a call per byte */
            i++;
            continue;
        }
        size_t k = utf8_next(p + i, n - i, &cp);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

static int put_u_escape(td_buf *b, uint32_t v)
{
    char e[6] = "\\u";
    for (int i = 0; i < 4; i++)
        e[2 + i] = hex[(v >> (12 - 4 * i)) & 15];
    return put(b, e, 6);
}

/* A JSON string of valid UTF-8 p[0..n), quotes included. Runs of plain bytes are copied at
 * once: the common value is ASCII text. */
static int put_json_string(td_buf *b, const uint8_t *p, size_t n)
{
    int rc = td_buf_reserve(b, n + 2);
    if (rc)
        return rc;
    b->p[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if ((rc = put(b, p + run, i - run)))
            return rc;
        uint32_t cp;
        size_t k = utf8_next(p + i, n - i, &cp);
        if (!k)
            return -EINVAL; /* checked by the caller: not reached */
        i += k;
        run = i;
        /* The short escapes jansson writes, else \uXXXX (a surrogate pair above U+FFFF). */
        static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
        const char *esc = cp && cp < 0x80 ? strchr(from, (int)cp) : NULL;
        char s[2] = {'\\', esc ? to[esc - from] : 0};
        if (esc)
            rc = put(b, s, 2);
        else if (cp < 0x10000)
            rc = put_u_escape(b, cp);
        else {
            cp -= 0x10000;
            rc = put_u_escape(b, 0xD800 | (cp >> 10));
            if (!rc)
                rc = put_u_escape(b, 0xDC00 | (cp & 0x3FF));
        }
        if (rc)
            return rc;
    }
    if ((rc = put(b, p + run, n - run)))
        return rc;
    return put(b, "\"", 1);
}

static int put_b64_string(td_buf *b, const void *p, size_t n)
{
    int rc = put(b, "\"", 1);
    if (!rc)
        rc = td_base64_encode(b, p, n);
    if (!rc)
        rc = put(b, "\"", 1);
    return rc;
}

/* ,"name":<bytes> as set_bytes (events.c) writes them: null; a JSON text parsed (as_json);
 * a UTF-8 string as `name` (or `name_text` with as_json); else `name_b64`. With base64, always
 * `name_b64`. */
static int put_bytes(td_buf *b, bool comma, const char *name, const void *p, size_t n, bool as_json,
                     bool base64)
{
    int rc = comma ? put(b, ",\"", 2) : put(b, "\"", 1);
    if (!rc)
        rc = put_str(b, name);
    if (rc)
        return rc;
    if (!p)
        return put(b, "\":null", 6);
    if (base64)
        return put(b, "_b64\":", 6) || put_b64_string(b, p, n) ? -ENOMEM : 0;
    const uint8_t *u = p;
    if (as_json) {
        /* Only a text whose first byte (after white space) can start a JSON value is worth
         * parsing; most text values are not JSON and skip jansson altogether. */
        size_t i = 0;
        while (i < n && (u[i] == ' ' || u[i] == '\t' || u[i] == '\n' || u[i] == '\r'))
            i++;
        if (i < n && strchr("{[\"-0123456789tfn", u[i])) {
            json_t *j = json_loadb(p, n, JSON_DECODE_ANY, NULL);
            if (j) {
                size_t k =
                    json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
                /* 0 only when jansson runs out of memory: the answer fails as a whole. */
                rc = k ? put(b, "\":", 2) : -ENOMEM;
                if (!rc)
                    rc = td_buf_reserve(b, k);
                if (!rc) {
                    json_dumpb(j, (char *)b->p + b->len, k,
                               JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
                    b->len += td_json_shorten_reals((char *)b->p + b->len, k);
                }
                json_decref(j);
                return rc;
            }
        }
    }
    if (utf8_valid(u, n)) {
        rc = put(b, as_json ? "_text\":" : "\":", as_json ? 7 : 2);
        return rc ? rc : put_json_string(b, u, n);
    }
    rc = put(b, "_b64\":", 6);
    return rc ? rc : put_b64_string(b, p, n);
}

static int put_event(td_buf *b, const td_queue_msg *m, int values)
{
    const td_event *ev = &m->event;
    int rc = 0;
    rc |= put(b, "{\"id\":", 6);
    rc |= put_json_string(b, (const uint8_t *)m->id, strnlen(m->id, sizeof(m->id)));
    rc |= put(b, ",\"topic\":", 9);
    rc |= put_json_string(b, (const uint8_t *)m->topic, strnlen(m->topic, sizeof(m->topic)));
    rc |= put(b, ",\"partition\":", 13);
    rc |= put_i64(b, ev->partition);
    rc |= put(b, ",\"offset\":", 10);
    rc |= put_i64(b, ev->offset);
    rc |= put(b, ",\"timestamp\":", 13);
    rc |= put_i64(b, ev->timestamp_ms);
    /* Keys are text when they can be (never parsed as JSON). */
    rc |= put_bytes(b, true, "key", ev->key, ev->key_len, false, false);
    rc |= put_bytes(b, true, "value", ev->value, ev->value_len, values == QWIRE_VALUES_JSON,
                    values == QWIRE_VALUES_BASE64);
    rc |= put(b, ",\"headers\":[", 12);
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        rc |= put(b, i ? ",{" : "{", i ? 2 : 1);
        rc |= put_bytes(b, false, "key", h->key, h->key_len, false, false);
        rc |= put_bytes(b, true, "value", h->value, h->value_len, false, false);
        rc |= put(b, "}", 1);
    }
    rc |= put(b, "],\"deliveries\":", 15);
    rc |= put_i64(b, m->deliveries);
    rc |= put(b, "}", 1);
    return rc ? -ENOMEM : 0;
}

int qwire_write_events(td_buf *out, const td_queue_msg *m, size_t n, int values)
{
    /* About 200 bytes of fields per event besides its key and value. */
    size_t guess = 16;
    for (size_t i = 0; i < n; i++)
        guess += 200 + (m[i].event.key_len + m[i].event.value_len) * 4 / 3;
    if (td_buf_reserve(out, guess))
        return -ENOMEM;
    int rc = put(out, "{\"events\":[", 11);
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc = put(out, ",", 1);
        if (!rc)
            rc = put_event(out, &m[i], values);
    }
    if (!rc)
        rc = put(out, "]}\n", 3);
    return rc ? -ENOMEM : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Ids and ranges
 */

/* Digits at s[*i..n) up to max (queue_id_parse's rule: at least one digit, no sign). */
static bool num(const char *s, size_t n, size_t *i, int64_t max, int64_t *out)
{
    size_t k = *i;
    int64_t v = 0;
    if (k >= n || s[k] < '0' || s[k] > '9')
        return false;
    for (; k < n && s[k] >= '0' && s[k] <= '9'; k++) {
        if (v > (max - (s[k] - '0')) / 10)
            return false;
        v = v * 10 + (s[k] - '0');
    }
    *out = v;
    *i = k;
    return true;
}

bool qwire_item_parse(const char *s, size_t n, qwire_item *out)
{
    size_t i = 0;
    int64_t t, p, a, z, d;
    if (!num(s, n, &i, INT64_MAX, &t) || i >= n || s[i++] != '.' || !num(s, n, &i, INT32_MAX, &p) ||
        i >= n || s[i++] != '.' || !num(s, n, &i, INT64_MAX, &a))
        return false;
    z = a;
    if (i < n && s[i] == '-') {
        i++;
        if (!num(s, n, &i, INT64_MAX, &z) || z < a || z - a >= QWIRE_MAX_IDS)
            return false;
    }
    if (i >= n || s[i++] != '.' || !num(s, n, &i, INT32_MAX, &d) || i != n)
        return false;
    *out = (qwire_item){
        .topic_id = t, .first = a, .last = z, .partition = (int32_t)p, .deliveries = (int32_t)d};
    return true;
}

size_t qwire_item_id(const qwire_item *it, int64_t offset, char *buf)
{
    return queue_id_text(it->topic_id, it->partition, offset, it->deliveries, buf);
}

/* ---------------------------------------------------------------------------------------------
 * The outcome body: a JSON object of the plain shape, read in place
 */
typedef struct rd {
    const char *s;
    size_t n, i;
} rd;

static void ws(rd *r)
{
    while (r->i < r->n &&
           (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r'))
        r->i++;
}

static bool eat(rd *r, char c)
{
    ws(r);
    if (r->i < r->n && r->s[r->i] == c) {
        r->i++;
        return true;
    }
    return false;
}

/* A string without escapes or control bytes (anything else declines), into *out. Non-ASCII
 * bytes decline too: they can be no id, and an "error" text with them takes the slow way,
 * which checks its UTF-8. */
static bool str(rd *r, td_slice *out)
{
    if (!eat(r, '"'))
        return false;
    size_t a = r->i;
    while (r->i < r->n) {
        unsigned char c = (unsigned char)r->s[r->i];
        if (c == '"') {
            *out = td_slice_make(r->s + a, r->i - a);
            r->i++;
            return true;
        }
        if (c == '\\' || c < 0x20 || c >= 0x80)
            return false;
        r->i++;
    }
    return false;
}

/* An integer from 0 to max, as JSON writes it (no leading zeros, no fraction or exponent). */
static bool uint_(rd *r, int64_t max, int64_t *out)
{
    ws(r);
    size_t a = r->i;
    if (!num(r->s, r->n, &r->i, max, out))
        return false;
    if (r->s[a] == '0' && r->i - a > 1)
        return false;
    return r->i >= r->n || (r->s[r->i] != '.' && r->s[r->i] != 'e' && r->s[r->i] != 'E');
}

static bool key_is(td_slice k, const char *name)
{
    size_t n = strlen(name);
    return k.n == n && !memcmp(k.p, name, n);
}

/* The ids array: each string a well-formed id or range; counts items and ids. */
static bool ids_array(rd *r, qwire_outcome *o)
{
    if (!eat(r, '['))
        return false;
    size_t a = r->i;
    if (eat(r, ']'))
        return false; /* empty: the slow way says so */
    r->i = a;
    for (;;) {
        td_slice t;
        qwire_item it;
        if (!str(r, &t) || !qwire_item_parse((const char *)t.p, t.n, &it))
            return false;
        o->n_items++;
        o->n_ids += (size_t)(it.last - it.first) + 1;
        if (o->n_ids > QWIRE_MAX_IDS)
            return false;
        if (eat(r, ']'))
            break;
        if (!eat(r, ','))
            return false;
    }
    o->ids = td_slice_make(r->s + a, r->i - 1 - a);
    return true;
}

int qwire_outcome_parse(const char *body, size_t n, int kind, qwire_outcome *out)
{
    rd r = {body, n, 0};
    qwire_outcome o = {0};
    bool seen_ids = false, seen_results = false;
    const char *ms_key = kind == QWIRE_NACK ? "delay_ms" : kind == QWIRE_EXTEND ? "ms" : NULL;
    if (!eat(&r, '{'))
        return -1;
    if (!eat(&r, '}')) {
        for (;;) {
            td_slice k;
            if (!str(&r, &k) || !eat(&r, ':'))
                return -1;
            if (key_is(k, "ids") && !seen_ids) {
                if (!ids_array(&r, &o))
                    return -1;
                seen_ids = true;
            } else if (ms_key && key_is(k, ms_key) && !o.has_ms) {
                if (!uint_(&r, 86400000, &o.ms))
                    return -1;
                o.has_ms = true;
            } else if (kind == QWIRE_NACK && key_is(k, "error") && !o.has_error) {
                if (!str(&r, &o.error))
                    return -1;
                o.has_error = true;
            } else if (key_is(k, "results") && !seen_results) {
                td_slice v;
                if (!str(&r, &v) || !(key_is(v, "all") || key_is(v, "failed")))
                    return -1;
                o.failed_only = key_is(v, "failed");
                seen_results = true;
            } else {
                return -1; /* unknown or repeated: the slow way names it */
            }
            if (eat(&r, '}'))
                break;
            if (!eat(&r, ','))
                return -1;
        }
    }
    ws(&r);
    if (r.i != n || !seen_ids)
        return -1;
    *out = o;
    return 0;
}

bool qwire_ids_next(const qwire_outcome *o, size_t *pos, td_slice *text, qwire_item *item)
{
    rd r = {(const char *)o->ids.p, o->ids.n, *pos};
    if (r.i > 0 && !eat(&r, ','))
        return false;
    if (!str(&r, text) || !qwire_item_parse((const char *)text->p, text->n, item))
        return false;
    *pos = r.i;
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * The outcome's answer
 */
int qwire_write_results(td_buf *out, const char *const *ids, const int *results, size_t n,
                        bool failed_only)
{
    size_t ok = 0, stale = 0, unknown = 0, listed = 0;
    if (td_buf_reserve(out, 64 + (failed_only ? 0 : n * 80)))
        return -ENOMEM;
    int rc = put(out, "{\"results\":[", 12);
    for (size_t i = 0; i < n && !rc; i++) {
        int r = results[i];
        const char *what = r == 0 ? "ok" : r == TD_ESTALE ? "stale" : "unknown";
        ok += r == 0;
        stale += r == TD_ESTALE;
        unknown += r != 0 && r != TD_ESTALE;
        if (failed_only && r == 0)
            continue;
        rc |= listed ? put(out, ",{\"id\":\"", 8) : put(out, "{\"id\":\"", 7);
        listed++;
        rc |= put_str(out, ids[i]);
        rc |= put(out, "\",\"result\":\"", 12);
        rc |= put_str(out, what);
        rc |= put(out, "\"}", 2);
    }
    rc |= put(out, "],\"ok\":", 7);
    rc |= put_i64(out, (int64_t)ok);
    rc |= put(out, ",\"stale\":", 9);
    rc |= put_i64(out, (int64_t)stale);
    rc |= put(out, ",\"unknown\":", 11);
    rc |= put_i64(out, (int64_t)unknown);
    rc |= put(out, "}\n", 2);
    return rc ? -ENOMEM : 0;
}
