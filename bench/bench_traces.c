/*
 * bench_traces.c: the trace index (trace.index; docs/tracing.md "Trace index") measured against
 * its baseline in the same run, through the embedded API (bench/traces.sh runs it).
 *
 *   bench_traces DIR
 *
 * Appends. BENCH_TRACES_APPENDS (default 2 000 000) events, each with a traceparent (a trace of
 * 10 events, a span of its own) and every third an x-causation-span-id, appended to two topics,
 * trace.index on and off, one batch of BENCH_TRACES_BATCH (100) events per td_produce,
 * fsync=none, alternating chunks of 100 000 events between them so that both see the same
 * machine: "append_on <events/s>", "append_off <events/s>", "append_cost <1 - on/off>".
 * Then a read: "trace_get <ms>", the mean of td_trace_get on BENCH_TRACES_SAMPLES (100) traces
 * (10 events each) of the "on" topic.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "tidings.h"

/* Event i: trace i / 10, span i + 1; a parent span on every third. */
static void produce_range(td_engine *e, const char *topic, long from, long to, long batch)
{
    td_event ev[1000];
    td_header hs[1000][2];
    char tps[1000][64], ps[1000][20], vals[1000][40];
    for (long i = from; i < to;) {
        long n = 0;
        for (; n < batch && i < to; n++, i++) {
            snprintf(tps[n], sizeof(tps[n]), "00-%016lx%016lx-%016lx-01", 0x7777UL, i / 10 + 1,
                     i + 1);
            snprintf(ps[n], sizeof(ps[n]), "%016lx", i);
            int vl = snprintf(vals[n], sizeof(vals[n]), "{\"seq\":%ld,\"amount\":%ld}", i, i % 997);
            hs[n][0] = (td_header){"traceparent", 11, tps[n], 55};
            hs[n][1] = (td_header){"x-causation-span-id", 19, ps[n], 16};
            ev[n] = (td_event){.key = "order",
                               .key_len = 5,
                               .value = vals[n],
                               .value_len = (size_t)vl,
                               .headers = hs[n],
                               .header_count = i % 3 ? 1 : 2,
                               .partition = 0};
        }
        check(td_produce(e, topic, ev, (size_t)n, NULL), "produce");
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_traces DIR\n");
        return 2;
    }
    long appends = env_long("BENCH_TRACES_APPENDS", 2000000), chunk = 100000;
    long batch = env_long("BENCH_TRACES_BATCH", 100),
         samples = env_long("BENCH_TRACES_SAMPLES", 100);
    if (batch < 1 || batch > 1000 || appends < 10 * samples)
        return 2;
    td_set_log_level("warn");
    td_options o;
    td_options_init(&o);
    td_engine *e;
    check(td_engine_open(argv[1], &o, &e), "open");
    const td_config_entry on[] = {{"trace.index", "true"}, {"fsync", "none"}};
    const td_config_entry off[] = {{"fsync", "none"}};
    check(td_topic_create(e, "on", 1, on, 2), "create");
    check(td_topic_create(e, "off", 1, off, 1), "create");
    double t_on = 0, t_off = 0;
    for (long at = 0; at < appends; at += chunk) {
        long to = at + chunk < appends ? at + chunk : appends;
        for (int which = 0; which < 2; which++) {
            bool first_on = (at / chunk) % 2 == 0; /* alternate which goes first */
            bool is_on = which == 0 ? first_on : !first_on;
            double t = now_s();
            produce_range(e, is_on ? "on" : "off", at, to, batch);
            *(is_on ? &t_on : &t_off) += now_s() - t;
        }
    }
    printf("append_on %.0f events/s\nappend_off %.0f events/s\nappend_cost %.1f %%\n",
           (double)appends / t_on, (double)appends / t_off, (1 - t_off / t_on) * 100);
    double t = now_s();
    for (long s = 0; s < samples; s++) {
        uint8_t id[16] = {0};
        unsigned long tr = (unsigned long)((s * 7919) % (appends / 10)) + 1;
        id[6] = 0x77, id[7] = 0x77;
        for (int b = 0; b < 8; b++)
            id[8 + b] = (uint8_t)(tr >> (8 * (7 - b)));
        td_trace_result r;
        check(td_trace_get(e, id, 100, NULL, NULL, &r), "trace");
        if (r.n != 10)
            fprintf(stderr, "trace %lu: %zu events\n", tr, r.n), exit(1);
        td_trace_result_free(&r);
    }
    printf("trace_get %.3f ms\n", (now_s() - t) * 1000 / (double)samples);
    td_engine_close(e);
    return 0;
}
