/*
 * trace.c: W3C Trace Context's traceparent (https://www.w3.org/TR/trace-context/, level 1) as
 * pure functions over bytes, and the random ids of new traces and spans (docs/tracing.md).
 *
 * Ids come from a per-thread xoshiro256** generator seeded from getrandom(2): they need to be
 * unique and unpredictable enough to not collide (the spec's "randomness" of trace-ids), not
 * secret, and an event produced with injection on must not cost a system call.
 */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/base.h"

static int hex_nibble(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is not valid in a traceparent */
}

/* n bytes from 2n lowercase hex digits; false for any other character. */
static bool hex_bytes(const uint8_t *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int td_traceparent_parse(const void *p, size_t n, td_trace_ctx *out)
{
    const uint8_t *s = p;
    uint8_t version;
    td_trace_ctx c;
    if (!s || n < TD_TRACEPARENT_LEN || !hex_bytes(s, 1, &version) || version == 0xff)
        return -1;
    /* Version 00 is exactly its 55 bytes; a later one may add fields after a dash. */
    if (version == 0 ? n != TD_TRACEPARENT_LEN
                     : n > TD_TRACEPARENT_LEN && s[TD_TRACEPARENT_LEN] != '-')
        return -1;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-' || !hex_bytes(s + 3, 16, c.trace_id) ||
        !hex_bytes(s + 36, 8, c.span_id) || !hex_bytes(s + 53, 1, &c.flags))
        return -1;
    if (all_zero(c.trace_id, sizeof(c.trace_id)) || all_zero(c.span_id, sizeof(c.span_id)))
        return -1;
    *out = c;
    return 0;
}

static char *put_hex(char *w, const uint8_t *b, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *w++ = hex[b[i] >> 4];
        *w++ = hex[b[i] & 15];
    }
    return w;
}

int td_trace_id_parse(const void *p, size_t n, uint8_t out[16])
{
    uint8_t id[16];
    if (!p || n != 32 || !hex_bytes(p, 16, id) || all_zero(id, sizeof(id)))
        return -1;
    memcpy(out, id, sizeof(id));
    return 0;
}

size_t td_traceparent_format(const td_trace_ctx *c, char out[TD_TRACEPARENT_LEN + 1])
{
    char *w = out;
    *w++ = '0';
    *w++ = '0';
    *w++ = '-';
    w = put_hex(w, c->trace_id, sizeof(c->trace_id));
    *w++ = '-';
    w = put_hex(w, c->span_id, sizeof(c->span_id));
    *w++ = '-';
    w = put_hex(w, &c->flags, 1);
    *w = 0;
    return TD_TRACEPARENT_LEN;
}

bool td_tracestate_valid(const void *p, size_t n)
{
    const uint8_t *s = p;
    if (!s || n == 0 || n > TD_TRACESTATE_MAX)
        return false;
    size_t members = 1;
    for (size_t i = 0; i < n; i++) {
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] > 0x7e)
            return false;
        members += s[i] == ',';
    }
    return members <= 32;
}

/* ---------------------------------------------------------------------------------------------
 * Random ids
 */
static _Thread_local uint64_t rng[4];
static _Thread_local bool rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void rng_seed(void)
{
    if (getrandom(rng, sizeof(rng), 0) != (ssize_t)sizeof(rng)) {
        /* No entropy source: the clock and this thread's address, mixed (splitmix64). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                     (uint64_t)(uintptr_t)&rng_seeded;
        for (int i = 0; i < 4; i++) {
            uint64_t z = (x += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            rng[i] = z ^ (z >> 31);
        }
    }
    if (all_zero((const uint8_t *)rng, sizeof(rng)))
        rng[0] = 1; /* the one state xoshiro cannot leave */
    rng_seeded = true;
}

static uint64_t rng_next(void)
{
    if (!rng_seeded)
        rng_seed();
    uint64_t r = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return r;
}

void td_random_id(uint8_t *p, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = rng_next();
            memcpy(p + i, &r, TD_MIN(8, n - i));
        }
    } while (all_zero(p, n));
}

void td_trace_new_root(td_trace_ctx *c, uint8_t flags)
{
    td_random_id(c->trace_id, sizeof(c->trace_id));
    td_random_id(c->span_id, sizeof(c->span_id));
    c->flags = flags;
}

void td_trace_new_span(const td_trace_ctx *parent, td_trace_ctx *child)
{
    td_trace_ctx c = *parent;
    do
        td_random_id(c.span_id, sizeof(c.span_id));
    while (!memcmp(c.span_id, parent->span_id, sizeof(c.span_id)));
    *child = c;
}

/* ---------------------------------------------------------------------------------------------
 * Headers
 */
int td_trace_find(const td_header *hs, size_t n, td_trace_ctx *out)
{
    for (size_t i = 0; i < n; i++) {
        const td_header *h = &hs[i];
        if (h->key_len == 11 && !memcmp(h->key, "traceparent", 11))
            return h->value && td_traceparent_parse(h->value, h->value_len, out) == 0 ? 1 : -1;
    }
    return 0;
}

bool td_trace_header_name(const void *name, size_t n)
{
    return (n == 11 && !memcmp(name, "traceparent", 11)) ||
           (n == 10 && !memcmp(name, "tracestate", 10));
}
