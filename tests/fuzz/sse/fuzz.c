/* libFuzzer target: the command's Server-Sent Events reader (cli/sse.c). The stream is read in
 * one piece and again in pieces whose sizes come from the input's first byte; both readings must
 * give the same events, each event's data must be NUL-terminated and no longer than the input,
 * and nothing may leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct digest {
    uint64_t h;
    size_t events, limit;
} digest;

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h * 31 + n;
}

static bool on_event(void *arg, const char *event, const char *id, const char *d, size_t n)
{
    digest *g = arg;
    if (d[n] != 0 || n > g->limit || strlen(event) >= 64)
        abort();
    g->h = mix(g->h, event, strlen(event));
    g->h = mix(g->h, id, strlen(id));
    g->h = mix(g->h, d, n);
    g->events++;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)(data[0] % 16) + 1;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    digest whole = {.h = 1469598103934665603ull, .limit = n};
    digest parts = whole;
    sse_reader a, b;
    sse_init(&a);
    sse_init(&b);
    int ra = sse_feed(&a, s, n, on_event, &whole);
    int rb = 0;
    for (size_t i = 0; i < n && rb == 0; i += step)
        rb = sse_feed(&b, s + i, n - i < step ? n - i : step, on_event, &parts);
    if (ra != rb || whole.h != parts.h || whole.events != parts.events)
        abort();
    if ((a.id == NULL) != (b.id == NULL) || (a.id && strcmp(a.id, b.id) != 0))
        abort();
    sse_free(&a);
    sse_free(&b);
    return 0;
}
