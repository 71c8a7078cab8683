/*
 * json_schema_format.c: what JSON Schema validation needs beside the tree: the formats that are
 * checked, equality of JSON values as JSON Schema defines it, UTF-8 lengths, and patterns.
 *
 * Formats: "date-time" and "date" (RFC 3339, with the calendar's day counts), "email" (one '@'
 * between a non-empty local part and a dotted domain, no spaces: a plausibility check, not RFC
 * 5321's grammar), "ipv4" and "ipv6" (inet_pton's grammar, which is the RFCs' less zone ids),
 * "uuid" (RFC 4122's 8-4-4-4-12 hexadecimal digits). Every other format is an annotation.
 *
 * Patterns are ECMA-262 regular expressions in the specification; PCRE2 is close enough for
 * what schemas use (classes, quantifiers, anchors, groups, Unicode escapes), compiled in UTF
 * mode. A match runs under a match limit and a depth limit, so a pattern with catastrophic
 * backtracking ("(a+)+$") costs a bounded amount of work: a match that reaches the limit
 * counts as a failure of "pattern", reported as such.
 */
#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema/json_schema_int.h"

/* About a million steps of PCRE2's backtracking: far more than any sane pattern needs on a
 * value, a few milliseconds at worst. */
#define JS_MATCH_LIMIT 1000000u
#define JS_DEPTH_LIMIT 10000u

js_format js_format_parse(const char *name)
{
    static const struct {
        const char *name;
        js_format f;
    } fs[] = {{"date-time", JF_DATE_TIME}, {"date", JF_DATE}, {"email", JF_EMAIL},
              {"ipv4", JF_IPV4},           {"ipv6", JF_IPV6}, {"uuid", JF_UUID}};
    for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
        if (!strcmp(name, fs[i].name))
            return fs[i].f;
    return JF_NONE;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

static bool date_ok(const char *s, size_t n)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
        !digits(s + 8, 2))
        return false;
    int y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

/* HH:MM:SS[.frac](Z|+HH:MM|-HH:MM), a leap second allowed. */
static bool time_ok(const char *s, size_t n)
{
    if (n < 9 || s[2] != ':' || s[5] != ':' || !digits(s, 2) || !digits(s + 3, 2) ||
        !digits(s + 6, 2))
        return false;
    if (num(s, 2) > 23 || num(s + 3, 2) > 59 || num(s + 6, 2) > 60)
        return false;
    size_t i = 8;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return false;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z'))
        return i + 1 == n;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        return n - i == 6 && s[i + 3] == ':' && digits(s + i + 1, 2) && digits(s + i + 4, 2) &&
               num(s + i + 1, 2) <= 23 && num(s + i + 4, 2) <= 59;
    return false;
}

static bool email_ok(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at || at == s || memchr(at + 1, '@', n - (size_t)(at - s) - 1))
        return false;
    const char *dom = at + 1;
    size_t dl = n - (size_t)(dom - s);
    if (!dl || dom[0] == '.' || dom[dl - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ')
            return false;
    return true;
}

static bool uuid_ok(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char ch = s[i];
        bool hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
        if (dash ? ch != '-' : !hex)
            return false;
    }
    return true;
}

bool js_format_ok(js_format f, const char *s, size_t n)
{
    char buf[64];
    unsigned char addr[16];
    switch (f) {
    case JF_DATE:
        return date_ok(s, n);
    case JF_DATE_TIME:
        return n > 11 && (s[10] == 'T' || s[10] == 't' || s[10] == ' ') && date_ok(s, 10) &&
               time_ok(s + 11, n - 11);
    case JF_EMAIL:
        return email_ok(s, n);
    case JF_IPV4:
    case JF_IPV6:
        if (n >= sizeof(buf) || memchr(s, 0, n))
            return false;
        memcpy(buf, s, n);
        buf[n] = 0;
        return inet_pton(f == JF_IPV4 ? AF_INET : AF_INET6, buf, addr) == 1;
    case JF_UUID:
        return uuid_ok(s, n);
    default:
        return true;
    }
}

/* The bytes that are not continuation bytes (10xxxxxx), 8 at a time. */
size_t js_utf8_len(const char *s, size_t n)
{
    size_t count = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t cont = (x >> 7) & ~(x >> 6) & 0x0101010101010101ULL;
        count += 8 - (size_t)__builtin_popcountll(cont);
    }
    for (; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

static bool num_equal(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    return json_number_value(a) == json_number_value(b);
}

bool js_equal(const json_t *a, const json_t *b, int depth)
{
    if (depth > SCHEMA_MAX_DEPTH * 4)
        return false;
    if (json_is_number(a) && json_is_number(b))
        return num_equal(a, b);
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!js_equal(json_array_get(a, i), json_array_get(b, i), depth + 1))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !js_equal(v, w, depth + 1))
                return false;
        }
        return true;
    }
    default:
        return true; /* true, false, null */
    }
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

uint64_t js_hash(const json_t *v, int depth)
{
    uint64_t h = (uint64_t)json_typeof(v) * 0x100000001b3ULL;
    if (depth > SCHEMA_MAX_DEPTH * 4)
        return h;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = json_number_value(v);
        if (d == 0)
            d = 0; /* -0.0 equals 0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        return mix(0x51, bits);
    }
    case JSON_STRING: {
        const unsigned char *s = (const unsigned char *)json_string_value(v);
        size_t n = json_string_length(v);
        for (size_t i = 0; i < n; i++)
            h = (h ^ s[i]) * 0x100000001b3ULL;
        return h;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) h = mix(h, js_hash(e, depth + 1));
        return h;
    }
    case JSON_OBJECT: {
        /* Key order does not matter: a commutative sum of the members' hashes. */
        uint64_t sum = 0;
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            uint64_t kh = 0xcbf29ce484222325ULL;
            for (const char *p = k; *p; p++)
                kh = (kh ^ (unsigned char)*p) * 0x100000001b3ULL;
            sum += mix(kh, js_hash(e, depth + 1));
        }
        return mix(h, sum);
    }
    default:
        return h;
    }
}

pcre2_code *js_regex_compile(const char *src, char *why, size_t whylen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(why, whylen, "%s at offset %zu", (const char *)msg, (size_t)off);
        return NULL;
    }
    /* JIT when the platform has it: several times faster, and still under the match limit. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/*
 * The match data and match context are per thread, created on a thread's first match and
 * freed when it exits: a match allocates nothing in the steady state. The match data has one
 * pair of offsets: whether there is a match is all that matters.
 */
typedef struct match_tls {
    pcre2_match_data *md;
    pcre2_match_context *mc;
} match_tls;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
    match_tls *t = p;
    pcre2_match_data_free(t->md);
    pcre2_match_context_free(t->mc);
    free(t);
}

static void tls_init(void)
{
    (void)pthread_key_create(&tls_key, tls_free);
}

static match_tls *tls_get(void)
{
    pthread_once(&tls_once, tls_init);
    match_tls *t = pthread_getspecific(tls_key);
    if (t)
        return t;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->md = pcre2_match_data_create(1, NULL);
    t->mc = pcre2_match_context_create(NULL);
    if (!t->md || !t->mc || pthread_setspecific(tls_key, t)) {
        tls_free(t);
        return NULL;
    }
    pcre2_set_match_limit(t->mc, JS_MATCH_LIMIT);
    pcre2_set_depth_limit(t->mc, JS_DEPTH_LIMIT);
    return t;
}

/* s: valid UTF-8 (the caller's promise). */
int js_regex_match(const pcre2_code *re, const char *s, size_t n)
{
    match_tls *t = tls_get();
    if (!t)
        return -1;
    /* The strings matched are valid UTF-8 (a parsed document's, or jansson's), so PCRE2 need
     * not check them again; the JIT's own entry point skips pcre2_match's other checks too. */
    int rc = pcre2_jit_match(re, (PCRE2_SPTR)s, n, 0, 0, t->md, t->mc);
    if (rc == PCRE2_ERROR_JIT_BADOPTION) /* not compiled by the JIT */
        rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, t->md, t->mc);
    if (rc >= 0)
        return 1;
    return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}
