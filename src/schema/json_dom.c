/*
 * json_dom.c: the flat JSON document of json_dom.h. The parser is iterative (an explicit stack
 * of the open containers, JD_MAX_DEPTH deep), allocates nothing once its buffers have grown to
 * the size of the documents it sees, and follows jansson's lexer rule by rule (load.c of
 * jansson 2.14) so that it accepts and refuses the same texts; tests/fuzz/json_dom compares the
 * two on every input.
 *
 * Costs: one pass over the text; strings are copied once into the string buffer (which is as
 * large as the text, so that no string moves while the document is built); an object's
 * duplicate keys are looked for when it closes, by pairs of key hashes up to 8 members and
 * through a hash table above, so the work stays linear in the text.
 */
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "schema/json_dom.h"
#include "schema/schema.h"

/* What a thread keeps between documents: past these, the buffers are freed after use. */
#define JD_KEEP_NODES 16384
#define JD_KEEP_BYTES (256 * 1024)

/* Keys are hashed 8 bytes at a time (a multiply and a rotation per word, then a final mix):
 * parsing hashes every key of a document, and byte-at-a-time FNV was a quarter of the parse. */
uint32_t jd_hash_key(const char *s, size_t n)
{
    const uint64_t k = 0x9E3779B97F4A7C15ULL;
    uint64_t h = (uint64_t)n * k;
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = ((h ^ w) * k);
        h = (h << 29) | (h >> 35);
    }
    if (n >= 4) { /* two 4-byte loads, overlapping when n < 8 */
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        h = (h ^ ((uint64_t)b << 32 | a)) * k;
    } else if (n) {
        const unsigned char *u = (const unsigned char *)s;
        h = (h ^ ((uint64_t)u[0] | (uint64_t)u[n / 2] << 8 | (uint64_t)u[n - 1] << 16)) * k;
    }
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ULL;
    h ^= h >> 32;
    return (uint32_t)h;
}

void jd_doc_free(jd_doc *d)
{
    free(d->nodes);
    free(d->str);
    free(d->scratch);
    memset(d, 0, sizeof(*d));
}

void jd_doc_trim(jd_doc *d)
{
    if (d->cap > JD_KEEP_NODES || d->str_cap > JD_KEEP_BYTES || d->scratch_cap > JD_KEEP_NODES)
        jd_doc_free(d);
}

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
    jd_doc_free(p);
    free(p);
}

static void tls_init(void)
{
    (void)pthread_key_create(&tls_key, tls_free);
}

jd_doc *jd_doc_tls(void)
{
    pthread_once(&tls_once, tls_init);
    jd_doc *d = pthread_getspecific(tls_key);
    if (d)
        return d;
    d = calloc(1, sizeof(*d));
    if (d && pthread_setspecific(tls_key, d)) {
        free(d);
        return NULL;
    }
    return d;
}

/* A new node (its index), or -1 when memory ran out or the count would not fit. */
static int64_t new_node(jd_doc *d, uint8_t type, const char *key, uint32_t keylen, uint32_t keyhash)
{
    if (d->n == d->cap) {
        if (d->cap >= UINT32_MAX / 4)
            return -1;
        uint32_t cap = d->cap ? d->cap * 2 : 64;
        jd_node *nodes = realloc(d->nodes, (size_t)cap * sizeof(*nodes));
        if (!nodes)
            return -1;
        d->nodes = nodes;
        d->cap = cap;
    }
    jd_node *n = &d->nodes[d->n];
    n->key = key;
    n->keyhash = keyhash;
    n->keylen = keylen;
    n->skip = 1;
    n->len = 0;
    n->alias = 0;
    n->type = type;
    n->dead = 0;
    n->neg_zero = 0;
    n->ascii = 0;
    return d->n++;
}

static bool reserve_scratch(jd_doc *d, size_t need)
{
    if (need <= d->scratch_cap)
        return true;
    size_t cap = d->scratch_cap ? d->scratch_cap : 64;
    while (cap < need)
        cap *= 2;
    uint32_t *s = realloc(d->scratch, cap * sizeof(*s));
    if (!s)
        return false;
    d->scratch = s;
    d->scratch_cap = cap;
    return true;
}

static bool same_key(const jd_node *a, const jd_node *b)
{
    return a->keyhash == b->keyhash && !strcmp(a->key, b->key);
}

/* A key given again: the earlier member keeps its place and takes the later one's value
 * (jansson's json_object_set replaces the value of an existing key in place). */
static void mark_duplicate(jd_node *nodes, uint32_t first, uint32_t later)
{
    nodes[later].dead = 1;
    nodes[first].alias = later - first;
}

/* Up to this many members, duplicate keys are looked for by pairs (of hashes first). */
#define JD_PAIRS_MAX 8

/* Looks for the duplicate keys of the object at index o with cnt members; returns the number
 * of distinct keys, or -1 (memory). */
static int64_t dedupe(jd_doc *d, uint32_t o, uint32_t cnt)
{
    if (cnt < 2)
        return cnt;
    size_t tsize = 32;
    while (tsize < (size_t)cnt * 2)
        tsize *= 2;
    if (!reserve_scratch(d, cnt + (cnt > JD_PAIRS_MAX ? tsize : 0)))
        return -1;
    jd_node *nodes = d->nodes;
    uint32_t *m = d->scratch;
    for (uint32_t i = 0, k = o + 1; i < cnt; i++, k += nodes[k].skip)
        m[i] = k;
    uint32_t dead = 0;
    if (cnt <= JD_PAIRS_MAX) {
        for (uint32_t j = 1; j < cnt; j++)
            for (uint32_t i = 0; i < j; i++)
                if (!nodes[m[i]].dead && same_key(&nodes[m[i]], &nodes[m[j]])) {
                    mark_duplicate(nodes, m[i], m[j]);
                    dead++;
                    break;
                }
        return cnt - dead;
    }
    uint32_t *table = m + cnt; /* member index + 1; 0 is empty */
    memset(table, 0, tsize * sizeof(*table));
    for (uint32_t j = 0; j < cnt; j++) {
        size_t slot = nodes[m[j]].keyhash & (tsize - 1);
        while (table[slot] && !same_key(&nodes[table[slot] - 1], &nodes[m[j]]))
            slot = (slot + 1) & (tsize - 1);
        if (table[slot]) {
            mark_duplicate(nodes, table[slot] - 1, m[j]);
            dead++;
        } else {
            table[slot] = m[j] + 1;
        }
    }
    return cnt - dead;
}

typedef struct jp {
    jd_doc *d;
    const unsigned char *p, *end;
} jp;

static void skip_ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

/* The length of the UTF-8 sequence at p (jansson's utf8_check_first and utf8_check_full:
 * no overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (n == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)))
        return 0;
    if (n == 4 && (v < 0x10000 || v > 0x10FFFF))
        return 0;
    return n;
}

static int hex4(const unsigned char *p, const unsigned char *end, uint32_t *out)
{
    if (end - p < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* An escape after the backslash at j->p; appends its UTF-8 at *o. */
static int escape(jp *j, char **o, bool key)
{
    const unsigned char *p = j->p + 1;
    if (p >= j->end)
        return -1;
    static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    for (const char *s = simple; *s; s += 2)
        if (*p == (unsigned char)s[0]) {
            *(*o)++ = s[1];
            j->p = p + 1;
            return 0;
        }
    if (*p != 'u')
        return -1;
    uint32_t cp, lo;
    if (hex4(p + 1, j->end, &cp))
        return -1;
    p += 5;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return -1;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (j->end - p < 2 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, j->end, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
            return -1;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
    }
    if (cp == 0 && key)
        return -1; /* jansson: "NUL byte in object key not supported" */
    *o = put_utf8(*o, cp);
    j->p = p;
    return 0;
}

/* SWAR over 8 bytes: a byte of x that ends a run of plain string characters (a quote, a
 * backslash, a control character or a byte of a multibyte sequence) makes this non-zero. */
#define JD_ONES 0x0101010101010101ULL
#define JD_HIGHS 0x8080808080808080ULL
static inline uint64_t special_bytes(uint64_t x)
{
    uint64_t q = x ^ (JD_ONES * '"'), b = x ^ (JD_ONES * '\\');
    uint64_t zq = (q - JD_ONES) & ~q, zb = (b - JD_ONES) & ~b;
    uint64_t lt = x - JD_ONES * 0x20; /* a byte below 0x20 borrows into its high bit */
    return (zq | zb | lt | x) & JD_HIGHS;
}

/* Copies the plain characters from *p to *o, advancing both to the first special one (or the
 * end). 16 bytes at a time with SSE2, then 8 at a time (the lowest byte that special_bytes
 * flags is a special one: a false flag can only come from a borrow out of a lower, special,
 * byte), then byte by byte in the last 7. Each wide store stays inside the string buffer: a
 * string's unescaped form with its NUL is shorter than its text with its quotes, so *o never
 * gets ahead of *p's offset in the text, and the buffer is as large as the text. */
static void plain_run(const unsigned char **p, char **o, const unsigned char *end)
{
    const unsigned char *s = *p;
    char *t = *o;
#ifdef __SSE2__
    /* 16 bytes at a time: a signed compare below 0x20 flags the control characters and the
     * bytes from 0x80 (negative) at once. */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (end - s >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
        _mm_storeu_si128((__m128i *)(void *)t, x);
        int hit = _mm_movemask_epi8(
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                         _mm_cmplt_epi8(x, space)));
        if (hit) {
            size_t k = (size_t)__builtin_ctz((unsigned)hit);
            *p = s + k;
            *o = t + k;
            return;
        }
        s += 16;
        t += 16;
    }
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - s >= 8) {
        uint64_t x;
        memcpy(&x, s, 8);
        memcpy(t, &x, 8);
        uint64_t hit = special_bytes(x);
        if (hit) {
            size_t k = (size_t)__builtin_ctzll(hit) >> 3;
            *p = s + k;
            *o = t + k;
            return;
        }
        s += 8;
        t += 8;
    }
#endif
    while (s < end && *s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
        *t++ = (char)*s++;
    *p = s;
    *o = t;
}

/* A string at j->p (its opening quote), unescaped into the string buffer; *ascii tells whether
 * it holds only ASCII characters. */
static int parse_string(jp *j, const char **out, uint32_t *len, bool key, uint8_t *ascii)
{
    jd_doc *d = j->d;
    char *start = d->str + d->str_len, *o = start;
    uint8_t only_ascii = 1;
    j->p++;
    for (;;) {
        plain_run(&j->p, &o, j->end);
        const unsigned char *q = j->p;
        if (q >= j->end)
            return -1;
        if (*q == '"') {
            j->p++;
            break;
        }
        if (*q == '\\') {
            char *before = o;
            if (escape(j, &o, key))
                return -1;
            if ((unsigned char)*before >= 0x80)
                only_ascii = 0;
        } else if (*q < 0x20) {
            return -1;
        } else {
            size_t n = utf8_seq(q, j->end);
            if (!n)
                return -1;
            memcpy(o, q, n);
            o += n;
            j->p += n;
            only_ascii = 0;
        }
    }
    *o = 0;
    *out = start;
    *len = (uint32_t)(o - start);
    *ascii = only_ascii;
    d->str_len += (size_t)(o - start) + 1;
    return 0;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * Up to 19 significant digits (what printing a double for a round trip writes: 16 or 17),
 * on x86-64: m and 10^|e| (|e| <= 27, 5^27 < 2^64) are exact in the x87's 64-bit significand,
 * so m * 10^e or m / 10^|e| is rounded once there, to within half of its last place. Rounding
 * that to a double is then the correct rounding of the exact value unless the extended result
 * lies at a double's halfway point (its 11 bits below the double's 53 are 0x400, or next to
 * it): those few go to strtod. 1 and *out, or 0 for strtod.
 */
static bool extended_real(uint64_t m, int e, double *out)
{
#if defined(__x86_64__) && LDBL_MANT_DIG == 64
    static const long double p10[] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,
                                      1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
                                      1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
                                      1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
    if (!m)
        return false;
    long double v = (long double)m;
    v = e < 0 ? v / p10[-e] : v * p10[e];
    uint64_t significand;
    memcpy(&significand, &v, sizeof(significand)); /* the low 8 bytes of the 80-bit format */
    unsigned low = (unsigned)(significand & 0x7FF);
    if (low >= 0x3FF && low <= 0x401)
        return false;
    *out = (double)v;
    return true;
#else
    (void)m, (void)e, (void)out;
    return false;
#endif
}

/* The real of a number token, as jansson's jsonp_strtod: strtod, refused when it overflows.
 * Clinger's fast path first: up to 15 digits and a power of ten up to 22 are exact as
 * doubles, so one multiplication or division rounds correctly, as strtod does. */
static int token_real(const char *s, size_t n, double *out)
{
    uint64_t m = 0;
    int digits = 0, scale = 0, exp = 0, esign = 1;
    size_t i = 0;
    bool neg = s[0] == '-';
    i += neg;
    /* Significant digits (after the leading zeros) are counted; m is only used when there
     * are at most 15 of them, so its overflow past 19 does not matter. */
    for (bool frac = false; i < n; i++) {
        if (s[i] == '.' && !frac) {
            frac = true;
            continue;
        }
        if (s[i] < '0' || s[i] > '9')
            break;
        digits += digits || s[i] != '0';
        m = m * 10 + (uint64_t)(s[i] - '0');
        scale -= frac;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (s[i] == '+' || s[i] == '-')
            esign = s[i++] == '-' ? -1 : 1;
        for (; i < n && exp < 10000; i++)
            exp = exp * 10 + (s[i] - '0');
        if (i < n)
            exp = 100000; /* too many exponent digits for the fast path */
    }
    int e = scale + esign * exp;
    if (digits <= 15 && exp < 10000 && e >= -22 && e <= 22) {
        double v = (double)m;
        v = e < 0 ? v / pow10_exact[-e] : v * pow10_exact[e];
        *out = neg ? -v : v;
        return 0;
    }
    if (digits <= 19 && exp < 10000 && e >= -27 && e <= 27 && extended_real(m, e, out)) {
        *out = neg ? -*out : *out;
        return 0;
    }
    char small[64], *buf = n < sizeof(small) ? small : malloc(n + 1);
    if (!buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    errno = 0;
    double v = strtod(buf, NULL);
    int bad = (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE;
    if (buf != small)
        free(buf);
    *out = v;
    return bad ? -1 : 0;
}

/* A number at j->p into node k (jansson's lex_scan_number). */
static int parse_number(jp *j, jd_node *k)
{
    const unsigned char *s = j->p, *p = s, *e = j->end;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    const unsigned char *ds = p;
    if (p < e && *p == '0')
        p++;
    else if (p < e && *p >= '1' && *p <= '9')
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    else
        return -1;
    const unsigned char *de = p;
    bool real = false;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return -1;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        real = true;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return -1;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        real = true;
    }
    j->p = p;
    if (!real) {
        /* strtoll's range: up to 2^63 - 1, down to -2^63. */
        uint64_t v = 0, lim = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
        bool over = false;
        for (const unsigned char *q = ds; q < de && !over; q++) {
            unsigned dgt = *q - '0';
            if (v > (lim - dgt) / 10)
                over = true;
            else
                v = v * 10 + dgt;
        }
        if (!over) {
            k->type = JD_INT;
            k->u.i = neg ? (long long)(0 - v) : (long long)v;
            k->neg_zero = neg && !v;
            return 0;
        }
        /* jansson's "too big integer": json_schema.c reads the document again with every
         * integer as a real. */
        j->d->ints_as_real = true;
    }
    k->type = JD_REAL;
    return token_real((const char *)s, (size_t)(p - s), &k->u.d);
}

static int literal(jp *j, const char *word, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n))
        return -1;
    j->p += n;
    return 0;
}

/* One scalar (or the opening of a container) at j->p into node k. */
static int parse_scalar(jp *j, jd_node *k)
{
    switch (*j->p) {
    case '"':
        k->type = JD_STR;
        return parse_string(j, &k->u.s, &k->len, false, &k->ascii);
    case 't':
        k->type = JD_TRUE;
        return literal(j, "true", 4);
    case 'f':
        k->type = JD_FALSE;
        return literal(j, "false", 5);
    case 'n':
        k->type = JD_NULL;
        return literal(j, "null", 4);
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
            return parse_number(j, k);
        return -1;
    }
}

/* A container closes: its size, its count of children (cnt, as counted by the parser), its
 * duplicate keys (looked for only when the object's filter saw a key that may repeat). */
static int close_container(jd_doc *d, uint32_t c, uint32_t cnt, bool maybe_dup)
{
    jd_node *nodes = d->nodes;
    nodes[c].skip = d->n - c;
    if (nodes[c].type == JD_OBJ && maybe_dup) {
        int64_t distinct = dedupe(d, c, cnt);
        if (distinct < 0)
            return -1;
        cnt = (uint32_t)distinct;
    }
    d->nodes[c].len = cnt;
    return 0;
}

/*
 * The keys of the objects open at the first JD_FILTER_DEPTH levels go through a Bloom filter
 * (256 bits, two per key), so that an object closes without looking for duplicate keys when no
 * key may have come before: with 20 keys about one object in seven still looks (a false
 * positive), where every object did.
 */
#define JD_FILTER_DEPTH 32

typedef struct key_filter {
    uint64_t bits[JD_FILTER_DEPTH][4];
    bool maybe_dup[JD_MAX_DEPTH];
} key_filter;

static void filter_open(key_filter *f, int level)
{
    if (level < JD_FILTER_DEPTH)
        memset(f->bits[level], 0, sizeof(f->bits[level]));
    f->maybe_dup[level] = level >= JD_FILTER_DEPTH;
}

static void filter_key(key_filter *f, int level, uint32_t hash)
{
    if (level >= JD_FILTER_DEPTH)
        return;
    uint64_t *b = f->bits[level];
    unsigned h1 = hash & 255, h2 = (hash >> 8) & 255;
    uint64_t m1 = (uint64_t)1 << (h1 & 63), m2 = (uint64_t)1 << (h2 & 63);
    if ((b[h1 >> 6] & m1) && (b[h2 >> 6] & m2))
        f->maybe_dup[level] = true;
    b[h1 >> 6] |= m1;
    b[h2 >> 6] |= m2;
}

int jd_parse(jd_doc *d, const char *text, size_t len)
{
    d->n = 0;
    d->str_len = 0;
    d->ints_as_real = false;
    if (len >= UINT32_MAX / 2)
        return -1;
    if (d->str_cap < len + 1) {
        size_t cap = len + 1 > 4096 ? len + 1 : 4096;
        char *s = malloc(cap);
        if (!s)
            return -1;
        free(d->str);
        d->str = s;
        d->str_cap = cap;
    }
    uint32_t stack[JD_MAX_DEPTH], children[JD_MAX_DEPTH];
    key_filter filter;
    int depth = 0;
    jp j = {d, (const unsigned char *)text, (const unsigned char *)text + len};
    const char *key = NULL;
    uint32_t keyhash = 0, keylen = 0;

value:
    skip_ws(&j);
    if (j.p >= j.end || depth >= JD_MAX_DEPTH)
        return -1;
    {
        int64_t k = new_node(d, JD_NULL, key, keylen, keyhash);
        if (k < 0)
            return -1;
        key = NULL;
        if (depth)
            children[depth - 1]++;
        if (*j.p == '{' || *j.p == '[') {
            bool obj = *j.p++ == '{';
            d->nodes[k].type = obj ? JD_OBJ : JD_ARR;
            children[depth] = 0;
            if (obj)
                filter_open(&filter, depth);
            stack[depth++] = (uint32_t)k;
            skip_ws(&j);
            if (j.p < j.end && *j.p == (obj ? '}' : ']')) {
                j.p++;
                goto close;
            }
            if (obj)
                goto member;
            goto value;
        }
        if (parse_scalar(&j, &d->nodes[k]))
            return -1;
        /* jansson's quirk, kept so that both accept the same texts: the character after a
         * number or a literal is read ahead and put back, and a NUL byte put back is lost
         * (its stream takes a NUL in its buffer for "read the next byte"). */
        if (d->nodes[k].type != JD_STR && j.p < j.end && *j.p == 0)
            j.p++;
        goto after;
    }
member:
    skip_ws(&j);
    if (j.p >= j.end || *j.p != '"')
        return -1;
    {
        uint32_t klen;
        uint8_t key_ascii;
        if (parse_string(&j, &key, &klen, true, &key_ascii))
            return -1;
        keyhash = jd_hash_key(key, klen);
        keylen = klen;
        filter_key(&filter, depth - 1, keyhash);
    }
    skip_ws(&j);
    if (j.p >= j.end || *j.p != ':')
        return -1;
    j.p++;
    goto value;
close:
    depth--;
    if (close_container(d, stack[depth], children[depth],
                        d->nodes[stack[depth]].type == JD_OBJ && filter.maybe_dup[depth]))
        return -1;
after:
    skip_ws(&j);
    if (!depth) {
        if (j.p != j.end)
            return -1;
        if (d->ints_as_real)
            for (uint32_t i = 0; i < d->n; i++)
                if (d->nodes[i].type == JD_INT) {
                    d->nodes[i].type = JD_REAL;
                    d->nodes[i].u.d = d->nodes[i].neg_zero ? -0.0 : (double)d->nodes[i].u.i;
                }
        return 0;
    }
    if (j.p >= j.end)
        return -1;
    {
        bool obj = d->nodes[stack[depth - 1]].type == JD_OBJ;
        if (*j.p == ',') {
            j.p++;
            if (obj)
                goto member;
            goto value;
        }
        if (*j.p == (obj ? '}' : ']')) {
            j.p++;
            goto close;
        }
    }
    return -1;
}

static int from_json(jd_doc *d, const json_t *v, const char *key, int depth)
{
    if (depth > JD_MAX_DEPTH + 8)
        return -1;
    size_t klen = key ? strlen(key) : 0;
    if (klen > UINT32_MAX)
        return -1;
    int64_t k = new_node(d, JD_NULL, key, (uint32_t)klen, key ? jd_hash_key(key, klen) : 0);
    if (k < 0)
        return -1;
    jd_node *n = &d->nodes[k];
    switch (json_typeof(v)) {
    case JSON_TRUE:
        n->type = JD_TRUE;
        return 0;
    case JSON_FALSE:
        n->type = JD_FALSE;
        return 0;
    case JSON_NULL:
        return 0;
    case JSON_INTEGER:
        n->type = JD_INT;
        n->u.i = json_integer_value(v);
        return 0;
    case JSON_REAL:
        n->type = JD_REAL;
        n->u.d = json_real_value(v);
        return 0;
    case JSON_STRING:
        n->type = JD_STR;
        n->u.s = json_string_value(v);
        n->len = (uint32_t)json_string_length(v);
        return 0;
    case JSON_ARRAY: {
        n->type = JD_ARR;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (from_json(d, e, NULL, depth + 1)) return -1;
        break;
    }
    case JSON_OBJECT: {
        n->type = JD_OBJ;
        const char *kk;
        json_t *e;
        json_object_foreach((json_t *)v, kk, e) if (from_json(d, e, kk, depth + 1)) return -1;
        break;
    }
    }
    d->nodes[k].skip = d->n - (uint32_t)k;
    d->nodes[k].len = (uint32_t)(json_is_array(v) ? json_array_size(v) : json_object_size(v));
    return 0;
}

int jd_from_json(jd_doc *d, const json_t *v)
{
    d->n = 0;
    d->str_len = 0;
    d->ints_as_real = false;
    return v ? from_json(d, v, NULL, 0) : -1;
}

const jd_node *jd_get(const jd_node *o, const char *key)
{
    if (o->type != JD_OBJ || !o->len)
        return NULL;
    uint32_t h = jd_hash_key(key, strlen(key));
    const jd_node *end = o + o->skip;
    for (const jd_node *m = jd_first(o); m < end; m = jd_next(m))
        if (!m->dead && m->keyhash == h && !strcmp(m->key, key))
            return jd_member_value(m);
    return NULL;
}

static bool is_num(uint8_t t)
{
    return t == JD_INT || t == JD_REAL;
}

bool jd_equal(const jd_node *a, const jd_node *b, int depth)
{
    if (depth > SCHEMA_MAX_DEPTH * 4)
        return false;
    if (is_num(a->type) && is_num(b->type)) {
        if (a->type == JD_INT && b->type == JD_INT)
            return a->u.i == b->u.i;
        return jd_number(a) == jd_number(b);
    }
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case JD_STR:
        return a->len == b->len && !memcmp(a->u.s, b->u.s, a->len);
    case JD_ARR: {
        if (a->len != b->len)
            return false;
        const jd_node *x = jd_first(a), *y = jd_first(b);
        for (uint32_t i = 0; i < a->len; i++, x = jd_next(x), y = jd_next(y))
            if (!jd_equal(x, y, depth + 1))
                return false;
        return true;
    }
    case JD_OBJ: {
        if (a->len != b->len)
            return false;
        const jd_node *end = jd_next(a);
        for (const jd_node *m = jd_first(a); m < end; m = jd_next(m)) {
            if (m->dead)
                continue;
            const jd_node *w = jd_get(b, m->key);
            if (!w || !jd_equal(jd_member_value(m), w, depth + 1))
                return false;
        }
        return true;
    }
    default:
        return true; /* true, false, null */
    }
}

bool jd_equal_json(const jd_node *a, const json_t *b, int depth)
{
    if (depth > SCHEMA_MAX_DEPTH * 4)
        return false;
    if (is_num(a->type) && json_is_number(b)) {
        if (a->type == JD_INT && json_is_integer(b))
            return a->u.i == json_integer_value(b);
        return jd_number(a) == json_number_value(b);
    }
    switch (a->type) {
    case JD_NULL:
        return json_is_null(b);
    case JD_TRUE:
        return json_is_true(b);
    case JD_FALSE:
        return json_is_false(b);
    case JD_STR:
        return json_is_string(b) && a->len == json_string_length(b) &&
               !memcmp(a->u.s, json_string_value(b), a->len);
    case JD_ARR: {
        if (!json_is_array(b) || a->len != json_array_size(b))
            return false;
        const jd_node *x = jd_first(a);
        for (uint32_t i = 0; i < a->len; i++, x = jd_next(x))
            if (!jd_equal_json(x, json_array_get(b, i), depth + 1))
                return false;
        return true;
    }
    case JD_OBJ: {
        if (!json_is_object(b) || a->len != json_object_size(b))
            return false;
        const jd_node *end = jd_next(a);
        for (const jd_node *m = jd_first(a); m < end; m = jd_next(m)) {
            if (m->dead)
                continue;
            const json_t *w = json_object_get(b, m->key);
            if (!w || !jd_equal_json(jd_member_value(m), w, depth + 1))
                return false;
        }
        return true;
    }
    default:
        return false;
    }
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

uint64_t jd_hash(const jd_node *v, int depth)
{
    uint64_t h = (uint64_t)(v->type + 1) * 0x100000001b3ULL;
    if (depth > SCHEMA_MAX_DEPTH * 4)
        return h;
    switch (v->type) {
    case JD_INT:
    case JD_REAL: {
        double d = jd_number(v);
        if (d == 0)
            d = 0; /* -0.0 equals 0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        return mix(0x51, bits);
    }
    case JD_STR:
        for (uint32_t i = 0; i < v->len; i++)
            h = (h ^ (unsigned char)v->u.s[i]) * 0x100000001b3ULL;
        return h;
    case JD_ARR: {
        const jd_node *x = jd_first(v);
        for (uint32_t i = 0; i < v->len; i++, x = jd_next(x))
            h = mix(h, jd_hash(x, depth + 1));
        return h;
    }
    case JD_OBJ: {
        /* Key order does not matter: a commutative sum of the members' hashes. */
        uint64_t sum = 0;
        const jd_node *end = jd_next(v);
        for (const jd_node *m = jd_first(v); m < end; m = jd_next(m))
            if (!m->dead)
                sum += mix(m->keyhash, jd_hash(jd_member_value(m), depth + 1));
        return mix(h, sum);
    }
    default:
        return h;
    }
}
