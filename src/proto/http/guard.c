/*
 * guard.c: what a browser must not be able to make the HTTP listener do (docs/security.md).
 *
 * A web page the user opens can send requests to 127.0.0.1:8080: a form post or a fetch() of
 * a "simple" request goes out without asking the server first, and a page served from a name
 * that the attacker's DNS later points at 127.0.0.1 (DNS rebinding) is even same-origin with
 * the broker. Three checks close these doors, as Jupyter, Vite and webpack's dev server do:
 *
 * - Host: a request must name the broker by an IP address, `localhost` (or a name under
 *   `.localhost`, which browsers resolve to loopback themselves), or a name listed in
 *   http.allowed.hosts. A rebinding page names the attacker's domain, so it is refused (403).
 * - Origin: a request that may change something (any method but GET, HEAD and OPTIONS) that
 *   carries an Origin must come from the broker's own origin or one listed in
 *   http.cors.allowed.origins (403). Browsers send Origin with every cross-origin POST, PUT,
 *   PATCH and DELETE.
 * - Content types: JSON bodies must say application/json (415 otherwise, routes.c). The types
 *   a form can send without asking first are x-www-form-urlencoded, multipart/form-data and
 *   text/plain: none is accepted.
 *
 * CORS: an origin listed in http.cors.allowed.origins gets Access-Control-Allow-Origin on
 * every response and answers to its preflight requests; no other origin gets any CORS header.
 *
 * The matching functions are pure (unit-tested in tests/unit/test_http_guard.c).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "proto/http/http_int.h"

/* The next entry of a comma-separated list (blanks around entries ignored); false at the end. */
static bool list_next(const char **it, td_slice *entry)
{
    const char *p = *it;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) {
            *it = p;
            return false;
        }
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *it = p;
        *entry = td_slice_make((const uint8_t *)s, (size_t)(e - s));
        return true;
    }
}

static bool slice_ieq(td_slice a, td_slice b)
{
    if (a.n != b.n)
        return false;
    for (size_t i = 0; i < a.n; i++) {
        uint8_t x = a.p[i], y = b.p[i];
        if (x >= 'A' && x <= 'Z')
            x = (uint8_t)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (uint8_t)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

/* Whether s ends with the (lower-case) suffix, case-insensitively. */
static bool ends_with(td_slice s, const char *suffix)
{
    size_t n = strlen(suffix);
    return s.n >= n && slice_ieq(td_slice_make(s.p + s.n - n, n),
                                 td_slice_make((const uint8_t *)suffix, n));
}

/* The host part of a Host value "name[:port]" or "[v6][:port]"; false when malformed. *bracketed
 * says it was an IPv6 literal in brackets (the brackets are not part of *host). */
static bool split_host(td_slice v, td_slice *host, bool *bracketed)
{
    *bracketed = false;
    if (v.n && v.p[0] == '[') {
        const uint8_t *close = memchr(v.p, ']', v.n);
        if (!close)
            return false;
        size_t end = (size_t)(close - v.p) + 1;
        if (end < v.n && v.p[end] != ':')
            return false;
        *host = td_slice_make(v.p + 1, end - 2);
        *bracketed = true;
    } else {
        const uint8_t *colon = memchr(v.p, ':', v.n);
        *host = td_slice_make(v.p, colon ? (size_t)(colon - v.p) : v.n);
    }
    const uint8_t *port = host->p + host->n + (*bracketed ? 1 : 0);
    const uint8_t *end = v.p + v.n;
    if (port < end) { /* ":digits" */
        if (port + 1 == end)
            return false;
        for (const uint8_t *q = port + 1; q < end; q++)
            if (*q < '0' || *q > '9')
                return false;
    }
    return host->n > 0;
}

static bool is_ip_literal(td_slice host, bool bracketed)
{
    char text[64];
    if (host.n >= sizeof(text))
        return false;
    memcpy(text, host.p, host.n);
    text[host.n] = 0;
    uint8_t addr[16];
    return bracketed ? inet_pton(AF_INET6, text, addr) == 1 : inet_pton(AF_INET, text, addr) == 1;
}

bool http_host_allowed(td_slice value, const char *allowed)
{
    td_slice host;
    bool bracketed;
    if (!split_host(value, &host, &bracketed))
        return false;
    if (host.p[host.n - 1] == '.') /* "localhost." is "localhost" */
        host.n--;
    if (host.n == 0)
        return false;
    if (is_ip_literal(host, bracketed))
        return true; /* no name, nothing to rebind */
    if (bracketed)
        return false;
    if (slice_ieq(host, td_slice_make((const uint8_t *)"localhost", 9)) ||
        ends_with(host, ".localhost"))
        return true;
    const char *it = allowed ? allowed : "";
    td_slice e;
    while (list_next(&it, &e)) {
        if (e.n == 1 && e.p[0] == '*')
            return true;
        if (e.n > 1 && e.p[0] == '.') { /* ".example.com": the name and every name under it */
            if (slice_ieq(host, td_slice_make(e.p + 1, e.n - 1)))
                return true;
            if (host.n > e.n && slice_ieq(td_slice_make(host.p + host.n - e.n, e.n), e))
                return true;
        } else if (slice_ieq(host, e)) {
            return true;
        }
    }
    return false;
}

bool http_origin_listed(td_slice origin, const char *allowed, bool *any)
{
    const char *it = allowed ? allowed : "";
    td_slice e;
    bool star = false;
    while (list_next(&it, &e)) {
        if (slice_ieq(origin, e)) {
            *any = false;
            return true;
        }
        star |= e.n == 1 && e.p[0] == '*';
    }
    *any = star;
    return star;
}

bool http_origin_same(td_slice origin, td_slice host)
{
    /* "scheme://authority", no path: the authority must be the request's Host. The scheme is
     * not compared: the listener does not know whether a proxy in front of it ends TLS. */
    const uint8_t *sep = NULL;
    for (size_t i = 0; i + 2 < origin.n; i++)
        if (origin.p[i] == ':' && origin.p[i + 1] == '/' && origin.p[i + 2] == '/') {
            sep = origin.p + i + 3;
            break;
        }
    if (!sep || !host.n)
        return false;
    td_slice auth = td_slice_make(sep, (size_t)(origin.p + origin.n - sep));
    if (slice_ieq(auth, host))
        return true;
    /* The default port may be left out on one side only. */
    static const char *const defaults[] = {":80", ":443"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(defaults[i]);
        if (ends_with(host, defaults[i]) &&
            slice_ieq(auth, td_slice_make(host.p, host.n - n)))
            return true;
        if (ends_with(auth, defaults[i]) &&
            slice_ieq(td_slice_make(auth.p, auth.n - n), host))
            return true;
    }
    return false;
}

bool http_content_type_json(td_slice ct)
{
    /* "application/json" or "application/<something>+json", with parameters after ';'. */
    size_t n = 0;
    while (n < ct.n && ct.p[n] != ';' && ct.p[n] != ' ' && ct.p[n] != '\t')
        n++;
    td_slice type = td_slice_make(ct.p, n);
    if (slice_ieq(type, td_slice_make((const uint8_t *)"application/json", 16)))
        return true;
    return type.n > 17 && slice_ieq(td_slice_make(type.p, 12),
                                    td_slice_make((const uint8_t *)"application/", 12)) &&
           ends_with(type, "+json");
}

static bool method_safe(const hconn *hc)
{
    return http_method_is(hc, "GET") || http_method_is(hc, "HEAD") ||
           http_method_is(hc, "OPTIONS");
}

/* A preflight request (OPTIONS with Access-Control-Request-Method) of a listed origin. */
static void answer_preflight(hconn *hc)
{
    char extra[256];
    snprintf(extra, sizeof(extra),
             "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE\r\n"
             "Access-Control-Allow-Headers: Content-Type, Authorization, Last-Event-ID\r\n"
             "Access-Control-Max-Age: 600\r\n");
    http_respond_raw(hc, 204, "application/json", extra, NULL, 0);
}

/* Text of a header value for a message or a log line: at most 150 bytes, not UTF-8 escaped. */
static const char *shown(td_slice v, char *out, size_t cap)
{
    char raw[160];
    snprintf(raw, sizeof(raw), "%.*s", (int)TD_MIN(v.n, 150), (const char *)v.p);
    return http_utf8_clean(raw, out, cap);
}

static void count_denied(hconn *hc, const char *reason)
{
    const char *labels[] = {"http", reason};
    td_counter_add(td_metric_get(hc->s->f_denied, labels), 1);
}

bool http_guard(hconn *hc)
{
    const http_server_config *cfg = &hc->s->cfg;
    char text[200], msg[400];
    hc->cors_origin = td_slice_make(NULL, 0);
    hc->cors_any = false;
    const td_slice *host = http_header_get(&hc->req, "host");
    if (host && !http_host_allowed(*host, cfg->allowed_hosts)) {
        shown(*host, text, sizeof(text));
        snprintf(msg, sizeof(msg),
                 "the host name '%s' is not allowed here (a protection against DNS rebinding): "
                 "name the broker by its IP address or localhost, or add the name to "
                 "http.allowed.hosts",
                 text);
        TD_WARN("http", "%s: refused a request for host '%s' (not in http.allowed.hosts)",
                net_conn_peer(hc->c), text);
        count_denied(hc, "host_not_allowed");
        http_respond_error(hc, 403, "host_not_allowed", msg);
        return false;
    }
    const td_slice *origin = http_header_get(&hc->req, "origin");
    if (!origin)
        return true;
    bool listed = http_origin_listed(*origin, cfg->cors_allowed_origins, &hc->cors_any);
    if (listed)
        hc->cors_origin = *origin;
    if (http_method_is(hc, "OPTIONS") &&
        http_header_get(&hc->req, "access-control-request-method")) {
        if (!listed) {
            count_denied(hc, "origin_not_allowed");
            http_respond_error(hc, 403, "origin_not_allowed",
                               "this origin is not in http.cors.allowed.origins");
            return false;
        }
        answer_preflight(hc);
        return false;
    }
    if (!method_safe(hc) && !listed && !(host && http_origin_same(*origin, *host))) {
        shown(*origin, text, sizeof(text));
        snprintf(msg, sizeof(msg),
                 "a request from the web page at '%s' may not change anything here (a "
                 "protection against cross-site requests): add the origin to "
                 "http.cors.allowed.origins to allow it",
                 text);
        TD_WARN("http", "%s: refused a %.*s from origin '%s' (not in http.cors.allowed.origins)",
                net_conn_peer(hc->c), (int)hc->req.method.n, (const char *)hc->req.method.p,
                text);
        count_denied(hc, "origin_not_allowed");
        http_respond_error(hc, 403, "origin_not_allowed", msg);
        return false;
    }
    return true;
}

size_t http_cors_headers(const hconn *hc, char *out, size_t cap)
{
    /* A listed origin is echoed (it is one of the operator's own strings); "*" is answered as
     * "*", so that nothing a client sent is written into a response head. */
    if (!hc->cors_origin.n || cap == 0 || hc->cors_origin.n > 200)
        return 0;
    int n = hc->cors_any ? snprintf(out, cap, "Access-Control-Allow-Origin: *\r\n")
                         : snprintf(out, cap, "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n",
                                    (int)hc->cors_origin.n, (const char *)hc->cors_origin.p);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
