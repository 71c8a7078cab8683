/*
 * output.c: what the verbs print: events as the HTTP API's JSON (with ?values=string), whichever
 * mode read them, and progress lines on a terminal.
 */
#include <stdarg.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/remote.h"

void cli_json_set_bytes(json_t *o, const char *name, const char *b64_name, const void *p, size_t n)
{
    if (!p) {
        json_object_set_new(o, name, json_null());
        return;
    }
    json_t *j = json_stringn(p, n); /* NULL unless valid UTF-8 */
    if (j) {
        json_object_set_new(o, name, j);
        return;
    }
    char *b = cli_base64(p, n);
    json_object_set_new(o, b64_name, b ? json_string(b) : json_null());
    free(b);
}

json_t *cli_event_json(const char *topic, const td_event *ev)
{
    json_t *o = json_pack("{s:s,s:i,s:I,s:I}", "topic", topic, "partition", ev->partition, "offset",
                          (json_int_t)ev->offset, "timestamp", (json_int_t)ev->timestamp_ms);
    cli_json_set_bytes(o, "key", "key_b64", ev->key, ev->key_len);
    cli_json_set_bytes(o, "value", "value_b64", ev->value, ev->value_len);
    json_object_set_new(o, "headers", cli_headers_json(ev));
    return o;
}

json_t *cli_headers_json(const td_event *ev)
{
    json_t *hs = json_array();
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        json_t *ho = json_object();
        cli_json_set_bytes(ho, "key", "key_b64", h->key, h->key_len);
        cli_json_set_bytes(ho, "value", "value_b64", h->value, h->value_len);
        json_array_append_new(hs, ho);
    }
    return hs;
}

void cli_print_event(const json_t *ev, bool json)
{
    if (json) {
        cli_json_print(ev);
        return;
    }
    json_t *v = json_object_get(ev, "value"), *b = json_object_get(ev, "value_b64");
    if (json_is_string(v)) {
        fwrite(json_string_value(v), 1, json_string_length(v), stdout);
    } else if (json_is_string(b)) {
        size_t n;
        char *bytes = cli_unbase64(json_string_value(b), json_string_length(b), &n);
        if (bytes)
            fwrite(bytes, 1, n, stdout);
        free(bytes);
    }
    fputc('\n', stdout);
}

void cli_bar(char *buf, size_t len, double fraction)
{
    enum { WIDTH = 24 };
    char cells[WIDTH + 1];
    if (fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    int full = (int)(fraction * WIDTH);
    for (int i = 0; i < WIDTH; i++)
        cells[i] = i < full ? '#' : '-';
    cells[WIDTH] = 0;
    snprintf(buf, len, "[%s] %3d%%", cells, (int)(fraction * 100));
}

void cli_progress_line(bool final, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
    va_end(ap);
}

const char *cli_json_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

int64_t cli_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
