/*
 * test_http_guard.c: the pure checks of proto/http/guard.c: which Host values name the broker
 * acceptably (DNS rebinding), which Origins are listed or the request's own, and which content
 * types are JSON; malformed and truncated values are refused, never read past their end.
 */
#include <stdlib.h>

#include "proto/http/http.h"
#include "test.h"

static td_slice sl(const char *s)
{
    return td_slice_make((const uint8_t *)s, strlen(s));
}

/* The value copied into a buffer of exactly its size, so that ASan sees a read past its end. */
static bool host_ok(const char *v, const char *allowed)
{
    size_t n = strlen(v);
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, v, n);
    bool ok = http_host_allowed(td_slice_make(copy, n), allowed);
    free(copy);
    return ok;
}

static void test_hosts_without_a_list(void)
{
    static const char *const ok[] = {"127.0.0.1", "127.0.0.1:8080", "10.1.2.3:80", "[::1]:8080",
                                     "[::1]", "[2001:db8::7]:9", "localhost", "LocalHost:8080",
                                     "localhost.", "app.localhost:3000", "a.b.LOCALHOST"};
    for (size_t i = 0; i < TD_ARRAY_LEN(ok); i++)
        ASSERT(host_ok(ok[i], ""));
    static const char *const refused[] = {
        "evil.example.com", "evil.example.com:8080", "localhost.evil.com", "127.0.0.1.nip.io",
        "xlocalhost", "", ":8080", "[::1", "[::1]x", "[::1]:", "localhost:", "localhost:80a",
        "[evil.com]:80", "1.2.3", "256.1.1.1", "[]", ".", "[127.0.0.1]"};
    for (size_t i = 0; i < TD_ARRAY_LEN(refused); i++)
        ASSERT(!host_ok(refused[i], ""));
    ASSERT(!host_ok("broker.internal", NULL));
}

static void test_hosts_listed(void)
{
    const char *list = " broker.internal , .example.com,Other.Test ";
    ASSERT(host_ok("broker.internal:8080", list));
    ASSERT(host_ok("BROKER.internal", list));
    ASSERT(host_ok("example.com", list));
    ASSERT(host_ok("a.example.com:443", list));
    ASSERT(host_ok("a.b.example.com", list));
    ASSERT(host_ok("other.test", list));
    ASSERT(!host_ok("notexample.com", list));
    ASSERT(!host_ok("broker.internal.evil", list));
    ASSERT(!host_ok("internal", list));
    ASSERT(host_ok("anything.at.all:1", "*"));
    ASSERT(host_ok("anything", "a, *"));
    ASSERT(!host_ok("[::1", "*")); /* malformed stays refused */
    ASSERT(!host_ok("x", ",,, ,"));
}

static void test_origins(void)
{
    bool any = true;
    ASSERT(http_origin_listed(sl("https://app.example.com"), "https://app.example.com", &any));
    ASSERT(!any);
    ASSERT(http_origin_listed(sl("HTTPS://APP.example.com"), "x, https://app.example.com", &any));
    ASSERT(!http_origin_listed(sl("https://app.example.com.evil"), "https://app.example.com",
                               &any));
    ASSERT(!any);
    ASSERT(!http_origin_listed(sl("null"), "", &any));
    ASSERT(!http_origin_listed(sl("http://a"), NULL, &any));
    ASSERT(http_origin_listed(sl("http://a"), "*", &any));
    ASSERT(any);
    ASSERT(http_origin_listed(sl("http://a"), "*, http://a", &any));
    ASSERT(!any); /* an exact entry wins */

    ASSERT(http_origin_same(sl("http://127.0.0.1:8080"), sl("127.0.0.1:8080")));
    ASSERT(http_origin_same(sl("http://LOCALHOST:8080"), sl("localhost:8080")));
    ASSERT(http_origin_same(sl("http://broker"), sl("broker:80")));
    ASSERT(http_origin_same(sl("https://broker:443"), sl("broker")));
    ASSERT(!http_origin_same(sl("http://127.0.0.1:8081"), sl("127.0.0.1:8080")));
    ASSERT(!http_origin_same(sl("http://evil.com"), sl("127.0.0.1:8080")));
    ASSERT(!http_origin_same(sl("null"), sl("127.0.0.1:8080")));
    ASSERT(!http_origin_same(sl("http://"), sl("")));
    ASSERT(!http_origin_same(sl("http:/"), sl("127.0.0.1")));
    ASSERT(!http_origin_same(sl(""), sl("127.0.0.1")));
}

static void test_content_types(void)
{
    static const char *const json[] = {"application/json", "Application/JSON",
                                       "application/json; charset=utf-8",
                                       "application/json;charset=UTF-8",
                                       "application/problem+json", "application/vnd.api+json"};
    for (size_t i = 0; i < TD_ARRAY_LEN(json); i++)
        ASSERT(http_content_type_json(sl(json[i])));
    static const char *const other[] = {"application/x-www-form-urlencoded",
                                        "multipart/form-data; boundary=x",
                                        "text/plain",
                                        "text/plain; charset=utf-8",
                                        "application/jsonx",
                                        "application/+json",
                                        "application/",
                                        "text/json+json",
                                        "",
                                        "application/jso"};
    for (size_t i = 0; i < TD_ARRAY_LEN(other); i++)
        ASSERT(!http_content_type_json(sl(other[i])));
}

/* Every prefix of a few values: no read past the end (ASan), and no prefix of a refused value
 * that is itself malformed is taken. */
static void test_truncated(void)
{
    static const char *const v[] = {"[2001:db8::7]:9", "app.localhost:3000", "127.0.0.1:8080",
                                    "https://app.example.com:8443"};
    for (size_t i = 0; i < TD_ARRAY_LEN(v); i++) {
        size_t n = strlen(v[i]);
        for (size_t k = 0; k <= n; k++) {
            uint8_t *copy = malloc(k ? k : 1);
            memcpy(copy, v[i], k);
            td_slice s = td_slice_make(copy, k);
            bool any;
            (void)http_host_allowed(s, "*");
            (void)http_origin_listed(s, "*", &any);
            (void)http_origin_same(s, td_slice_make(copy, k));
            (void)http_content_type_json(s);
            free(copy);
        }
    }
    ASSERT(!host_ok("[2001:db8::7", ""));
    ASSERT(!host_ok("[2001:db8::7]:", ""));
    ASSERT(host_ok("127.0.0.1:8", ""));
}

TEST_MAIN(TEST(test_hosts_without_a_list), TEST(test_hosts_listed), TEST(test_origins),
          TEST(test_content_types), TEST(test_truncated))
