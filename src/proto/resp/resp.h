/*
 * resp.h: the Redis protocol codec (RESP2 and RESP3, docs/redis.md): pure functions over
 * buffers, no sockets, no globals; the only allocation is a request's arena.
 *
 * Requests are what Redis servers read: arrays of bulk strings ("*2\r\n$4\r\nPING\r\n...")
 * and inline commands (a line of words, with Redis's quoting rules). Replies are written into a
 * buffer by the resp_w_* functions, in the connection's protocol version: RESP3 types (maps,
 * sets, doubles, booleans, nulls, pushes) turn into their RESP2 forms when the client speaks 2.
 *
 * Why in-tree (docs/redis.md): Debian's hiredis is a client library; its reader parses replies,
 * not a server's requests, and knows no inline commands.
 */
#ifndef TD_PROTO_RESP_H
#define TD_PROTO_RESP_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/base.h"

/* Limits checked before anything is allocated. Redis's own: 1024 * 1024 * 1024 arguments,
 * bulks of 512 MiB, inline lines of 64 KiB; ours are smaller (docs/redis.md). */
typedef struct resp_limits {
    size_t max_args;   /* arguments per command */
    size_t max_bulk;   /* bytes per argument */
    size_t max_inline; /* bytes of an inline command line (and of a "*N" or "$N" line) */
} resp_limits;

/* 1 048 576 arguments, 64 MiB per argument, 64 KiB per inline line. */
void resp_limits_default(resp_limits *l);

typedef struct resp_cmd {
    td_slice *argv; /* argc arguments: into the input (arrays), or the arena (inline) */
    size_t argc;    /* 0: an empty command (an empty line, "*0"): nothing to run */
    size_t len;     /* bytes of input it took */
} resp_cmd;

/*
 * Parses the command at p[0..n). Returns 0 when it is complete (*cmd filled; the next starts
 * at p + cmd->len), TD_EAGAIN when more input is needed, or TD_EPROTO with *why set to Redis's
 * text for the protocol error ("Protocol error: invalid multibulk length", ...): the server
 * answers it and closes the connection, as Redis does. A limit is enforced as soon as the length
 * that breaks it is read, before the bytes arrive.
 */
int resp_parse_command(const uint8_t *p, size_t n, const resp_limits *lim, td_arena *arena,
                       resp_cmd *cmd, const char **why);

/* A decimal integer as Redis's string2ll reads it: an optional '-', digits without leading
 * zeros ("0" alone), nothing else, within long long. */
bool resp_parse_ll(const uint8_t *p, size_t n, long long *out);

/* Redis's glob-style matching (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET): '*', '?', "[a-z]",
 * "[^abc]" and '\' escapes. Iterative, at most pattern length x string length steps. */
bool resp_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase);

/* ---------------------------------------------------------------------------------------------
 * Stream entry fields <-> events (fields.c, docs/redis.md#fields)
 */
#define RESP_FIELDS_CONTENT_TYPE "application/x-redis-fields"

/* Whether fields fv[0..n) (names and values alternating) can be written as a JSON object:
 * every one valid UTF-8, names distinct, at most 256 fields. */
bool resp_fields_json_ok(const td_slice *fv, size_t n);
/* Appends the event value for fields fv[0..n): a JSON object of strings when json (see
 * resp_fields_json_ok), else a RESP array of bulk strings (the event then needs the header
 * content-type: RESP_FIELDS_CONTENT_TYPE). */
int resp_fields_encode(td_buf *out, const td_slice *fv, size_t n, bool json);
/* Splits XADD's fields fv[0..nfv) into the Trace Context ones (docs/tracing.md): a field named
 * `traceparent` or `tracestate` that appears once becomes trace[k] (a header pointing into fv;
 * returns how many, 0 to 2), the others go to rest (nfv slices of room) in order, *nrest of
 * them. */
size_t resp_fields_trace_split(const td_slice *fv, size_t nfv, td_slice *rest, size_t *nrest,
                               td_header trace[2]);
/* XADD's DELAY ms and DELIVERAT ms (tidings' options, docs/redis.md#delayed-delivery): the
 * header tidings-delay-ms or tidings-deliver-at that queue groups read, its value in text.
 * resp_delay_parse takes the option's name (opt) and its argument: NULL when it parsed (d->h
 * set), else the error to reply. The option given twice is an error. */
typedef struct resp_delay {
    td_header h; /* h.key NULL: none given */
    char text[TD_DELAY_TEXT_MAX];
} resp_delay;
const char *resp_delay_parse(td_slice opt, td_slice arg, resp_delay *d);

/* XADD's entity fields (docs/event-sourcing.md#redis): `tidings-key` (the event's key: the
 * entity) and `tidings-expected-version` (the condition on the key's stream: "any",
 * "no_stream", "exists", an offset in decimal, or a stream ID "<ms>-<seq>"). */
#define RESP_ENTITY_KEY "tidings-key"
#define RESP_ENTITY_EXPECT "tidings-expected-version"
typedef struct resp_entity {
    td_slice key;    /* the entity; valid when has_key */
    td_slice expect; /* the condition's text; valid when has_expect */
    bool has_key, has_expect;
    bool by_id;       /* the condition is a stream ID (id), else expected */
    int64_t expected; /* an offset or TD_VERSION_ANY, _NO_STREAM, _EXISTS */
    td_sid id;
} resp_entity;
/* Whether fields fv[0..nfv) name either entity field (a cheap test before the split). */
bool resp_fields_entity_named(const td_slice *fv, size_t nfv);
/* Takes the entity fields out of fv[0..nfv) into *out, the others to rest (nfv slices of room)
 * in order, *nrest of them. 0, or -1 with *why (a sentence for an ERR reply) when one is given
 * twice, the version is malformed, or a version is given without a key. Pure. */
int resp_fields_entity_split(const td_slice *fv, size_t nfv, td_slice *rest, size_t *nrest,
                             resp_entity *out, const char **why);
/* The fields of any event, names and values alternating, as docs/redis.md#fields says: the slices
 * point into the event or the arena. -1 when memory ran out. */
int resp_event_fields(const td_event *ev, td_arena *a, td_slice **out, size_t *n);

/* ---------------------------------------------------------------------------------------------
 * Replies
 */
typedef struct resp_w {
    td_buf *b;
    int proto; /* 2 or 3 */
    bool oom;  /* a write failed for memory: the reply is incomplete, close the connection */
} resp_w;

void resp_w_simple(resp_w *w, const char *s);       /* +OK */
void resp_w_error(resp_w *w, const char *s);        /* -ERR ... (s has the prefix) */
void resp_w_errorf(resp_w *w, const char *fmt, ...) /* the same, formatted */
    __attribute__((format(printf, 2, 3)));
void resp_w_int(resp_w *w, int64_t v);                    /* :42 */
void resp_w_bulk(resp_w *w, const void *p, size_t n);     /* $3 abc */
void resp_w_str(resp_w *w, const char *s);                /* a bulk of a C string */
void resp_w_bulk_int(resp_w *w, int64_t v);               /* a bulk of a number's text */
void resp_w_null(resp_w *w);                              /* RESP3 _, RESP2 $-1 */
void resp_w_null_array(resp_w *w);                        /* RESP3 _, RESP2 *-1 */
void resp_w_array(resp_w *w, size_t n);                   /* *n */
void resp_w_map(resp_w *w, size_t pairs);                 /* RESP3 %n, RESP2 *2n */
void resp_w_set(resp_w *w, size_t n);                     /* RESP3 ~n, RESP2 *n */
void resp_w_push(resp_w *w, size_t n);                    /* RESP3 >n, RESP2 *n */
void resp_w_double(resp_w *w, double v);                  /* RESP3 ,1.5, RESP2 bulk */
void resp_w_bool(resp_w *w, bool v);                      /* RESP3 #t, RESP2 :1 */
void resp_w_verbatim(resp_w *w, const void *p, size_t n); /* RESP3 =n txt:..., RESP2 bulk */

#endif /* TD_PROTO_RESP_H */
