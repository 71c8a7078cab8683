/*
 * queue_circuit.c: the circuit breaker of queue groups (queue_int.h; docs/queues.md#circuit-
 * breaker), as Resilience4j's and Polly's breakers work, but in the broker: the consumers'
 * outcomes are its calls.
 *
 *   CLOSED     deliveries as usual; each ack, nack and ack timeout is counted in a sliding
 *              window of circuit.window.ms (ten buckets). Once the window holds at least
 *              circuit.min.calls outcomes and circuit.failure.rate percent of them failed:
 *   OPEN       no delivery for circuit.open.ms; events in flight that fail meanwhile are the
 *              outage's, so they go back to waiting without counting against max.deliveries
 *              (nothing is dead-lettered because a dependency is down). Then:
 *   HALF_OPEN  circuit.half.open.trials deliveries at most, the trials: when that many are
 *              acked it closes (the window starts empty), at the first failure it opens again.
 *
 * Every transition to open or closed is a health event (queue.circuit_opened/closed on
 * $sys.queues) and a log line. Everything runs under the queues' mutex; the state is in memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "broker/health.h"
#include "broker/queue_int.h"

static int64_t bucket_ms(const qgroup *g)
{
    int64_t b = g->pol.circuit_window_ms / QC_BUCKETS;
    return b > 0 ? b : 1;
}

/* The outcomes and failures in the window that ends now. */
static void window(const qgroup *g, int64_t now, int64_t *calls, int64_t *fails)
{
    int64_t id = now / bucket_ms(g);
    *calls = *fails = 0;
    for (int i = 0; i < QC_BUCKETS; i++) {
        if (g->circuit.bucket_id[i] > id - QC_BUCKETS && g->circuit.bucket_id[i] <= id) {
            *calls += g->circuit.calls[i];
            *fails += g->circuit.fails[i];
        }
    }
}

static void window_clear(qcircuit *c)
{
    memset(c->bucket_id, 0, sizeof(c->bucket_id));
    memset(c->calls, 0, sizeof(c->calls));
    memset(c->fails, 0, sizeof(c->fails));
}

static void go_open(td_queues *q, qgroup *g, int64_t now, const char *why, int64_t calls,
                    int64_t fails)
{
    qcircuit *c = &g->circuit;
    c->state = TD_CIRCUIT_OPEN;
    c->since_ms = now;
    c->open_until = now + g->pol.circuit_open_ms;
    c->opened++;
    c->trials_out = c->trials_ok = 0;
    TD_WARN("queue",
            "queue group %s: circuit opened (%s: %" PRId64 " of %" PRId64
            " outcomes failed); deliveries pause for %" PRId64 " ms",
            g->name, why, fails, calls, g->pol.circuit_open_ms);
    health_field f[] = {HF_STR("group", g->name),
                        HF_STR("reason", why),
                        HF_INT("calls", calls),
                        HF_INT("failures", fails),
                        HF_INT("failure_rate_threshold", g->pol.circuit_failure_rate),
                        HF_INT("open_ms", g->pol.circuit_open_ms)};
    health_emit(q->e, HEALTH_QUEUE_CIRCUIT_OPENED, g->name, f, sizeof(f) / sizeof(f[0]));
    queue_wake(q, c->open_until);
}

static void go_closed(td_queues *q, qgroup *g, int64_t now, const char *why)
{
    qcircuit *c = &g->circuit;
    int64_t opened_at = c->since_ms;
    int32_t trials = c->trials_ok;
    c->state = TD_CIRCUIT_CLOSED;
    c->since_ms = now;
    c->open_until = 0;
    c->trials_out = c->trials_ok = 0;
    window_clear(c);
    TD_INFO("queue", "queue group %s: circuit closed (%s)", g->name, why);
    health_field f[] = {HF_STR("group", g->name), HF_STR("reason", why), HF_INT("trials", trials),
                        HF_INT("not_closed_ms", now - opened_at)};
    health_emit(q->e, HEALTH_QUEUE_CIRCUIT_CLOSED, g->name, f, sizeof(f) / sizeof(f[0]));
    queue_notify(q);
}

void qc_record(td_queues *q, qgroup *g, int64_t now, bool failed)
{
    qcircuit *c = &g->circuit;
    if (g->pol.circuit_failure_rate <= 0)
        return;
    qc_tick(q, g, now);
    if (c->state == TD_CIRCUIT_HALF_OPEN) {
        if (failed) {
            go_open(q, g, now, "a trial delivery failed", c->trials_out, 1);
        } else if (++c->trials_ok >= g->pol.circuit_half_open_trials) {
            go_closed(q, g, now, "the trial deliveries were acked");
        }
        return;
    }
    if (c->state == TD_CIRCUIT_OPEN)
        return; /* outcomes of deliveries made before it opened */
    int64_t id = now / bucket_ms(g);
    int i = (int)(id % QC_BUCKETS);
    if (c->bucket_id[i] != id) {
        c->bucket_id[i] = id;
        c->calls[i] = c->fails[i] = 0;
    }
    c->calls[i]++;
    c->fails[i] += failed;
    if (!failed)
        return;
    int64_t calls, fails;
    window(g, now, &calls, &fails);
    if (calls >= g->pol.circuit_min_calls && fails * 100 >= calls * g->pol.circuit_failure_rate)
        go_open(q, g, now, "failure rate", calls, fails);
}

bool qc_forgives(const qgroup *g)
{
    return g->circuit.state != TD_CIRCUIT_CLOSED;
}

int64_t qc_tick(td_queues *q, qgroup *g, int64_t now)
{
    qcircuit *c = &g->circuit;
    if (c->state != TD_CIRCUIT_CLOSED && g->pol.circuit_failure_rate <= 0) {
        go_closed(q, g, now, "the policy has no circuit breaker any more");
        return INT64_MAX;
    }
    if (c->state != TD_CIRCUIT_OPEN)
        return INT64_MAX;
    if (now < c->open_until)
        return c->open_until;
    c->state = TD_CIRCUIT_HALF_OPEN; /* since_ms stays when it first opened */
    c->trials_out = c->trials_ok = 0;
    TD_INFO("queue", "queue group %s: circuit half-open: %" PRId32 " trial deliveries", g->name,
            g->pol.circuit_half_open_trials);
    queue_notify(q);
    return INT64_MAX;
}

size_t qc_allow(const qgroup *g, size_t want)
{
    const qcircuit *c = &g->circuit;
    if (c->state == TD_CIRCUIT_OPEN)
        return 0;
    if (c->state == TD_CIRCUIT_HALF_OPEN) {
        int64_t left = (int64_t)g->pol.circuit_half_open_trials - c->trials_out;
        return left <= 0 ? 0 : (size_t)left < want ? (size_t)left : want;
    }
    return want;
}

void qc_delivered(qgroup *g, size_t n)
{
    if (g->circuit.state == TD_CIRCUIT_HALF_OPEN)
        g->circuit.trials_out += (int32_t)n;
}

void qc_describe(const qgroup *g, int64_t now, td_queue_info *out)
{
    const qcircuit *c = &g->circuit;
    out->circuit_state = c->state;
    window(g, now, &out->circuit_calls, &out->circuit_failures);
    out->circuit_since_ms = c->state == TD_CIRCUIT_CLOSED ? -1 : c->since_ms;
    out->circuit_open_until_ms = c->state == TD_CIRCUIT_OPEN ? c->open_until : -1;
    out->circuit_opened = c->opened;
}
