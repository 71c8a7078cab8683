/*
 * queue_json.c: a queue group's description as the JSON object of the HTTP API
 * (docs/http-api.md, GET /v1/queues/{group}), written once for every place that shows it: the
 * HTTP routes (proto/http/queues.c) and the command's local mode (cli/cmd_queue.c), which must
 * print what a broker would answer. It is text rather than a jansson object because the public
 * API, which the command uses, does not depend on jansson.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "tidings.h"

/* Appends printf-style text; false when out of memory. */
static bool add(td_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool add(td_buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < sizeof(tmp) && td_buf_append(b, tmp, (size_t)n) == 0;
}

/* A JSON string. Names follow the rules of topic names, so escaping is for safety only. */
static bool add_str(td_buf *b, const char *s)
{
    bool ok = td_buf_append_u8(b, '"') == 0;
    for (; ok && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            ok = add(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            ok = add(b, "\\u%04x", c); /* names are ASCII: a byte of another text is shown */
        else
            ok = td_buf_append_u8(b, c) == 0;
    }
    return ok && td_buf_append_u8(b, '"') == 0;
}

/* A real, as jansson writes one ("%.17g", with ".0" when that looks like an integer); the
 * caller shortens it (td_json_shorten_reals). */
static bool add_real(td_buf *b, double v)
{
    char t[64];
    snprintf(t, sizeof(t), "%.17g", v);
    if (!strpbrk(t, ".eE"))
        strcat(t, ".0");
    return td_buf_append(b, t, strlen(t)) == 0;
}

/* "circuit": the breaker's state now, and the object's closing brace. */
static bool add_circuit(td_buf *b, const td_queue_info *q)
{
    static const char *const names[] = {"closed", "open", "half_open"};
    int s = q->circuit_state >= 0 && q->circuit_state <= 2 ? q->circuit_state : 0;
    bool ok = add(b, ",\"circuit\":{\"state\":\"%s\"", names[s]) &&
              add(b, ",\"calls\":%lld", (long long)q->circuit_calls) &&
              add(b, ",\"failures\":%lld", (long long)q->circuit_failures) &&
              add(b, ",\"opened\":%lld", (long long)q->circuit_opened);
    ok = ok &&
         (q->circuit_since_ms < 0 ? add(b, ",\"since_ms\":null")
                                  : add(b, ",\"since_ms\":%lld", (long long)q->circuit_since_ms));
    ok = ok && (q->circuit_open_until_ms < 0
                    ? add(b, ",\"open_until_ms\":null")
                    : add(b, ",\"open_until_ms\":%lld", (long long)q->circuit_open_until_ms));
    return ok && add(b, "}}");
}

char *td_queue_info_json(const td_queue_info *q)
{
    const td_queue_policy *p = &q->policy;
    td_buf b;
    td_buf_init(&b);
    bool ok = add(&b, "{\"group\":") && add_str(&b, q->group) && add(&b, ",\"topic\":") &&
              add_str(&b, q->topic) && add(&b, ",\"created_ms\":%lld", (long long)q->created_ms) &&
              add(&b, ",\"depth\":%lld", (long long)q->depth) &&
              add(&b, ",\"in_flight\":%lld", (long long)q->in_flight) &&
              add(&b, ",\"waiting\":%lld", (long long)q->waiting) &&
              add(&b, ",\"held\":%lld", (long long)q->held) &&
              add(&b, ",\"scheduled\":%lld", (long long)q->scheduled) &&
              add(&b, ",\"consumers\":%d", (int)q->consumers) &&
              add(&b, ",\"acked\":%lld", (long long)q->acked) &&
              add(&b, ",\"redelivered\":%lld", (long long)q->redelivered) &&
              add(&b, ",\"dead_lettered\":%lld", (long long)q->dead_lettered);
    if (ok && q->next_scheduled_ms < 0)
        ok = add(&b, ",\"next_scheduled_ms\":null");
    else if (ok)
        ok = add(&b, ",\"next_scheduled_ms\":%lld", (long long)q->next_scheduled_ms);
    if (ok && q->oldest_unacked_ms < 0)
        ok = add(&b, ",\"oldest_unacked_ms\":null");
    else if (ok)
        ok = add(&b, ",\"oldest_unacked_ms\":%lld", (long long)q->oldest_unacked_ms);
    ok = ok && add(&b, ",\"topic_count\":%d", (int)q->topics) &&
         add(&b, ",\"policy\":{\"ack_timeout_ms\":%lld", (long long)p->ack_timeout_ms) &&
         add(&b, ",\"max_deliveries\":%d", (int)p->max_deliveries) &&
         add(&b, ",\"backoff\":{\"initial_ms\":%lld", (long long)p->backoff_initial_ms) &&
         add(&b, ",\"multiplier\":") && add_real(&b, p->backoff_multiplier) &&
         add(&b, ",\"max_ms\":%lld", (long long)p->backoff_max_ms) && add(&b, ",\"jitter\":") &&
         add_real(&b, p->backoff_jitter) && add(&b, "},\"dead_letter_topic\":") &&
         add_str(&b, q->dead_letter_topic) &&
         add(&b, ",\"ordering\":\"%s\"", p->ordering == TD_QUEUE_BY_KEY ? "key" : "none") &&
         add(&b, ",\"max_in_flight\":%d", (int)p->max_in_flight) &&
         add(&b, ",\"max_in_flight_per_consumer\":%d", (int)p->max_in_flight_per_consumer) &&
         add(&b, ",\"start\":\"%s\"", p->start_latest ? "latest" : "earliest") &&
         (p->forward_to[0] ? add(&b, ",\"forward_to\":") && add_str(&b, p->forward_to)
                           : add(&b, ",\"forward_to\":null")) &&
         add(&b, ",\"circuit_breaker\":{\"failure_rate\":%d", (int)p->circuit_failure_rate) &&
         add(&b, ",\"window_ms\":%lld", (long long)p->circuit_window_ms) &&
         add(&b, ",\"min_calls\":%d", (int)p->circuit_min_calls) &&
         add(&b, ",\"open_ms\":%lld", (long long)p->circuit_open_ms) &&
         add(&b, ",\"half_open_trials\":%d}}", (int)p->circuit_half_open_trials) &&
         add_circuit(&b, q) && td_buf_append_u8(&b, 0) == 0;
    if (!ok) {
        td_buf_free(&b);
        return NULL;
    }
    td_json_shorten_reals((char *)b.p, b.len - 1);
    return (char *)b.p;
}
