/*
 * sse.c: the event-stream reader. Lines end with CRLF, LF or CR; a blank line dispatches the
 * event; lines starting with ':' are comments (the broker's heartbeats); the fields are event,
 * data, id and retry (ignored here), and one space after the colon is not part of the value.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/sse.h"

void sse_init(sse_reader *r)
{
    memset(r, 0, sizeof(*r));
}

void sse_free(sse_reader *r)
{
    free(r->line);
    free(r->data);
    free(r->id);
    memset(r, 0, sizeof(*r));
}

void sse_restart(sse_reader *r)
{
    r->n = 0;
    r->dn = 0;
    r->has_data = false;
    r->event[0] = 0;
    r->cr = false;
    r->started = false;
}

static bool grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    if (need > SSE_MAX_LINE + 2)
        return false;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *q = realloc(*p, c);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

/* A blank line: the event, if it has data. */
static int dispatch(sse_reader *r, sse_event_fn fn, void *arg)
{
    int rc = 0;
    if (r->has_data) {
        r->data[r->dn] = 0;
        rc =
            fn(arg, r->event[0] ? r->event : "message", r->id ? r->id : "", r->data, r->dn) ? 0 : 1;
    }
    r->dn = 0;
    r->has_data = false;
    r->event[0] = 0;
    return rc;
}

static int field(sse_reader *r, const char *line, size_t n, sse_event_fn fn, void *arg)
{
    if (!r->started) {
        r->started = true;
        if (n >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) {
            line += 3;
            n -= 3;
        }
    }
    if (n == 0)
        return dispatch(r, fn, arg);
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', n);
    size_t fn_len = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    size_t vn = (size_t)(line + n - v);
    if (vn && v[0] == ' ') {
        v++;
        vn--;
    }
    if (fn_len == 4 && !memcmp(line, "data", 4)) {
        size_t need = r->dn + (r->has_data ? 1 : 0) + vn + 1;
        if (!grow(&r->data, &r->dcap, need))
            return -1;
        if (r->has_data)
            r->data[r->dn++] = '\n';
        memcpy(r->data + r->dn, v, vn);
        r->dn += vn;
        r->has_data = true;
    } else if (fn_len == 5 && !memcmp(line, "event", 5)) {
        size_t k = vn < sizeof(r->event) - 1 ? vn : sizeof(r->event) - 1;
        memcpy(r->event, v, k);
        r->event[k] = 0;
    } else if (fn_len == 2 && !memcmp(line, "id", 2) && !memchr(v, 0, vn)) {
        char *id = malloc(vn + 1);
        if (!id)
            return -1;
        memcpy(id, v, vn);
        id[vn] = 0;
        free(r->id);
        r->id = id;
    }
    return 0;
}

int sse_feed(sse_reader *r, const char *p, size_t n, sse_event_fn fn, void *arg)
{
    size_t i = 0;
    while (i < n) {
        if (r->cr && p[i] == '\n') { /* the LF of a CRLF */
            r->cr = false;
            i++;
            continue;
        }
        r->cr = false;
        /* The end of this line, or of the bytes given. */
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r')
            j++;
        if (r->n + (j - i) > SSE_MAX_LINE)
            return -1;
        if (j == n) { /* the line goes on in the next piece */
            if (!grow(&r->line, &r->cap, r->n + (j - i) + 1))
                return -1;
            memcpy(r->line + r->n, p + i, j - i);
            r->n += j - i;
            break;
        }
        int rc;
        if (r->n) {
            if (!grow(&r->line, &r->cap, r->n + (j - i) + 1))
                return -1;
            memcpy(r->line + r->n, p + i, j - i);
            r->n += j - i;
            rc = field(r, r->line, r->n, fn, arg);
            r->n = 0;
        } else {
            rc = field(r, p + i, j - i, fn, arg);
        }
        r->cr = p[j] == '\r';
        i = j + 1;
        if (rc)
            return rc;
    }
    return 0;
}
