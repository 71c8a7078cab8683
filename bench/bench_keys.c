/*
 * bench_keys.c: the key index (key.index; docs/event-sourcing.md) measured against its
 * baselines in the same run, through the embedded API (bench/keys.sh runs it).
 *
 *   bench_keys DIR
 *
 * 1. Reads. Writes BENCH_KEYS_EVENTS (default 10 000 000) events of BENCH_KEYS_ENTITIES keys
 *    (default 100 000: 100 events each, interleaved as commands of many entities are) to one
 *    partition of a key.index topic, then reads the 100 events of BENCH_KEYS_SAMPLES (20)
 *    entities, each by
 *      key    td_iter_open_key: the key index, then the batches holding the events;
 *      scan   td_iter_open from the start, keeping the events with the key (what reading one
 *             entity costs without the index: the whole partition);
 *    "key <ms per entity>", "scan <ms per entity>", "read_ratio <scan / key>" (the issue's
 *    target: >= 100). The scan is timed on BENCH_KEYS_SCANS (2) entities (it reads everything).
 * 2. Appends. The same events appended to two topics, key.index on and off, one batch of
 *    BENCH_KEYS_BATCH (100) events per td_produce, fsync=none (BENCH_KEYS_FSYNC: another
 *    policy), alternating chunks of 100 000
 *    events between them so that both see the same machine: "append_on <events/s>",
 *    "append_off <events/s>", "append_cost <1 - on/off>" (the target: <= 10 %), and
 *    "append_cpu_cost <1 - cpu_off/cpu_on>": the same for the CPU time of every thread of the
 *    process, the indexer thread's with it (the work the index costs, wherever it runs; a
 *    chunk's indexing may spill into the next chunk by up to the indexer's lag bound).
 * Pages stay cached (the log was just written): the reads compare work, not disk seeks, which
 * would favour the index more.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "tidings.h"

/* Event i: key "entity-<i % entities>", a small JSON value. */
static void produce_range(td_engine *e, const char *topic, long from, long to, long entities,
                          long batch)
{
    td_event ev[1000];
    char keys[1000][24], vals[1000][40];
    for (long i = from; i < to;) {
        long n = 0;
        for (; n < batch && i < to; n++, i++) {
            int kl = snprintf(keys[n], sizeof(keys[n]), "entity-%ld", i % entities);
            int vl = snprintf(vals[n], sizeof(vals[n]), "{\"seq\":%ld,\"amount\":%ld}", i, i % 997);
            ev[n] = (td_event){.key = keys[n], .key_len = (size_t)kl, .value = vals[n],
                               .value_len = (size_t)vl, .partition = 0};
        }
        check(td_produce(e, topic, ev, (size_t)n, NULL), "produce");
    }
}

static long read_by_key(td_engine *e, const char *key)
{
    td_iter *it;
    check(td_iter_open_key(e, "reads", key, strlen(key), 0, TD_OFFSET_EARLIEST, &it), "open key");
    td_event ev;
    long n = 0;
    int rc;
    while ((rc = td_iter_next(it, &ev)) == 1)
        n++;
    check(rc, "next");
    td_iter_close(it);
    return n;
}

static long read_by_scan(td_engine *e, const char *key)
{
    td_iter *it;
    check(td_iter_open(e, "reads", 0, TD_OFFSET_EARLIEST, &it), "open");
    td_event ev;
    long n = 0;
    size_t kl = strlen(key);
    int rc;
    while ((rc = td_iter_next(it, &ev)) == 1)
        n += ev.key_len == kl && memcmp(ev.key, key, kl) == 0;
    check(rc, "next");
    td_iter_close(it);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_keys DIR\n");
        return 2;
    }
    long events = env_long("BENCH_KEYS_EVENTS", 10000000), entities =
                                                               env_long("BENCH_KEYS_ENTITIES", 100000);
    long samples = env_long("BENCH_KEYS_SAMPLES", 20), scans = env_long("BENCH_KEYS_SCANS", 2);
    long batch = env_long("BENCH_KEYS_BATCH", 100);
    if (batch < 1 || batch > 1000 || entities < 1 || events < entities)
        return 2;
    td_set_log_level("warn");
    td_options o;
    td_options_init(&o);
    td_engine *e;
    check(td_engine_open(argv[1], &o, &e), "open");
    const td_config_entry on[] = {{"key.index", "true"}, {"fsync", "none"}};
    check(td_topic_create(e, "reads", 1, on, 2), "create");
    double t0 = now_s();
    produce_range(e, "reads", 0, events, entities, batch);
    check(td_engine_flush(e), "flush");
    printf("wrote %ld events of %ld entities in %.1f s\n", events, entities, now_s() - t0);
    char key[32];
    double tk = now_s();
    for (long s = 0; s < samples; s++) {
        snprintf(key, sizeof(key), "entity-%ld", (s * 7919) % entities);
        long n = read_by_key(e, key);
        if (n != events / entities + (((s * 7919) % entities) < events % entities))
            fprintf(stderr, "key %s: %ld events\n", key, n), exit(1);
    }
    double key_ms = (now_s() - tk) * 1000 / (double)samples;
    double ts = now_s();
    for (long s = 0; s < scans; s++) {
        snprintf(key, sizeof(key), "entity-%ld", (s * 7919) % entities);
        if (read_by_scan(e, key) != read_by_key(e, key))
            fprintf(stderr, "scan and key reads differ\n"), exit(1);
    }
    double scan_ms = (now_s() - ts) * 1000 / (double)scans;
    printf("key %.3f ms\nscan %.1f ms\nread_ratio %.0f\n", key_ms, scan_ms, scan_ms / key_ms);

    long appends = env_long("BENCH_KEYS_APPENDS", 2000000), chunk = 100000;
    const char *fsync = getenv("BENCH_KEYS_FSYNC"); /* the appends' fsync policy */
    const td_config_entry on2[] = {{"key.index", "true"}, {"fsync", fsync ? fsync : "none"}};
    const td_config_entry off2[] = {{"fsync", fsync ? fsync : "none"}};
    check(td_topic_create(e, "on", 1, on2, 2), "create");
    check(td_topic_create(e, "off", 1, off2, 1), "create");
    double t_on = 0, t_off = 0, c_on = 0, c_off = 0;
    for (long at = 0; at < appends; at += chunk) {
        long to = at + chunk < appends ? at + chunk : appends;
        for (int which = 0; which < 2; which++) {
            bool first_on = (at / chunk) % 2 == 0; /* alternate which goes first */
            bool is_on = which == 0 ? first_on : !first_on;
            double t = now_s(), c = cpu_s();
            produce_range(e, is_on ? "on" : "off", at, to, entities, batch);
            *(is_on ? &t_on : &t_off) += now_s() - t;
            *(is_on ? &c_on : &c_off) += cpu_s() - c;
        }
    }
    printf("append_on %.0f events/s\nappend_off %.0f events/s\nappend_cost %.1f %%\n",
           (double)appends / t_on, (double)appends / t_off, (1 - t_off / t_on) * 100);
    printf("append_cpu_cost %.1f %%\n", (1 - c_off / c_on) * 100);
    td_engine_close(e);
    return 0;
}
