/* libFuzzer target: the HTTP/1.1 request parser (proto/http/parser.c). Whatever the input, the
 * head parser must not crash or read out of bounds, a parsed head must point inside the input,
 * a chunked body must decode the same fed whole and byte by byte, and query strings and
 * percent-escapes in the target must decode or be refused cleanly; the request guards
 * (guard.c) and the Authorization parser (auth.c) read every header value within bounds. */
#include <stdlib.h>
#include <string.h>

#include "proto/http/http.h"
#include "proto/http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(td_slice s, const uint8_t *data, size_t size)
{
    if (s.n && (s.p < data || s.p + s.n > data + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_limits l;
    http_limits_default(&l);
    http_request r;
    const char *why;
    int rc = http_parse_request(data, size, &l, &r, &why);
    if (rc > 0 && !why)
        abort(); /* every refusal says why */
    if (rc != 0)
        return 0;
    if (r.head_len > size || r.nheaders > HTTP_MAX_HEADERS)
        abort();
    check_inside(r.method, data, size);
    if (!(r.path.n == 1 && r.path.p[0] == '/')) /* an absolute form without a path gets "/" */
        check_inside(r.path, data, size);
    check_inside(r.query, data, size);
    for (size_t i = 0; i < r.nheaders; i++) {
        check_inside(r.headers[i].name, data, size);
        check_inside(r.headers[i].value, data, size);
    }
    /* The W3C Trace Context (trace.c): a context found is a valid traceparent inside the
     * request, and its events get it unless they have their own. */
    td_slice tp, ts;
    size_t nts;
    if (http_trace_context(&r, &tp, &ts, &nts) == 1) {
        td_trace_ctx tc;
        check_inside(tp, data, size);
        if (td_traceparent_parse(tp.p, tp.n, &tc) != 0)
            abort();
        if (nts)
            check_inside(ts, data, size);
        td_arena a;
        td_arena_init(&a);
        td_event ev = {.value = "v", .value_len = 1};
        if (http_trace_events(&r, &a, &ev, 1) != 0 || ev.header_count < 1 ||
            ev.headers[0].value_len != tp.n || memcmp(ev.headers[0].value, tp.p, tp.n))
            abort();
        td_arena_free(&a);
    } else if (tp.n || nts) {
        abort();
    }
    /* The request guards (guard.c) on every header value: never out of bounds, and a list can
     * only allow more. */
    const td_slice *host = http_header_get(&r, "host");
    for (size_t i = 0; i < r.nheaders; i++) {
        td_slice hv = r.headers[i].value;
        bool any;
        if (http_host_allowed(hv, "") && !http_host_allowed(hv, "a.test, .b.test, *"))
            abort();
        if (http_origin_listed(hv, "", &any))
            abort();
        (void)http_origin_listed(hv, "http://a.test, *", &any);
        (void)http_origin_same(hv, host ? *host : hv);
        (void)http_content_type_json(hv);
        /* The Authorization parser (auth.c) on every value: a parsed Basic user is never
         * empty nor longer than a user name, a password never longer than one, and a bearer
         * token lies inside the value. */
        http_credentials cr;
        const char *awhy = NULL;
        int ar = http_auth_parse(hv, &cr, &awhy);
        if (ar != 0 && !awhy)
            abort();
        if (ar == 0 && cr.scheme == HTTP_AUTH_BASIC &&
            (!cr.user[0] || strlen(cr.user) > TD_USER_NAME_MAX ||
             cr.password_len > TD_USER_PASSWORD_MAX))
            abort();
        if (ar == 0 && cr.scheme == HTTP_AUTH_BEARER)
            check_inside(cr.token, hv.p, hv.n);
    }
    char out[256];
    td_slice it = r.query, k, v;
    while (http_query_next(&it, &k, &v)) {
        (void)http_pct_decode(k, true, out, sizeof(out));
        (void)http_pct_decode(v, true, out, sizeof(out));
    }
    (void)http_pct_decode(r.path, false, out, sizeof(out));
    if (r.chunked) {
        const uint8_t *b = data + r.head_len;
        size_t n = size - r.head_len, used1 = 0, used2 = 0;
        td_buf whole, bytes;
        td_buf_init(&whole);
        td_buf_init(&bytes);
        http_chunked c;
        http_chunked_init(&c);
        int r1 = http_chunked_feed(&c, b, n, 1 << 16, &whole, &used1, &why);
        http_chunked_init(&c);
        int r2 = 0;
        for (size_t i = 0; i < n && r2 == 0; i++) {
            size_t u = 0;
            r2 = http_chunked_feed(&c, b + i, 1, 1 << 16, &bytes, &u, &why);
            used2 = i + u;
        }
        if (n == 0)
            used2 = 0;
        if (r1 != r2 || (r1 == 1 && used1 != used2))
            abort();
        if (r1 >= 0 &&
            (whole.len != bytes.len || (whole.len && memcmp(whole.p, bytes.p, whole.len))))
            abort();
        td_buf_free(&whole);
        td_buf_free(&bytes);
    }
    return 0;
}
