/*
 * base.h: the bottom layer every other layer uses: owned buffers and borrowed slices, CRC32C,
 * Kafka's varint/zigzag encodings, Kafka's murmur2 hash, errors, logging and clocks, and the
 * rule of topic names with the mapping of Redis keys to them (a pure function of bytes, here
 * because storage validates names, every listener parses them and the CLI checks them).
 * Nothing here knows about storage or protocols.
 */
#ifndef TD_BASE_H
#define TD_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "tidings.h"

#define TD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TD_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define TD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define TD_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define TD_PRINTF(f, a)
#define TD_UNLIKELY(x) (x)
#endif

/* ---------------------------------------------------------------------------------------------
 * Slices and buffers
 */

/* A borrowed view of bytes. Whoever hands one out says until when it is valid. */
typedef struct td_slice {
    const uint8_t *p;
    size_t n;
} td_slice;

static inline td_slice td_slice_make(const void *p, size_t n)
{
    td_slice s = {(const uint8_t *)p, n};
    return s;
}

/* Makes room for one more element in a malloc'd array (*arr, pass its address) of *cap elements
 * of `size` bytes that holds n: when full, the capacity doubles (from `first`). 0, or -ENOMEM
 * with the array as it was. */
int td_grow(void *arr, size_t *cap, size_t n, size_t size, size_t first);

/* Writes v in decimal at out (at most 20 bytes, no NUL) and returns how many: for the hot
 * paths that format numbers without printf. */
size_t td_u64_text(char *out, uint64_t v);

/* ---------------------------------------------------------------------------------------------
 * Topic names and the Redis keys they hold (topic_name.c; docs/redis.md#keys-and-topics). A
 * topic name is 1 to TD_TOPIC_NAME_MAX bytes: 0x21..0x7E stand for themselves except
 * % / " \ * # , and every other byte is %XX (upper-case hex), in that canonical form only; the
 * empty key is "%", the keys "." and ".." are "%2E" and "%2E%2E". Pure functions.
 */
/* Whether the byte stands for itself in a topic name (cursors, patterns and lists scan names
 * with it; '%' is not plain: it starts an escape). */
bool td_name_plain(uint8_t c);
/* Whether name (n bytes, no NUL needed) is a valid, canonical topic name: 0, else -1 with *why
 * (static text) and *at (the byte where the rule breaks). */
int td_name_check(const char *name, size_t n, const char **why, size_t *at);
/* The topic name of a key into out, NUL-terminated: its length, or -1 when it would be longer
 * than TD_TOPIC_NAME_MAX (a key of more than 249 plain bytes, or fewer that need escapes). */
ssize_t td_key_to_name(const void *key, size_t n, char out[TD_TOPIC_NAME_MAX + 1]);
/* The key a topic name holds, into out (cap bytes; a key is never longer than its name): its
 * length, or -1 for a name that is not valid (td_name_check) or a key longer than cap. */
ssize_t td_name_to_key(const char *name, size_t n, uint8_t *out, size_t cap);
/* Byte by byte, without the three whole-name cases, for prefixes (ACL prefixes, patterns):
 * escape writes the escaped bytes and a NUL into out (-1 if cap is too small); unescape reads a
 * canonical escaped string back (-1 with *bad the offending offset). */
ssize_t td_name_escape(const void *bytes, size_t n, char *out, size_t cap);
ssize_t td_name_unescape(const char *name, size_t n, uint8_t *out, size_t cap, size_t *bad);

/* An owned, growable byte buffer. `p` is NULL until the first reserve. */
typedef struct td_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
} td_buf;

void td_buf_init(td_buf *b);
void td_buf_free(td_buf *b);
/* Makes room for `extra` more bytes past len. 0 or -ENOMEM. */
int td_buf_reserve(td_buf *b, size_t extra);
/* The same, growing the buffer to exactly len + extra bytes (no doubling): for a size known in
 * advance, such as a request body. */
int td_buf_reserve_exact(td_buf *b, size_t extra);
int td_buf_append(td_buf *b, const void *p, size_t n);
int td_buf_append_u8(td_buf *b, uint8_t v);
int td_buf_append_be16(td_buf *b, uint16_t v);
int td_buf_append_be32(td_buf *b, uint32_t v);
int td_buf_append_be64(td_buf *b, uint64_t v);
/* Appends a Kafka zigzag varint / varlong. */
int td_buf_append_varint(td_buf *b, int32_t v);
int td_buf_append_varlong(td_buf *b, int64_t v);
/* Appends an unsigned varint (Kafka's "unsigned varint", used by flexible versions). */
int td_buf_append_uvarint(td_buf *b, uint64_t v);

/* Base64 (RFC 4648, standard alphabet). Encoding appends (padded) and keeps a NUL after the
 * text, not counted in len. Decoding appends the bytes; padding is optional; anything else
 * than the alphabet, a wrong length or non-zero trailing bits is TD_EINVAL. */
/* Strict UTF-8: no overlong forms, surrogates or code points above U+10FFFF (utf8.c). */
bool td_utf8_valid(const uint8_t *p, size_t n);
int td_base64_encode(td_buf *out, const void *data, size_t n);
int td_base64_decode(td_buf *out, const char *s, size_t n);
/* base64url without padding (RFC 4648 section 5) of n bytes into out, NUL-terminated: out
 * holds (4 * n + 2) / 3 + 1 bytes. */
void td_base64url(const void *data, size_t n, char *out);
static inline void td_buf_reset(td_buf *b)
{
    b->len = 0;
}
static inline td_slice td_buf_slice(const td_buf *b)
{
    return td_slice_make(b->p, b->len);
}

/* Big-endian loads and stores on raw memory (no alignment needed). */
static inline uint16_t td_load_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t td_load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t td_load_be64(const uint8_t *p)
{
    return (uint64_t)td_load_be32(p) << 32 | td_load_be32(p + 4);
}
static inline void td_store_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void td_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void td_store_be64(uint8_t *p, uint64_t v)
{
    td_store_be32(p, (uint32_t)(v >> 32));
    td_store_be32(p + 4, (uint32_t)v);
}

/* ---------------------------------------------------------------------------------------------
 * Arena: a bump allocator for the decoded temporaries of one request, freed all at once.
 * Allocations are 8-byte aligned; td_arena_alloc returns NULL only when malloc fails.
 * An arena is never copied or moved while its allocations are in use: the first ones are inside
 * the struct (inline_buf).
 */
typedef struct td_arena_block td_arena_block;
typedef struct td_arena {
    td_arena_block *head;
    uint8_t inline_buf[2048]; /* the first allocations need no malloc */
    size_t inline_used;
    size_t total; /* bytes handed out, for limits */
} td_arena;

void td_arena_init(td_arena *a);
void *td_arena_alloc(td_arena *a, size_t n);
void *td_arena_calloc(td_arena *a, size_t count, size_t size);
/* Copies n bytes and a terminating NUL. */
char *td_arena_strndup(td_arena *a, const char *s, size_t n);
/* Copies a NUL-terminated string; NULL for NULL (and when malloc fails). */
char *td_arena_strdup(td_arena *a, const char *s);
/* Copies n bytes; NULL when n is 0 (and when malloc fails). */
void *td_arena_memdup(td_arena *a, const void *p, size_t n);
/* Frees every block; the arena can be reused after td_arena_init. */
void td_arena_free(td_arena *a);

/* ---------------------------------------------------------------------------------------------
 * Varints (Kafka's encodings, protobuf-compatible): unsigned LEB128, and zigzag for signed.
 * Decoders return the number of bytes consumed (> 0), TD_EAGAIN if the input ends inside the
 * varint, or TD_EPROTO if it is longer than its type allows (5 bytes for 32-bit, 10 for 64).
 */
int td_uvarint_decode(const uint8_t *p, size_t n, uint64_t *out);
int td_uvarint32_decode(const uint8_t *p, size_t n, uint32_t *out);
int td_varint_decode(const uint8_t *p, size_t n, int32_t *out);  /* zigzag 32 */
int td_varlong_decode(const uint8_t *p, size_t n, int64_t *out); /* zigzag 64 */
/* Encoders write into p (room for 10 bytes is always enough) and return the length. */
size_t td_uvarint_encode(uint8_t *p, uint64_t v);
size_t td_varint_encode(uint8_t *p, int32_t v);
size_t td_varlong_encode(uint8_t *p, int64_t v);
size_t td_varint_size(int32_t v);
size_t td_varlong_size(int64_t v);
size_t td_uvarint_size(uint64_t v);

/* ---------------------------------------------------------------------------------------------
 * Checksums and hashes
 */
/* CRC32C (Castagnoli), as Kafka's record batch uses it. `crc` is the running value: start
 * with 0. Uses the SSE4.2 instruction when the CPU has it. */
uint32_t td_crc32c(uint32_t crc, const void *p, size_t n);
/* The table-driven fallback, always available (tests compare both). */
uint32_t td_crc32c_sw(uint32_t crc, const void *p, size_t n);
/* 1 if td_crc32c uses the hardware instruction. */
int td_crc32c_hw_available(void);

/* Kafka's Utils.murmur2 (seed 0x9747b28c), as a signed 32-bit result like Java's. */
int32_t td_murmur2(const void *key, size_t n);

/* The 128-bit digest of a record key (XXH3-128, big-endian high then low half): what the log
 * cleaner and the key index of compacted topics remember instead of the key (digest.c). */
#define TD_KEY_DIGEST_LEN 16
void td_key_digest(const void *key, size_t n, uint8_t out[TD_KEY_DIGEST_LEN]);
/* The digest of an event tag (docs/event-sourcing.md#tags), in the key index beside the keys':
 * XXH3-128 with another seed, so that a tag and a key of the same bytes differ. */
void td_tag_digest(const void *tag, size_t n, uint8_t out[TD_KEY_DIGEST_LEN]);

/* A 64-bit hash for tables and orders (FNV-1a's step, with the basis 1469598103934665603).
 * Queue groups save these hashes of event keys: the function must never change. */
uint64_t td_hash64(const void *p, size_t n);

/* ---------------------------------------------------------------------------------------------
 * JSON text
 */
/* Rewrites every real number in the JSON text s[0..n) (a token with '.', 'e' or 'E' outside
 * strings; integers are exact already) as the shortest text that reads back as the same double:
 * 0.1 where jansson's "%.17g" wrote 0.10000000000000001, as JavaScript and Python print it.
 * In place; returns the new length (never more than n; the text is NUL-terminated again when
 * it got shorter). Pure: any input is safe, and what is not a real is copied unchanged. */
size_t td_json_shorten_reals(char *s, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Errors
 */
/* The parsers' "need more input": the input ends inside an item, and more bytes may complete
 * it. Internal, so not in tidings.h's list (whose offset 1 it keeps): every layer turns it into
 * a wait for bytes or into its own error before anything reaches a caller of the public API. */
#define TD_EAGAIN (-1001)

/* Records the calling thread's last error detail (see td_last_error) and returns rc, so a
 * failing path can be written `return td_fail(TD_ENAME, "topic name ... %s", name);`. */
int td_fail(int rc, const char *fmt, ...) TD_PRINTF(2, 3);
/* Clears the calling thread's last error detail. */
void td_error_clear(void);

/* ---------------------------------------------------------------------------------------------
 * Logging: one line per event, "time level subsystem: message key=value ...", to stderr.
 */
enum td_log_level { TD_LOG_DEBUG = 0, TD_LOG_INFO, TD_LOG_WARN, TD_LOG_ERROR, TD_LOG_OFF };

void td_log_set_level(int level);
int td_log_get_level(void);
/* Parses "debug", "info", "warn", "error", "off"; -1 if unknown. */
int td_log_level_parse(const char *s);
/* Redirects log lines to a callback (tests capture them); NULL restores stderr. */
typedef void (*td_log_sink)(int level, const char *line, void *arg);
void td_log_set_sink(td_log_sink sink, void *arg);
void td_log(int level, const char *subsystem, const char *fmt, ...) TD_PRINTF(3, 4);
/*
 * Rate limit of repeated lines (info and above): each call site (format string) writes at most
 * `burst` lines per `interval_ms`; the rest are counted and summarized in one line ("N more
 * lines like ... were suppressed") once the interval is over. burst 0 turns the limit off.
 */
#define TD_LOG_RATE_BURST 10
#define TD_LOG_RATE_INTERVAL_MS 5000
void td_log_set_rate_limit(int burst, int64_t interval_ms);
/* Writes the summaries of suppressed lines now (at shutdown, and from a periodic timer, so that
 * a burst that ends is still reported). */
void td_log_flush_suppressed(void);

#define TD_DEBUG(sub, ...)                                                                         \
    do {                                                                                           \
        if (td_log_get_level() <= TD_LOG_DEBUG)                                                    \
            td_log(TD_LOG_DEBUG, sub, __VA_ARGS__);                                                \
    } while (0)
#define TD_INFO(sub, ...) td_log(TD_LOG_INFO, sub, __VA_ARGS__)
#define TD_WARN(sub, ...) td_log(TD_LOG_WARN, sub, __VA_ARGS__)
#define TD_ERROR(sub, ...) td_log(TD_LOG_ERROR, sub, __VA_ARGS__)

/* ---------------------------------------------------------------------------------------------
 * Clocks
 */
/* Monotonic time in nanoseconds / milliseconds (CLOCK_MONOTONIC). */
int64_t td_mono_ns(void);
int64_t td_mono_ms(void);
/* Wall-clock time in milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t td_wall_ms(void);
/* The time `ns` nanoseconds from now on `clock`, as pthread_cond_timedwait takes it (its
 * condition variable's clock: CLOCK_REALTIME unless set otherwise). ns < 0 counts as 0. */
struct timespec td_deadline_ns(clockid_t clock, int64_t ns);

/* ---------------------------------------------------------------------------------------------
 * Parallel work (pool.c): a fork-join pool of worker threads for CPU-bound work that one
 * caller's thread would otherwise do alone, such as validating the records of a batch.
 */
typedef struct td_pool td_pool;
/* Runs items [begin, end) of a job. Called on the caller's thread and on the pool's threads at
 * once, each with ranges of its own. */
typedef void (*td_pool_fn)(void *arg, size_t begin, size_t end);

/* A pool of nthreads workers (created on the first job that uses them); NULL when nthreads
 * <= 0 (or out of memory): td_pool_run then runs every job on its caller. */
td_pool *td_pool_new(int nthreads);
/* Stops and joins the workers (none may be in td_pool_run) and frees the pool; NULL is
 * accepted. */
void td_pool_free(td_pool *p);
/* The workers the pool was made with (0 for NULL). */
int td_pool_threads(const td_pool *p);
/* Runs fn over items [0, total) in ranges of at most chunk items, on the caller's thread and the
 * pool's, and returns when all are done (what they wrote is then visible to the caller). Runs
 * the whole job on the caller, as one range, when p is NULL, total <= chunk, or another
 * caller's job holds the pool (it never waits for another job). */
void td_pool_run(td_pool *p, size_t total, size_t chunk, td_pool_fn fn, void *arg);

/* ---------------------------------------------------------------------------------------------
 * Stream IDs (docs/redis.md#stream-ids): the (ms, seq) pairs that name the records of a
 * partition read as a Redis stream. Storage assigns them (storage.h), the broker's Redis
 * consumer groups keep them, and the Redis protocol parses and prints them; this value type is
 * here, below all three.
 */
typedef struct td_sid {
    uint64_t ms;
    uint64_t seq;
} td_sid;

/* -1, 0 or 1 as a is below, equal to or above b. */
static inline int td_sid_cmp(td_sid a, td_sid b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    return a.seq < b.seq ? -1 : a.seq > b.seq;
}

/* The smallest ID above *id, into *id; false when *id is the largest. */
static inline bool td_sid_next(td_sid *id)
{
    if (id->seq < UINT64_MAX) {
        id->seq++;
        return true;
    }
    if (id->ms == UINT64_MAX)
        return false;
    id->ms++;
    id->seq = 0;
    return true;
}

/* An entity stream's version (include/tidings.h, TD_VERSION_*) as text: the offset, or the name
 * of a special value ("no_stream", "exists", "any"); buf holds the offset's digits. */
const char *td_version_text(int64_t v, char *buf, size_t n);

/* ---------------------------------------------------------------------------------------------
 * W3C Trace Context (trace.c, docs/tracing.md): the `traceparent` header's span context, pure
 * functions over bytes, shared by the listeners that take it from requests, the engine that
 * injects it and links dead letters and redrives to it, and whatever indexes or exports spans.
 */
#define TD_TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define TD_TRACESTATE_MAX 512 /* the most bytes of a tracestate carried (W3C: at least 512) */
#define TD_TRACE_SAMPLED 0x01 /* trace-flags: the sampled bit */

typedef struct td_trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8]; /* the traceparent's parent-id: the span that the event belongs to */
    uint8_t flags;
} td_trace_ctx;

/* Parses a traceparent value (n bytes, no NUL needed) as W3C Trace Context level 1 says: version
 * 00 is exactly 55 bytes of lowercase hex and dashes; a later version (not ff) at least 55, the
 * rest after a dash, read as 00; trace-id and parent-id not all zero. 0 and *out filled, or -1
 * (*out untouched) for a value that is not valid, which a receiver ignores. */
int td_traceparent_parse(const void *p, size_t n, td_trace_ctx *out);
/* Writes c as a version 00 traceparent, 55 bytes and a NUL; returns TD_TRACEPARENT_LEN. */
size_t td_traceparent_format(const td_trace_ctx *c, char out[TD_TRACEPARENT_LEN + 1]);
/* Whether a tracestate value is one a receiver carries on: 1 to TD_TRACESTATE_MAX bytes of
 * printable ASCII (with spaces and tabs), at most 32 list-members. */
bool td_tracestate_valid(const void *p, size_t n);
/* n random bytes, not all zero (xoshiro256** per thread, seeded from getrandom): the ids of
 * traces and spans, and other ids that must not repeat (an exporter's instance id). */
void td_random_id(uint8_t *p, size_t n);
/* A new trace: random trace-id and span-id (never all zero), with flags. */
void td_trace_new_root(td_trace_ctx *c, uint8_t flags);
/* A child span of parent: its trace-id and flags, a new random span-id (not the parent's). */
void td_trace_new_span(const td_trace_ctx *parent, td_trace_ctx *child);
/* The first header of hs[0..n) named `traceparent` (exact, as HTTP/2 and Kafka clients write it):
 * 1 and *out when it is valid, 0 when there is none, -1 when it is not valid. */
int td_trace_find(const td_header *hs, size_t n, td_trace_ctx *out);
/* Parses a trace-id as a traceparent writes it (32 lowercase hex digits, not all zero; n bytes,
 * no NUL needed) into out: 0, or -1 for anything else. */
int td_trace_id_parse(const void *p, size_t n, uint8_t out[16]);
/* Whether name (n bytes) is `traceparent` or `tracestate`: the names reserved for Trace
 * Context headers. */
bool td_trace_header_name(const void *name, size_t n);

#endif /* TD_BASE_H */
