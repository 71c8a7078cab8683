/*
 * codec.c: the Redis protocol codec (resp.h): requests in, replies out.
 *
 * The request parser follows what Redis's networking.c accepts (processMultibulkBuffer and
 * processInlineBuffer with sdssplitargs), with Redis's error texts, so that clients see the same
 * protocol errors; it re-reads a partial command from its start when more bytes come, and
 * checks every count and length before the bytes it announces arrive.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/resp/resp.h"

void resp_limits_default(resp_limits *l)
{
    l->max_args = 1024 * 1024;
    l->max_bulk = 64u << 20;
    l->max_inline = 64u << 10;
}

/* The header line at p ("*N" or "$N"), ended by CR and one more byte (LF, which Redis does not
 * check): the length of its text, 0 when more input is needed, -1 when it is longer than max. */
static ssize_t header_len(const uint8_t *p, size_t n, size_t max)
{
    const uint8_t *cr = memchr(p, '\r', n);
    if (!cr || cr + 1 == p + n)
        return n > max ? -1 : 0;
    return cr - p > (ssize_t)max ? -1 : (ssize_t)(cr - p);
}

bool resp_parse_ll(const uint8_t *p, size_t n, long long *out)
{
    if (n == 0 || n > 20)
        return false;
    bool neg = p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == n || (p[i] == '0' && (neg || n - i > 1))) /* "-0", "007": not Redis's */
        return false;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg ? v > (unsigned long long)LLONG_MAX + 1 : v > (unsigned long long)LLONG_MAX)
        return false;
    *out = neg ? (long long)(0 - v) : (long long)v;
    return true;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == 0;
}

/* Splits an inline line as sdssplitargs does ("double" quotes with \xHH, \n, \r, \t, \b, \a
 * escapes; 'single' quotes with \' only; a closing quote must be followed by a space). The
 * arguments are copied into the arena. false for unbalanced quotes. */
static bool split_inline(const uint8_t *p, size_t n, const resp_limits *lim, td_arena *a,
                         resp_cmd *cmd, bool *oom)
{
    size_t cap = 0, i = 0;
    uint8_t *tmp = td_arena_alloc(a, n + 1); /* no argument is longer than the line */
    if (!tmp) {
        *oom = true;
        return true;
    }
    for (;;) {
        while (i < n && is_space(p[i]))
            i++;
        if (i == n)
            return true;
        size_t len = 0;
        bool inq = false, insq = false, done = false;
        while (!done) {
            if (inq) {
                if (i == n)
                    return false;
                if (p[i] == '\\' && i + 3 < n && p[i + 1] == 'x' && hexval(p[i + 2]) >= 0 &&
                    hexval(p[i + 3]) >= 0) {
                    tmp[len++] = (uint8_t)(hexval(p[i + 2]) * 16 + hexval(p[i + 3]));
                    i += 3;
                } else if (p[i] == '\\' && i + 1 < n) {
                    i++;
                    uint8_t c = p[i];
                    tmp[len++] = c == 'n'   ? '\n'
                                 : c == 'r' ? '\r'
                                 : c == 't' ? '\t'
                                 : c == 'b' ? '\b'
                                 : c == 'a' ? '\a'
                                            : c;
                } else if (p[i] == '"') {
                    if (i + 1 < n && !is_space(p[i + 1]))
                        return false; /* the closing quote must be followed by a space */
                    done = true;
                } else {
                    tmp[len++] = p[i];
                }
            } else if (insq) {
                if (i == n)
                    return false;
                if (p[i] == '\\' && i + 1 < n && p[i + 1] == '\'') {
                    i++;
                    tmp[len++] = '\'';
                } else if (p[i] == '\'') {
                    if (i + 1 < n && !is_space(p[i + 1]))
                        return false;
                    done = true;
                } else {
                    tmp[len++] = p[i];
                }
            } else if (i == n || is_space(p[i])) {
                done = true;
                i--; /* not consumed: stepped over below */
            } else if (p[i] == '"') {
                inq = true;
            } else if (p[i] == '\'') {
                insq = true;
            } else {
                tmp[len++] = p[i];
            }
            i++;
        }
        if (cmd->argc == lim->max_args)
            return false;
        if (cmd->argc == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            td_slice *v = td_arena_alloc(a, ncap * sizeof(*v));
            if (!v) {
                *oom = true;
                return true;
            }
            if (cap)
                memcpy(v, cmd->argv, cap * sizeof(*v));
            cmd->argv = v;
            cap = ncap;
        }
        uint8_t *arg = td_arena_memdup(a, tmp, len);
        if (len && !arg) {
            *oom = true;
            return true;
        }
        cmd->argv[cmd->argc++] = td_slice_make(len ? arg : (const uint8_t *)"", len);
    }
}

static int parse_inline(const uint8_t *p, size_t n, const resp_limits *lim, td_arena *a,
                        resp_cmd *cmd, const char **why)
{
    const uint8_t *nl = memchr(p, '\n', n);
    if (!nl) {
        if (n > lim->max_inline) {
            *why = "Protocol error: too big inline request";
            return TD_EPROTO;
        }
        return TD_EAGAIN;
    }
    size_t len = (size_t)(nl - p);
    if (len > lim->max_inline) {
        *why = "Protocol error: too big inline request";
        return TD_EPROTO;
    }
    size_t text = len && p[len - 1] == '\r' ? len - 1 : len;
    bool oom = false;
    if (!split_inline(p, text, lim, a, cmd, &oom)) {
        *why = cmd->argc == lim->max_args ? "Protocol error: invalid multibulk length"
                                          : "Protocol error: unbalanced quotes in request";
        return TD_EPROTO;
    }
    if (oom)
        return -ENOMEM;
    cmd->len = len + 1;
    return 0;
}

int resp_parse_command(const uint8_t *p, size_t n, const resp_limits *lim, td_arena *a,
                       resp_cmd *cmd, const char **why)
{
    memset(cmd, 0, sizeof(*cmd));
    *why = NULL;
    if (n == 0)
        return TD_EAGAIN;
    if (p[0] != '*')
        return parse_inline(p, n, lim, a, cmd, why);
    ssize_t ll = header_len(p, n, lim->max_inline);
    if (ll <= 0) {
        if (ll == 0)
            return TD_EAGAIN;
        *why = "Protocol error: too big mbulk count string";
        return TD_EPROTO;
    }
    long long count;
    if (!resp_parse_ll(p + 1, (size_t)ll - 1, &count) || count > (long long)lim->max_args) {
        *why = "Protocol error: invalid multibulk length";
        return TD_EPROTO;
    }
    size_t pos = (size_t)ll + 2;
    if (count <= 0) {
        cmd->len = pos;
        return 0;
    }
    size_t cap = 0;
    while (cmd->argc < (size_t)count) {
        if (pos == n)
            return TD_EAGAIN;
        if (p[pos] != '$') {
            /* Redis names the byte it found; the text lives in the request's arena. */
            char *msg = td_arena_alloc(a, 48);
            if (!msg)
                return -ENOMEM;
            snprintf(msg, 48, "Protocol error: expected '$', got '%c'", (char)p[pos]);
            *why = msg;
            return TD_EPROTO;
        }
        ssize_t l = header_len(p + pos, n - pos, lim->max_inline);
        if (l <= 0) {
            if (l == 0)
                return TD_EAGAIN;
            *why = "Protocol error: too big bulk count string";
            return TD_EPROTO;
        }
        long long blen;
        if (!resp_parse_ll(p + pos + 1, (size_t)l - 1, &blen) || blen < 0 ||
            (unsigned long long)blen > lim->max_bulk) {
            *why = "Protocol error: invalid bulk length";
            return TD_EPROTO;
        }
        pos += (size_t)l + 2;
        if (n - pos < (size_t)blen + 2)
            return TD_EAGAIN;
        if (cmd->argc == cap) {
            size_t ncap = cap ? cap * 2 : ((size_t)count < 16 ? (size_t)count : 16);
            td_slice *v = td_arena_alloc(a, ncap * sizeof(*v));
            if (!v)
                return -ENOMEM;
            if (cap)
                memcpy(v, cmd->argv, cap * sizeof(*v));
            cmd->argv = v;
            cap = ncap;
        }
        /* Redis takes the two bytes after the data as its CR LF without looking at them. */
        cmd->argv[cmd->argc++] = td_slice_make(p + pos, (size_t)blen);
        pos += (size_t)blen + 2;
    }
    cmd->len = pos;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Glob matching
 */
static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Matches one pattern item at pat[*pi] against the byte c; advances *pi past the item. */
static bool item_match(const char *pat, size_t plen, size_t *pi, unsigned char c, bool nocase)
{
    size_t i = *pi;
    if (pat[i] == '?') {
        *pi = i + 1;
        return true;
    }
    if (pat[i] == '\\' && i + 1 < plen) {
        *pi = i + 2;
        return nocase ? lower(pat[i + 1]) == lower(c) : (unsigned char)pat[i + 1] == c;
    }
    if (pat[i] == '[') {
        i++;
        bool neg = i < plen && pat[i] == '^';
        if (neg)
            i++;
        bool match = false;
        for (;;) {
            if (i >= plen) /* unterminated: Redis treats the end as the closing bracket */
                break;
            if (pat[i] == '\\' && i + 1 < plen) {
                if ((unsigned char)pat[i + 1] == c)
                    match = true;
                i += 2;
            } else if (pat[i] == ']') {
                i++;
                break;
            } else if (i + 2 < plen && pat[i + 1] == '-') {
                int s = (unsigned char)pat[i], e = (unsigned char)pat[i + 2], x = c;
                if (s > e) {
                    int t = s;
                    s = e;
                    e = t;
                }
                if (nocase) {
                    s = lower(s);
                    e = lower(e);
                    x = lower(x);
                }
                if (x >= s && x <= e)
                    match = true;
                i += 3;
            } else {
                if (nocase ? lower(pat[i]) == lower(c) : (unsigned char)pat[i] == c)
                    match = true;
                i++;
            }
        }
        *pi = i;
        return neg ? !match : match;
    }
    *pi = i + 1;
    return nocase ? lower(pat[i]) == lower(c) : (unsigned char)pat[i] == c;
}

bool resp_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase)
{
    /* The classic backtracking on the last '*': a later mismatch resumes there with one more
     * byte swallowed. Correct for these patterns (no item matches more than one byte). */
    if (slen == 0) /* as Redis: an empty string matches only an empty pattern, not even "*" */
        return plen == 0;
    size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;
    while (si < slen) {
        if (pi < plen && pat[pi] == '*') {
            while (pi < plen && pat[pi] == '*')
                pi++;
            if (pi == plen)
                return true;
            star_p = pi;
            star_s = si;
            continue;
        }
        size_t next = pi;
        if (pi < plen && item_match(pat, plen, &next, (unsigned char)s[si], nocase)) {
            pi = next;
            si++;
            continue;
        }
        if (star_p == (size_t)-1)
            return false;
        pi = star_p;
        si = ++star_s;
    }
    while (pi < plen && pat[pi] == '*')
        pi++;
    return pi == plen;
}

/* ---------------------------------------------------------------------------------------------
 * Replies
 */
static void put(resp_w *w, const void *p, size_t n)
{
    if (!w->oom && td_buf_append(w->b, p, n) != 0)
        w->oom = true;
}

/* A type byte, a number and CRLF: every length and integer line (hot: no printf). */
static void line(resp_w *w, char type, int64_t v)
{
    char buf[32];
    size_t n = 0;
    buf[n++] = type;
    if (v < 0) {
        buf[n++] = '-';
        n += td_u64_text(buf + n, (uint64_t)0 - (uint64_t)v);
    } else {
        n += td_u64_text(buf + n, (uint64_t)v);
    }
    buf[n++] = '\r';
    buf[n++] = '\n';
    put(w, buf, n);
}

void resp_w_simple(resp_w *w, const char *s)
{
    put(w, "+", 1);
    put(w, s, strlen(s));
    put(w, "\r\n", 2);
}

void resp_w_error(resp_w *w, const char *s)
{
    /* An error is one line: a CR or LF inside would end it early. */
    put(w, "-", 1);
    for (const char *c = s; *c; c++)
        put(w, *c == '\r' || *c == '\n' ? " " : c, 1);
    put(w, "\r\n", 2);
}

void resp_w_errorf(resp_w *w, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    resp_w_error(w, buf);
}

void resp_w_int(resp_w *w, int64_t v)
{
    line(w, ':', v);
}

void resp_w_bulk(resp_w *w, const void *p, size_t n)
{
    line(w, '$', (int64_t)n);
    put(w, p, n);
    put(w, "\r\n", 2);
}

void resp_w_str(resp_w *w, const char *s)
{
    resp_w_bulk(w, s, strlen(s));
}

void resp_w_bulk_int(resp_w *w, int64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
    resp_w_bulk(w, buf, (size_t)n);
}

void resp_w_null(resp_w *w)
{
    if (w->proto >= 3)
        put(w, "_\r\n", 3);
    else
        put(w, "$-1\r\n", 5);
}

void resp_w_null_array(resp_w *w)
{
    if (w->proto >= 3)
        put(w, "_\r\n", 3);
    else
        put(w, "*-1\r\n", 5);
}

void resp_w_array(resp_w *w, size_t n)
{
    line(w, '*', (int64_t)n);
}

void resp_w_map(resp_w *w, size_t pairs)
{
    if (w->proto >= 3)
        line(w, '%', (int64_t)pairs);
    else
        line(w, '*', (int64_t)(2 * pairs));
}

void resp_w_set(resp_w *w, size_t n)
{
    line(w, w->proto >= 3 ? '~' : '*', (int64_t)n);
}

void resp_w_push(resp_w *w, size_t n)
{
    line(w, w->proto >= 3 ? '>' : '*', (int64_t)n);
}

void resp_w_double(resp_w *w, double v)
{
    char buf[64];
    int n;
    if (isinf(v))
        n = snprintf(buf, sizeof(buf), "%s", v > 0 ? "inf" : "-inf");
    else if (isnan(v))
        n = snprintf(buf, sizeof(buf), "nan");
    else
        n = snprintf(buf, sizeof(buf), "%.17g", v);
    if (w->proto >= 3) {
        put(w, ",", 1);
        put(w, buf, (size_t)n);
        put(w, "\r\n", 2);
    } else {
        resp_w_bulk(w, buf, (size_t)n);
    }
}

void resp_w_bool(resp_w *w, bool v)
{
    if (w->proto >= 3)
        put(w, v ? "#t\r\n" : "#f\r\n", 4);
    else
        put(w, v ? ":1\r\n" : ":0\r\n", 4);
}

void resp_w_verbatim(resp_w *w, const void *p, size_t n)
{
    if (w->proto < 3) {
        resp_w_bulk(w, p, n);
        return;
    }
    line(w, '=', (int64_t)n + 4);
    put(w, "txt:", 4);
    put(w, p, n);
    put(w, "\r\n", 2);
}
