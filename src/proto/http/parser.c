/*
 * parser.c: HTTP/1.1 request heads, chunked bodies, percent-decoding and query strings
 * (see http.h). Every function is pure over its input.
 *
 * What is refused, and why (RFC 9112 unless noted):
 * - a method that is not a token, a target with controls or spaces, a version other than
 *   HTTP/1.0 or HTTP/1.1 (505 for HTTP/2+ and other majors): 400/505;
 * - whitespace between a field name and its colon (§5.1), obsolete line folding (§5.2), a field
 *   name that is not a token, a control character in a value: 400;
 * - HTTP/1.1 without Host (§3.2): 400;
 * - Content-Length that is not all digits, or several that differ (§6.3), or any together with
 *   Transfer-Encoding (request smuggling, §6.1): 400; a transfer coding other than chunked: 501;
 *   Transfer-Encoding in HTTP/1.0: 400;
 * - an Expect other than 100-continue: 417 (RFC 9110 §10.1.1).
 * Lines may end in CRLF or a bare LF (§2.2 allows recipients to accept LF).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>

#include "proto/http/http.h"

void http_limits_default(http_limits *l)
{
    l->max_head = 16384;
    l->max_target = 8192;
    l->max_headers = HTTP_MAX_HEADERS;
    l->max_body = 8 << 20;
}

static bool is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

bool http_name_eq(td_slice s, const char *name)
{
    size_t n = strlen(name);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(s.p[i]) != lower((uint8_t)name[i]))
            return false;
    return true;
}

static void rebase(td_slice *s, const uint8_t *from, size_t n, const uint8_t *to)
{
    uintptr_t at = (uintptr_t)s->p, lo = (uintptr_t)from;
    if (at >= lo && at <= lo + n) /* not a static string (the "/" of an absolute form) */
        s->p = to + (at - lo);
}

void http_request_rebase(http_request *r, const uint8_t *from, const uint8_t *to)
{
    size_t n = r->head_len;
    rebase(&r->method, from, n, to);
    rebase(&r->target, from, n, to);
    rebase(&r->path, from, n, to);
    rebase(&r->query, from, n, to);
    for (size_t i = 0; i < r->nheaders; i++) {
        rebase(&r->headers[i].name, from, n, to);
        rebase(&r->headers[i].value, from, n, to);
    }
}

const td_slice *http_header_get(const http_request *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (http_name_eq(r->headers[i].name, name))
            return &r->headers[i].value;
    return NULL;
}

/* The end of the line starting at p[i] (the index of its LF), or -1 if none within n. */
static ssize_t line_end(const uint8_t *p, size_t i, size_t n)
{
    const uint8_t *lf = memchr(p + i, '\n', n - i);
    return lf ? lf - p : -1;
}

/* The line p[i..lf) without a trailing CR. */
static td_slice line_at(const uint8_t *p, size_t i, size_t lf)
{
    size_t e = lf;
    if (e > i && p[e - 1] == '\r')
        e--;
    return td_slice_make(p + i, e - i);
}

static td_slice trim(td_slice s)
{
    while (s.n && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}

/* Does the comma-separated list s hold the token tok (case-insensitive)? */
static bool list_has(td_slice s, const char *tok)
{
    size_t i = 0;
    while (i <= s.n) {
        size_t j = i;
        while (j < s.n && s.p[j] != ',')
            j++;
        if (http_name_eq(trim(td_slice_make(s.p + i, j - i)), tok))
            return true;
        i = j + 1;
    }
    return false;
}

#define FAIL(status, msg)                                                                          \
    do {                                                                                           \
        *why = (msg);                                                                              \
        return (status);                                                                           \
    } while (0)

static int parse_request_line(td_slice l, const http_limits *lim, http_request *r, const char **why)
{
    size_t i = 0;
    while (i < l.n && is_tchar(l.p[i]))
        i++;
    if (i == 0 || i >= l.n || l.p[i] != ' ')
        FAIL(400, "malformed request line: bad method");
    r->method = td_slice_make(l.p, i);
    size_t t0 = ++i;
    while (i < l.n && l.p[i] != ' ') {
        if (l.p[i] < 0x21 || l.p[i] == 0x7f)
            FAIL(400, "malformed request line: a control character in the target");
        i++;
    }
    if (i - t0 > lim->max_target)
        FAIL(414, "request target too long");
    if (i == t0 || i >= l.n)
        FAIL(400, "malformed request line: no target or no version");
    td_slice target = td_slice_make(l.p + t0, i - t0);
    td_slice ver = td_slice_make(l.p + i + 1, l.n - i - 1);
    if (ver.n != 8 || memcmp(ver.p, "HTTP/", 5) != 0 || ver.p[6] != '.' || ver.p[5] < '0' ||
        ver.p[5] > '9' || ver.p[7] < '0' || ver.p[7] > '9')
        FAIL(400, "malformed request line: bad HTTP version");
    if (ver.p[5] != '1')
        FAIL(505, "only HTTP/1.0 and HTTP/1.1 are served");
    r->minor = ver.p[7] - '0';
    if (r->minor > 1)
        FAIL(505, "only HTTP/1.0 and HTTP/1.1 are served");
    /* An absolute form (a proxy's) is cut to its path; only origin forms are routed. */
    if (target.n > 7 && (http_name_eq(td_slice_make(target.p, 7), "http://") ||
                         (target.n > 8 && http_name_eq(td_slice_make(target.p, 8), "https://")))) {
        size_t k = target.p[4] == ':' ? 7 : 8;
        while (k < target.n && target.p[k] != '/' && target.p[k] != '?')
            k++;
        target = td_slice_make(target.p + k, target.n - k);
        if (target.n == 0)
            target = td_slice_make("/", 1);
    }
    if (target.p[0] != '/' && !(target.n == 1 && target.p[0] == '*'))
        FAIL(400, "the request target must be a path");
    r->target = target;
    const uint8_t *q = memchr(target.p, '?', target.n);
    r->path = td_slice_make(target.p, q ? (size_t)(q - target.p) : target.n);
    r->query =
        q ? td_slice_make(q + 1, target.n - (size_t)(q - target.p) - 1) : td_slice_make("", 0);
    return 0;
}

static int parse_field(td_slice l, const http_limits *lim, http_request *r, const char **why)
{
    if (l.p[0] == ' ' || l.p[0] == '\t')
        FAIL(400, "obsolete line folding in a header field");
    size_t i = 0;
    while (i < l.n && is_tchar(l.p[i]))
        i++;
    if (i == 0 || i >= l.n || l.p[i] != ':') {
        size_t k = i;
        while (k < l.n && (l.p[k] == ' ' || l.p[k] == '\t'))
            k++;
        FAIL(400, i > 0 && k > i && k < l.n && l.p[k] == ':'
                      ? "whitespace before the colon of a header field"
                      : "malformed header field name");
    }
    td_slice value = trim(td_slice_make(l.p + i + 1, l.n - i - 1));
    for (size_t k = 0; k < value.n; k++)
        if ((value.p[k] < 0x20 && value.p[k] != '\t') || value.p[k] == 0x7f)
            FAIL(400, "a control character in a header field value");
    if (r->nheaders >= lim->max_headers || r->nheaders >= HTTP_MAX_HEADERS)
        FAIL(431, "too many header fields");
    http_header *h = &r->headers[r->nheaders++];
    h->name = td_slice_make(l.p, i);
    h->value = value;
    return 0;
}

/* Reads what the framing and connection fields say, once the head is complete. */
static int interpret(http_request *r, const http_limits *lim, const char **why)
{
    bool have_host = false, have_te = false;
    r->content_length = -1;
    for (size_t i = 0; i < r->nheaders; i++) {
        td_slice n = r->headers[i].name, v = r->headers[i].value;
        if (http_name_eq(n, "host")) {
            if (have_host)
                FAIL(400, "more than one Host field");
            have_host = true;
        } else if (http_name_eq(n, "content-length")) {
            if (v.n == 0 || v.n > 18)
                FAIL(400, "invalid Content-Length");
            int64_t len = 0;
            for (size_t k = 0; k < v.n; k++) {
                if (v.p[k] < '0' || v.p[k] > '9')
                    FAIL(400, "invalid Content-Length");
                len = len * 10 + (v.p[k] - '0');
            }
            if (r->content_length >= 0 && r->content_length != len)
                FAIL(400, "conflicting Content-Length fields");
            r->content_length = len;
        } else if (http_name_eq(n, "transfer-encoding")) {
            have_te = true;
            /* The last coding must be chunked, and chunked is the only one served. */
            if (!http_name_eq(trim(v), "chunked"))
                FAIL(501, "only the chunked transfer coding is supported");
            r->chunked = true;
        } else if (http_name_eq(n, "expect")) {
            if (!http_name_eq(v, "100-continue"))
                FAIL(417, "only Expect: 100-continue is supported");
            r->expect_continue = r->minor >= 1;
        }
    }
    if (r->minor >= 1 && !have_host)
        FAIL(400, "HTTP/1.1 requests need a Host field");
    if (have_te && r->minor == 0)
        FAIL(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (have_te && r->content_length >= 0)
        FAIL(400, "both Content-Length and Transfer-Encoding");
    if (r->content_length > lim->max_body)
        FAIL(413, "the request body is larger than the limit");
    const td_slice *conn = http_header_get(r, "connection");
    if (r->minor >= 1)
        r->keep_alive = !(conn && list_has(*conn, "close"));
    else
        r->keep_alive = conn && list_has(*conn, "keep-alive");
    return 0;
}

int http_parse_request(const uint8_t *p, size_t n, const http_limits *lim, http_request *r,
                       const char **why)
{
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    *why = NULL;
    size_t i = 0;
    /* RFC 9112 §2.2: empty lines before the request line are ignored (at most a few). */
    while (i < n && i < 4 && (p[i] == '\r' || p[i] == '\n'))
        i++;
    ssize_t lf = line_end(p, i, n);
    if (lf < 0) {
        if (n - i > lim->max_target + 64)
            FAIL(n - i > lim->max_head ? 431 : 414, "request line too long");
        return TD_EAGAIN;
    }
    int rc = parse_request_line(line_at(p, i, (size_t)lf), lim, r, why);
    if (rc)
        return rc;
    i = (size_t)lf + 1;
    for (;;) {
        lf = line_end(p, i, n);
        if (lf < 0) {
            if (n > lim->max_head)
                FAIL(431, "request header fields too large");
            return TD_EAGAIN;
        }
        if ((size_t)lf + 1 > lim->max_head)
            FAIL(431, "request header fields too large");
        td_slice l = line_at(p, i, (size_t)lf);
        i = (size_t)lf + 1;
        if (l.n == 0)
            break;
        if ((rc = parse_field(l, lim, r, why)) != 0)
            return rc;
    }
    r->head_len = i;
    return interpret(r, lim, why);
}

/* ---------------------------------------------------------------------------------------------
 * Chunked bodies
 */
enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_DONE };

#define CH_MAX_LINE 4096

void http_chunked_init(http_chunked *c)
{
    memset(c, 0, sizeof(*c));
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int http_chunked_feed(http_chunked *c, const uint8_t *p, size_t n, int64_t max_body, td_buf *out,
                      size_t *used, const char **why)
{
    size_t i = 0;
    *why = NULL;
    while (i < n) {
        uint8_t b = p[i];
        switch (c->state) {
        case CH_SIZE: {
            int h = hexval(b);
            if (h >= 0) {
                if (c->left >> 56)
                    FAIL(400, "chunk size too large");
                c->left = c->left << 4 | (uint64_t)h;
                c->digits = true;
                i++;
                break;
            }
            if (!c->digits)
                FAIL(400, "malformed chunk size");
            if (c->left > (uint64_t)(max_body - c->total))
                FAIL(413, "the request body is larger than the limit");
            if (b == ';' || b == ' ' || b == '\t') {
                c->state = CH_EXT;
                c->line = 0;
            } else if (b == '\r') {
                c->state = CH_SIZE_LF;
            } else if (b == '\n') {
                c->state = c->left ? CH_DATA : CH_TRAILER;
                c->line = 0;
            } else {
                FAIL(400, "malformed chunk size");
            }
            i++;
            break;
        }
        case CH_EXT: /* chunk extensions: skipped to the end of the line */
            if (b == '\n') {
                c->state = c->left ? CH_DATA : CH_TRAILER;
                c->line = 0;
            } else if (++c->line > CH_MAX_LINE) {
                FAIL(400, "chunk extension too long");
            } else if (b == '\r') {
                c->state = CH_SIZE_LF;
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (b != '\n')
                FAIL(400, "malformed chunk size line");
            c->state = c->left ? CH_DATA : CH_TRAILER;
            c->line = 0;
            i++;
            break;
        case CH_DATA: {
            size_t take = n - i < c->left ? n - i : (size_t)c->left;
            int rc = td_buf_append(out, p + i, take);
            if (rc)
                return rc;
            i += take;
            c->left -= take;
            c->total += (int64_t)take;
            if (c->left == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (b == '\n') {
                c->state = CH_SIZE;
                c->digits = false;
            } else if (b == '\r') {
                c->state = CH_DATA_LF;
            } else {
                FAIL(400, "chunk data longer than its size");
            }
            i++;
            break;
        case CH_DATA_LF:
            if (b != '\n')
                FAIL(400, "malformed chunk end");
            c->state = CH_SIZE;
            c->digits = false;
            i++;
            break;
        case CH_TRAILER: /* trailer fields, skipped; an empty line ends the body */
            i++;
            if (b == '\n') {
                if (c->line == 0) {
                    c->state = CH_DONE;
                    *used = i;
                    return 1;
                }
                c->line = 0;
            } else if (b != '\r' || c->line > 0) {
                if (++c->line > CH_MAX_LINE)
                    FAIL(400, "trailer field too long");
            }
            break;
        default:
            *used = i;
            return 1;
        }
    }
    *used = i;
    return c->state == CH_DONE ? 1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Percent-decoding and query strings
 */
ssize_t http_pct_decode(td_slice in, bool plus_space, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < in.n; i++) {
        uint8_t c = in.p[i];
        if (c == '%') {
            if (i + 2 >= in.n)
                return -1;
            int hi = hexval(in.p[i + 1]), lo = hexval(in.p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (uint8_t)(hi << 4 | lo);
            if (c == 0)
                return -1;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -1;
    out[o] = 0;
    return (ssize_t)o;
}

bool http_query_next(td_slice *it, td_slice *key, td_slice *value)
{
    while (it->n) {
        const uint8_t *amp = memchr(it->p, '&', it->n);
        size_t len = amp ? (size_t)(amp - it->p) : it->n;
        td_slice pair = td_slice_make(it->p, len);
        it->p += amp ? len + 1 : len;
        it->n -= amp ? len + 1 : len;
        if (pair.n == 0)
            continue;
        const uint8_t *eq = memchr(pair.p, '=', pair.n);
        *key = td_slice_make(pair.p, eq ? (size_t)(eq - pair.p) : pair.n);
        *value =
            eq ? td_slice_make(eq + 1, pair.n - (size_t)(eq - pair.p) - 1) : td_slice_make("", 0);
        return true;
    }
    return false;
}

int http_query_get(td_slice query, const char *key, char *out, size_t cap)
{
    td_slice k, v;
    char name[256];
    while (http_query_next(&query, &k, &v)) {
        if (http_pct_decode(k, true, name, sizeof(name)) < 0)
            return -1;
        if (strcmp(name, key) != 0)
            continue;
        return http_pct_decode(v, true, out, cap) < 0 ? -1 : 1;
    }
    return 0;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

int http_parse_time(const char *s, int64_t *ms)
{
    /* Unix milliseconds: up to 18 digits. */
    size_t len = strlen(s);
    if (strspn(s, "0123456789") == len) {
        if (len == 0 || len > 18)
            return TD_EINVAL;
        *ms = strtoll(s, NULL, 10);
        return 0;
    }
    /* ISO 8601: 2026-01-02T03:04:05, optional .mmm, then Z or +hh:mm / -hh:mm. */
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return TD_EINVAL;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        if (digits == 0)
            return TD_EINVAL;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
               p[2] <= '9' && p[3] == ':' && p[4] >= '0' && p[4] <= '9' && p[5] >= '0' &&
               p[5] <= '9') {
        off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
        if (*p == '-')
            off = -off;
        p += 6;
    } else {
        return TD_EINVAL;
    }
    if (*p)
        return TD_EINVAL;
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - off) * 1000 + frac;
    return 0;
}
