/*
 * json_scan.c: JSON measured before it is parsed (see http.h). Pure functions over buffers;
 * nothing here allocates.
 *
 * Why: jansson builds a tree of one allocation or more per value, about 30 times the size of
 * typical JSON text and up to 78 times for `[{},{},...]` (224 bytes for each 3-byte `{}`).
 * A 6 MB request body of two million empty objects took 455 MB to parse. The scanner walks the
 * text once, checks its structure (brackets that match, strings that end, separators where they
 * belong, nesting no deeper than jansson allows) and adds up what jansson would allocate for
 * it, so that the server can refuse a body that would cost too much before jansson sees it, and
 * can parse an array of events one element at a time (peak memory: the largest element's tree,
 * not the whole array's).
 *
 * The scanner is deliberately lenient about what is inside strings and primitives (escapes,
 * numbers, literals, UTF-8): jansson checks those when it parses what the scanner delimited,
 * and any text the scanner accepts but jansson refuses is still refused, by jansson. Everything
 * the scanner refuses is really malformed JSON, so the two never disagree about a valid text.
 *
 * The cost figures were measured with mallinfo2() on jansson 2.14 (Debian 12, x86-64), per
 * value, malloc overhead included: an object 224 bytes, each member 90 plus its key, an array
 * 128, each array slot 8 to 16 (the table doubles), a string 80 plus its length, a number 32;
 * true, false and null are shared singletons. The estimate rounds each up a little
 * (tests/unit/test_http_json.c holds it within 0.9 to 1.5 times what jansson takes).
 *
 * Also here, for the same reason (jansson refuses what is not UTF-8): http_utf8_clean, which
 * makes error messages that quote client bytes encodable.
 */
#include <string.h>

#include "proto/http/http.h"

#define COST_OBJECT 224u
#define COST_MEMBER 96u
#define COST_ARRAY 128u
#define COST_SLOT 16u
#define COST_STRING 80u
#define COST_NUMBER 32u

enum { ST_VALUE, ST_KEY, ST_AFTER };

static bool blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_blanks(const uint8_t *p, size_t n, size_t i)
{
    while (i < n && blank(p[i]))
        i++;
    return i;
}

/* A byte that ends a number or a literal. */
static bool delimiter(uint8_t c)
{
    return blank(c) || c == '[' || c == ']' || c == '{' || c == '}' || c == ',' || c == ':' ||
           c == '"';
}

/* The end of a primitive (number or literal) starting at i: the next delimiter. */
static size_t primitive_end(const uint8_t *p, size_t n, size_t i)
{
    while (i < n && !delimiter(p[i]))
        i++;
    return i;
}

/* The string at p[i] == '"': *i past its closing quote and *len its raw length, 0; or
 * TD_EAGAIN when the input ends inside it. Escapes are skipped, not checked. */
static int scan_string(const uint8_t *p, size_t n, size_t *i, size_t *len)
{
    size_t j = *i + 1;
    while (j < n) {
        if (p[j] == '"') {
            *len = j - *i - 1;
            *i = j + 1;
            return 0;
        }
        j += p[j] == '\\' ? 2 : 1;
    }
    *i = n;
    return TD_EAGAIN;
}

/*
 * One value at p[*pos..n) after optional blanks: 0 with *pos just past it and its cost added to
 * *cost; TD_EAGAIN when the input ends first, TD_EPROTO for malformed structure, either with
 * *pos where it was found and *why. Iterative: the nesting is a bit stack (1: object), so that
 * deep input costs no C stack.
 */
static int scan_value(const uint8_t *p, size_t n, size_t *pos, uint64_t *cost, const char **why)
{
    uint8_t stack[HTTP_JSON_MAX_DEPTH / 8];
    size_t depth = 0, i = *pos, len;
    int state = ST_VALUE;
    for (;;) {
        i = skip_blanks(p, n, i);
        if (state == ST_AFTER && depth == 0) {
            *pos = i;
            return 0;
        }
        if (i >= n) {
            *pos = n;
            *why = "unexpected end of input";
            return TD_EAGAIN;
        }
        uint8_t c = p[i];
        bool in_object = depth > 0 && (stack[(depth - 1) / 8] >> ((depth - 1) % 8) & 1);
        if (state == ST_KEY) {
            if (c != '"') {
                *pos = i;
                *why = "a string (an object's key) expected";
                return TD_EPROTO;
            }
            if (scan_string(p, n, &i, &len) != 0) {
                *pos = n;
                *why = "unexpected end of input in a string";
                return TD_EAGAIN;
            }
            *cost += COST_MEMBER + len;
            i = skip_blanks(p, n, i);
            if (i >= n) {
                *pos = n;
                *why = "unexpected end of input";
                return TD_EAGAIN;
            }
            if (p[i] != ':') {
                *pos = i;
                *why = "':' expected after an object's key";
                return TD_EPROTO;
            }
            i++;
            state = ST_VALUE;
            continue;
        }
        if (state == ST_AFTER) {
            if (c == ',') {
                i++;
                state = in_object ? ST_KEY : ST_VALUE;
                if (!in_object)
                    *cost += COST_SLOT;
                continue;
            }
            if (c == (in_object ? '}' : ']')) {
                i++;
                depth--;
                continue; /* still ST_AFTER: after the container */
            }
            *pos = i;
            *why = in_object ? "',' or '}' expected" : "',' or ']' expected";
            return TD_EPROTO;
        }
        /* ST_VALUE */
        if (c == '[' || c == '{') {
            if (depth == HTTP_JSON_MAX_DEPTH) {
                *pos = i;
                *why = "nested deeper than 2048 levels";
                return TD_EPROTO;
            }
            bool obj = c == '{';
            if (obj)
                stack[depth / 8] |= (uint8_t)(1u << (depth % 8));
            else
                stack[depth / 8] &= (uint8_t) ~(1u << (depth % 8));
            depth++;
            *cost += obj ? COST_OBJECT : COST_ARRAY + COST_SLOT;
            i = skip_blanks(p, n, i + 1);
            if (i < n && p[i] == (obj ? '}' : ']')) {
                i++;
                depth--;
                state = ST_AFTER;
            } else {
                state = obj ? ST_KEY : ST_VALUE;
            }
            continue;
        }
        if (c == '"') {
            if (scan_string(p, n, &i, &len) != 0) {
                *pos = n;
                *why = "unexpected end of input in a string";
                return TD_EAGAIN;
            }
            *cost += COST_STRING + len;
            state = ST_AFTER;
            continue;
        }
        if (c == ']' || c == '}' || c == ',' || c == ':') {
            *pos = i;
            *why = "a value expected";
            return TD_EPROTO;
        }
        /* A number or a literal (checked by jansson). Literals are shared, numbers are not. */
        *cost += (c == 't' || c == 'f' || c == 'n') ? 0 : COST_NUMBER;
        i = primitive_end(p, n, i);
        state = ST_AFTER;
    }
}

int http_json_measure(const uint8_t *p, size_t n, uint64_t *cost, size_t *err_pos, const char **why)
{
    size_t pos = 0;
    *cost = 0;
    int rc = scan_value(p, n, &pos, cost, why);
    if (rc == 0 && pos < n) {
        rc = TD_EPROTO;
        *why = "the end of the input expected after the value";
    }
    *err_pos = pos;
    return rc;
}

bool http_json_array_open(http_json_iter *it, const uint8_t *p, size_t n)
{
    memset(it, 0, sizeof(*it));
    it->p = p;
    it->n = n;
    size_t i = skip_blanks(p, n, 0);
    if (i >= n || p[i] != '[')
        return false;
    it->pos = i + 1;
    return true;
}

/* The end of the array at p[i] == ']': nothing but blanks may follow. */
static int array_close(http_json_iter *it, size_t i)
{
    i = skip_blanks(it->p, it->n, i + 1);
    it->pos = i;
    if (i < it->n) {
        it->why = "the end of the input expected after the array";
        return TD_EPROTO;
    }
    it->state = 2;
    return 0;
}

int http_json_array_next(http_json_iter *it, td_slice *elem, uint64_t *cost)
{
    const uint8_t *p = it->p;
    size_t n = it->n, i = skip_blanks(p, n, it->pos);
    if (it->state == 2)
        return 0;
    if (i >= n) {
        it->pos = n;
        it->why = "unexpected end of input";
        return TD_EAGAIN;
    }
    if (p[i] == ']')
        return array_close(it, i);
    if (it->state == 1) {
        if (p[i] != ',') {
            it->pos = i;
            it->why = "',' or ']' expected";
            return TD_EPROTO;
        }
        i++; /* a ']' right after it is "a value expected", from scan_value */
    }
    size_t start = skip_blanks(p, n, i), end = start;
    uint64_t c = COST_SLOT;
    int rc = scan_value(p, n, &end, &c, &it->why);
    if (rc) {
        it->pos = end;
        return rc;
    }
    /* end is past the blanks after the value: the element ends before them. */
    size_t last = end;
    while (last > start && blank(p[last - 1]))
        last--;
    *elem = td_slice_make(p + start, last - start);
    *cost += c;
    it->pos = end;
    it->state = 1;
    it->count++;
    return 1;
}

void http_json_line_column(const uint8_t *p, size_t n, size_t pos, int *line, int *column)
{
    int l = 1, c = 0;
    for (size_t i = 0; i < pos && i < n; i++) {
        if (p[i] == '\n') {
            l++;
            c = 0;
        } else if ((p[i] & 0xC0) != 0x80) { /* characters, as jansson counts them */
            c++;
        }
    }
    *line = l;
    *column = c;
}

/* The length of the valid UTF-8 sequence at p[0..n) (1 to 4), or 0 if it is not one (an
 * overlong form, a surrogate, beyond U+10FFFF, a stray continuation byte, or cut short). */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

const char *http_utf8_clean(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s), i = 0, k = 0;
    while (i < n) {
        size_t len = utf8_len(p + i, n - i);
        size_t need = len ? len : 4;
        if (k + need >= cap)
            break;
        if (len) {
            memcpy(out + k, p + i, len);
            i += len;
        } else {
            out[k] = '\\';
            out[k + 1] = 'x';
            out[k + 2] = hex[p[i] >> 4];
            out[k + 3] = hex[p[i] & 15];
            i++;
        }
        k += need;
    }
    out[k] = 0;
    return out;
}
