/*
 * sse.h: a Server-Sent Events reader (the event-stream format of the HTML standard), fed the
 * bytes of a stream in pieces of any size. Pure: no I/O; unit-tested on every split of a stream
 * and fuzzed.
 */
#ifndef TD_CLI_SSE_H
#define TD_CLI_SSE_H

#include <stdbool.h>
#include <stddef.h>

#define SSE_MAX_LINE (32u << 20) /* a longer line is refused rather than buffered */

typedef struct sse_reader {
    char *line; /* the unfinished line */
    size_t n, cap;
    char *data; /* the event's data lines, joined by '\n' */
    size_t dn, dcap;
    bool has_data;
    char event[64]; /* the event type; "" is "message" */
    char *id;       /* the last event id (kept across events, as the standard says) */
    bool cr;        /* the last byte was CR: a LF right after it ends no second line */
    bool started;   /* past a leading byte order mark */
} sse_reader;

/* One event: its type ("message" when none was given), the last event id ("" for none), and
 * its data (NUL-terminated, n bytes). Returns false to stop reading. */
typedef bool (*sse_event_fn)(void *arg, const char *event, const char *id, const char *data,
                             size_t n);

void sse_init(sse_reader *r);
void sse_free(sse_reader *r);
/* A new connection: the unfinished line and event are dropped; the last event id is kept. */
void sse_restart(sse_reader *r);
/* Reads n more bytes of the stream, calling fn for every event they complete. 0 when all were
 * read, 1 when fn asked to stop, -1 on a line over SSE_MAX_LINE or when out of memory. */
int sse_feed(sse_reader *r, const char *p, size_t n, sse_event_fn fn, void *arg);

#endif /* TD_CLI_SSE_H */
