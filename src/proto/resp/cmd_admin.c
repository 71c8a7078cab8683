/*
 * cmd_admin.c: what the Redis listener measures about its commands, and the server commands
 * that show it (docs/redis.md#connection-and-server-commands), as Redis 7.0 does:
 *   - per command (and subcommand) its calls, time, refusals and failures (INFO commandstats),
 *     and per error prefix the error replies (INFO errorstats, total_error_replies);
 *   - SLOWLOG: the commands slower than slowlog-log-slower-than microseconds, the last
 *     slowlog-max-len of them;
 *   - LATENCY: the commands slower than latency-monitor-threshold milliseconds, as the events
 *     "command" and "fast-command", 160 one-second samples each;
 *   - MONITOR: every command any connection runs, as a line to each monitoring connection;
 *   - TIME, ROLE and WAIT (a broker without replicas: role master, no replica acknowledges).
 *
 * Commands run on every event loop at once, so the counters are atomics and the lists are under
 * their own mutexes, taken only when something is recorded (a slow command, an error, a line
 * for monitors). Memory is bounded by configuration: the slow log by slowlog-max-len (an entry
 * keeps at most 32 arguments of at most 128 bytes, as Redis's), the latency events by their
 * fixed 160 samples, the error kinds by RESP_ERRSTATS_MAX, and each monitor by
 * redis.monitor.buffer.bytes of lines not yet written to its socket, past which it is closed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "proto/resp/resp_int.h"

#define SLOWLOG_MAX_ARGC 32
#define SLOWLOG_MAX_STRING 128
#define LATENCY_TS_LEN 160
/* Distinct error prefixes counted (Redis 7.2's limit; 7.0 has none): errors of further kinds
 * still count in total_error_replies. */
#define RESP_ERRSTATS_MAX 128

typedef struct cmdstat {
    const rcmd *parent, *c;
    uint64_t calls, usec, rejected, failed; /* atomic */
} cmdstat;

typedef struct errstat {
    char name[32];
    uint64_t count;
} errstat;

typedef struct slow_entry {
    struct slow_entry *prev, *next; /* newest first */
    uint64_t id;
    int64_t time, usec;
    size_t argc;
    td_slice *argv; /* into the same allocation */
    char addr[64], name[128];
} slow_entry;

typedef struct lat_sample {
    int64_t time; /* seconds; 0: unused */
    int64_t ms;
} lat_sample;

typedef struct lat_event {
    const char *name;
    bool used; /* has samples (LATENCY RESET removes the event) */
    lat_sample samples[LATENCY_TS_LEN];
    size_t idx;
    int64_t max;
} lat_event;

/* A monitoring connection. Its lines are posted to its loop; `queued` counts the bytes posted
 * and not yet written, so that a monitor whose loop or socket falls behind is closed rather
 * than let the lines pile up. */
typedef struct monitor {
    struct monitor *next; /* in the list (under mon_mu) */
    net_conn *c;          /* referenced */
    int refs;             /* atomic: the list's, and one per line in flight */
    size_t limit;
    size_t queued; /* atomic */
    bool overflow; /* atomic: closed at its next line */
} monitor;

/* One line for the monitors, shared by their tasks. */
typedef struct mon_line {
    int refs; /* atomic */
    size_t n;
    char text[];
} mon_line;

typedef struct mon_task {
    monitor *m;
    mon_line *line;
} mon_task;

struct resp_admin {
    cmdstat *stats;
    size_t nstats;
    uint32_t *slots; /* index + 1 into stats by the command's address; 0: empty */
    size_t mask;
    uint64_t total_errors; /* atomic */
    pthread_mutex_t err_mu;
    errstat errs[RESP_ERRSTATS_MAX]; /* sorted by name, as Redis's rax */
    size_t nerrs;

    int64_t slow_threshold_us, slow_max_len; /* atomic: CONFIG SET */
    pthread_mutex_t slow_mu;
    slow_entry *slow_head, *slow_tail;
    size_t slow_len;
    uint64_t slow_next_id;

    int64_t lat_threshold_ms; /* atomic */
    pthread_mutex_t lat_mu;
    lat_event lat[2]; /* "command", "fast-command" */

    pthread_mutex_t mon_mu;
    monitor *monitors;
    size_t nmonitors; /* atomic: the fast test of every command */
    size_t mon_limit;
    char replid[41]; /* INFO replication's master_replid */
};

static size_t slot_of(const void *p, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & mask;
}

static void stat_add(resp_admin *a, const rcmd *parent, const rcmd *c)
{
    a->stats[a->nstats] = (cmdstat){parent, c, 0, 0, 0, 0};
    size_t i = slot_of(c, a->mask);
    while (a->slots[i])
        i = (i + 1) & a->mask;
    a->slots[i] = (uint32_t)++a->nstats;
}

int resp_admin_create(resp_server *s)
{
    resp_admin *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    size_t n = 0;
    for (const rcmd *c = resp_commands; c->name; c++, n++)
        for (const rcmd *sc = c->subs; sc && sc->name; sc++)
            n++;
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    a->stats = calloc(n, sizeof(*a->stats));
    a->slots = calloc(cap, sizeof(*a->slots));
    if (!a->stats || !a->slots) {
        free(a->stats);
        free(a->slots);
        free(a);
        return -ENOMEM;
    }
    a->mask = cap - 1;
    for (const rcmd *c = resp_commands; c->name; c++) {
        stat_add(a, NULL, c);
        for (const rcmd *sc = c->subs; sc && sc->name; sc++)
            stat_add(a, c, sc);
    }
    a->slow_threshold_us = 10000;
    a->slow_max_len = 128;
    a->slow_next_id = 0;
    a->lat[0].name = "command";
    a->lat[1].name = "fast-command";
    a->mon_limit = s->cfg.monitor_limit ? s->cfg.monitor_limit : (size_t)8 << 20;
    uint8_t rnd[20];
    if (getentropy(rnd, sizeof(rnd)) != 0) {
        uint64_t x = (uint64_t)td_mono_ns() ^ ((uint64_t)td_wall_ms() << 20);
        for (size_t i = 0; i < sizeof(rnd); i++, x = x * 6364136223846793005ull + 1)
            rnd[i] = (uint8_t)(x >> 56);
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(a->replid + 2 * i, 3, "%02x", rnd[i]);
    pthread_mutex_init(&a->err_mu, NULL);
    pthread_mutex_init(&a->slow_mu, NULL);
    pthread_mutex_init(&a->lat_mu, NULL);
    pthread_mutex_init(&a->mon_mu, NULL);
    s->admin = a;
    return 0;
}

static void slowlog_clear(resp_admin *a)
{
    for (slow_entry *e = a->slow_head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    a->slow_head = a->slow_tail = NULL;
    a->slow_len = 0;
}

void resp_admin_destroy(resp_server *s)
{
    resp_admin *a = s->admin;
    if (!a)
        return;
    slowlog_clear(a);
    for (monitor *m = a->monitors, *next; m; m = next) {
        next = m->next;
        net_conn_unref(m->c);
        free(m);
    }
    pthread_mutex_destroy(&a->err_mu);
    pthread_mutex_destroy(&a->slow_mu);
    pthread_mutex_destroy(&a->lat_mu);
    pthread_mutex_destroy(&a->mon_mu);
    free(a->stats);
    free(a->slots);
    free(a);
    s->admin = NULL;
}

static cmdstat *stat_of(resp_admin *a, const rcmd *c)
{
    for (size_t i = slot_of(c, a->mask); a->slots[i]; i = (i + 1) & a->mask)
        if (a->stats[a->slots[i] - 1].c == c)
            return &a->stats[a->slots[i] - 1];
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Errors and command statistics
 */
/* The error reply at b[off..] (a top-level "-PREFIX text\r\n"), counted as Redis's
 * afterErrorReply counts it: by the prefix up to the first space within 32 bytes, else "ERR". */
bool resp_admin_error_at(resp_server *s, const td_buf *b, size_t off)
{
    if (off >= b->len || b->p[off] != '-')
        return false;
    resp_admin *a = s->admin;
    __atomic_add_fetch(&a->total_errors, 1, __ATOMIC_RELAXED);
    /* Redis looks for the space in the first 32 bytes of the error, its '-' included; the
     * search stops at the line's end (other replies may follow it in b). */
    const char *t = (const char *)b->p + off + 1;
    size_t rest = b->len - off - 1, lim = rest < 31 ? rest : 31, n = 0;
    const char *cr = memchr(t, '\r', lim);
    if (cr)
        lim = (size_t)(cr - t);
    const char *sp = memchr(t, ' ', lim);
    const char *name = "ERR";
    if (sp) {
        name = t;
        n = (size_t)(sp - t);
    } else {
        n = 3;
    }
    if (n == 0 || n >= sizeof(a->errs[0].name))
        return true;
    pthread_mutex_lock(&a->err_mu);
    size_t lo = 0, hi = a->nerrs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(a->errs[mid].name, name, n);
        if (c == 0 && a->errs[mid].name[n])
            c = 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < a->nerrs && !strncmp(a->errs[lo].name, name, n) && !a->errs[lo].name[n]) {
        a->errs[lo].count++;
    } else if (a->nerrs < RESP_ERRSTATS_MAX) {
        memmove(&a->errs[lo + 1], &a->errs[lo], (a->nerrs - lo) * sizeof(a->errs[0]));
        memcpy(a->errs[lo].name, name, n);
        a->errs[lo].name[n] = 0;
        a->errs[lo].count = 1;
        a->nerrs++;
    }
    pthread_mutex_unlock(&a->err_mu);
    return true;
}

void resp_admin_rejected(resp_server *s, const rcmd *c)
{
    cmdstat *st = c ? stat_of(s->admin, c) : NULL;
    if (st)
        __atomic_add_fetch(&st->rejected, 1, __ATOMIC_RELAXED);
}

static void info_line(td_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info_line(td_buf *b, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        td_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void resp_admin_info_commandstats(resp_server *s, td_buf *b)
{
    resp_admin *a = s->admin;
    for (size_t i = 0; i < a->nstats; i++) {
        const cmdstat *st = &a->stats[i];
        uint64_t calls = __atomic_load_n(&st->calls, __ATOMIC_RELAXED);
        uint64_t usec = __atomic_load_n(&st->usec, __ATOMIC_RELAXED);
        uint64_t rej = __atomic_load_n(&st->rejected, __ATOMIC_RELAXED);
        uint64_t failed = __atomic_load_n(&st->failed, __ATOMIC_RELAXED);
        if (!calls && !rej && !failed)
            continue;
        char full[64];
        resp_command_fullname(st->parent, st->c, full, sizeof(full));
        info_line(b,
                  "cmdstat_%s:calls=%" PRIu64 ",usec=%" PRIu64 ",usec_per_call=%.2f,rejected_"
                  "calls=%" PRIu64 ",failed_calls=%" PRIu64 "\r\n",
                  full, calls, usec, calls ? (double)usec / (double)calls : 0.0, rej, failed);
    }
}

void resp_admin_info_errorstats(resp_server *s, td_buf *b)
{
    resp_admin *a = s->admin;
    pthread_mutex_lock(&a->err_mu);
    for (size_t i = 0; i < a->nerrs; i++)
        info_line(b, "errorstat_%s:count=%" PRIu64 "\r\n", a->errs[i].name, a->errs[i].count);
    pthread_mutex_unlock(&a->err_mu);
}

/* INFO stats, with Redis 7.0's fields in its order: those of replication, expiry, eviction,
 * forks, defragmentation, tracking and I/O threads are 0 here, as on a Redis without them. */
void resp_admin_info_stats(resp_server *s, td_buf *b, bool *first)
{
    size_t channels, patterns;
    resp_pubsub_counts(s, &channels, &patterns);
    info_line(b, "%s# Stats\r\n", *first ? "" : "\r\n");
    *first = false;
    info_line(b, "total_connections_received:%" PRIu64 "\r\n",
              __atomic_load_n(&s->total_connections, __ATOMIC_RELAXED));
    info_line(b, "total_commands_processed:%" PRIu64 "\r\n",
              __atomic_load_n(&s->total_commands, __ATOMIC_RELAXED));
    static const char *const zeros1[] = {"instantaneous_ops_per_sec:0",
                                         "total_net_input_bytes:0",
                                         "total_net_output_bytes:0",
                                         "total_net_repl_input_bytes:0",
                                         "total_net_repl_output_bytes:0",
                                         "instantaneous_input_kbps:0.00",
                                         "instantaneous_output_kbps:0.00",
                                         "instantaneous_input_repl_kbps:0.00",
                                         "instantaneous_output_repl_kbps:0.00",
                                         "rejected_connections:0",
                                         "sync_full:0",
                                         "sync_partial_ok:0",
                                         "sync_partial_err:0",
                                         "expired_keys:0",
                                         "expired_stale_perc:0.00",
                                         "expired_time_cap_reached_count:0",
                                         "expire_cycle_cpu_milliseconds:0",
                                         "evicted_keys:0",
                                         "evicted_clients:0",
                                         "total_eviction_exceeded_time:0",
                                         "current_eviction_exceeded_time:0",
                                         "keyspace_hits:0",
                                         "keyspace_misses:0",
                                         NULL};
    for (const char *const *z = zeros1; *z; z++)
        info_line(b, "%s\r\n", *z);
    info_line(b, "pubsub_channels:%zu\r\npubsub_patterns:%zu\r\npubsubshard_channels:%zu\r\n",
              channels, patterns, resp_pubsub_shard_channels(s));
    static const char *const zeros2[] = {"latest_fork_usec:0",
                                         "total_forks:0",
                                         "migrate_cached_sockets:0",
                                         "slave_expires_tracked_keys:0",
                                         "active_defrag_hits:0",
                                         "active_defrag_misses:0",
                                         "active_defrag_key_hits:0",
                                         "active_defrag_key_misses:0",
                                         "total_active_defrag_time:0",
                                         "current_active_defrag_time:0",
                                         "tracking_total_keys:0",
                                         "tracking_total_items:0",
                                         "tracking_total_prefixes:0",
                                         "unexpected_error_replies:0",
                                         NULL};
    for (const char *const *z = zeros2; *z; z++)
        info_line(b, "%s\r\n", *z);
    info_line(b, "total_error_replies:%" PRIu64 "\r\n",
              __atomic_load_n(&s->admin->total_errors, __ATOMIC_RELAXED));
    static const char *const zeros3[] = {
        "dump_payload_sanitizations:0",   "total_reads_processed:0",
        "total_writes_processed:0",       "io_threaded_reads_processed:0",
        "io_threaded_writes_processed:0", "reply_buffer_shrinks:0",
        "reply_buffer_expands:0",         NULL};
    for (const char *const *z = zeros3; *z; z++)
        info_line(b, "%s\r\n", *z);
}

/* INFO replication: a master without replicas, as Redis 7.0 shows one (master_replid made at
 * start; no replication stream, so the offsets stay 0 and the backlog inactive). */
void resp_admin_info_replication(resp_server *s, td_buf *b, bool *first)
{
    info_line(b, "%s# Replication\r\n", *first ? "" : "\r\n");
    *first = false;
    info_line(b, "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n");
    info_line(b, "master_replid:%s\r\n", s->admin->replid);
    info_line(b, "master_replid2:0000000000000000000000000000000000000000\r\n"
                 "master_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n"
                 "repl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\n"
                 "repl_backlog_histlen:0\r\n");
}

/* CONFIG RESETSTAT. */
void resp_admin_resetstat(resp_server *s)
{
    resp_admin *a = s->admin;
    for (size_t i = 0; i < a->nstats; i++) {
        __atomic_store_n(&a->stats[i].calls, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&a->stats[i].usec, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&a->stats[i].rejected, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&a->stats[i].failed, 0, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&a->total_errors, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&a->err_mu);
    a->nerrs = 0;
    pthread_mutex_unlock(&a->err_mu);
}

/* ---------------------------------------------------------------------------------------------
 * Settings (CONFIG GET/SET)
 */
int64_t resp_admin_get(resp_server *s, int which)
{
    resp_admin *a = s->admin;
    int64_t *p = which == RESP_ADMIN_SLOW_THRESHOLD ? &a->slow_threshold_us
                 : which == RESP_ADMIN_SLOW_MAX_LEN ? &a->slow_max_len
                                                    : &a->lat_threshold_ms;
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void resp_admin_set(resp_server *s, int which, int64_t v)
{
    resp_admin *a = s->admin;
    int64_t *p = which == RESP_ADMIN_SLOW_THRESHOLD ? &a->slow_threshold_us
                 : which == RESP_ADMIN_SLOW_MAX_LEN ? &a->slow_max_len
                                                    : &a->lat_threshold_ms;
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------------------------------
 * What a command shows of its arguments: AUTH's and HELLO AUTH's passwords, CONFIG SET
 * requirepass's value and ACL SETUSER's user and rules are "(redacted)" in the slow log and to
 * monitors, as in Redis.
 */
static bool redacted(const rcmd *parent, const rcmd *c, size_t argc, const td_slice *argv, size_t i)
{
    if (!parent && !strcmp(c->name, "auth"))
        return i >= 1;
    if (!parent && !strcmp(c->name, "hello")) {
        for (size_t k = 2; k + 2 < argc; k++)
            if (resp_arg_is(argv[k], "auth") && (i == k + 1 || i == k + 2))
                return true;
        return false;
    }
    if (parent && !strcmp(parent->name, "config") && !strcmp(c->name, "set"))
        return i >= 3 && i % 2 == 1 && resp_arg_is(argv[i - 1], "requirepass");
    if (parent && !strcmp(parent->name, "acl") && !strcmp(c->name, "setuser"))
        return i >= 2; /* the user and every rule, as Redis */
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * The slow log
 */
static void slowlog_push(rconn *rc, const rcmd *parent, const rcmd *c, size_t argc,
                         const td_slice *argv, int64_t usec)
{
    resp_admin *a = rc->s->admin;
    size_t n = argc > SLOWLOG_MAX_ARGC ? SLOWLOG_MAX_ARGC : argc, bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += (argv[i].n > SLOWLOG_MAX_STRING ? SLOWLOG_MAX_STRING + 40 : argv[i].n) + 12;
    slow_entry *e = malloc(sizeof(*e) + n * sizeof(td_slice) + bytes + 40);
    if (!e)
        return; /* the log is best effort */
    e->argv = (td_slice *)(e + 1);
    char *p = (char *)(e->argv + n);
    for (size_t i = 0; i < n; i++) {
        int k;
        if (n != argc && i == n - 1)
            k = sprintf(p, "... (%zu more arguments)", argc - n + 1);
        else if (redacted(parent, c, argc, argv, i))
            k = sprintf(p, "(redacted)");
        else if (argv[i].n > SLOWLOG_MAX_STRING) {
            memcpy(p, argv[i].p, SLOWLOG_MAX_STRING);
            k = SLOWLOG_MAX_STRING + sprintf(p + SLOWLOG_MAX_STRING, "... (%zu more bytes)",
                                             argv[i].n - SLOWLOG_MAX_STRING);
        } else {
            memcpy(p, argv[i].p, argv[i].n);
            k = (int)argv[i].n;
        }
        e->argv[i] = (td_slice){(const uint8_t *)p, (size_t)k};
        p += k;
    }
    e->argc = n;
    e->time = td_wall_ms() / 1000;
    e->usec = usec;
    snprintf(e->addr, sizeof(e->addr), "%s", rc->addr);
    pthread_mutex_lock(&rc->s->clients_mu);
    memcpy(e->name, rc->name, sizeof(e->name));
    pthread_mutex_unlock(&rc->s->clients_mu);
    size_t max = (size_t)__atomic_load_n(&a->slow_max_len, __ATOMIC_RELAXED);
    pthread_mutex_lock(&a->slow_mu);
    e->id = a->slow_next_id++;
    e->prev = NULL;
    e->next = a->slow_head;
    if (a->slow_head)
        a->slow_head->prev = e;
    else
        a->slow_tail = e;
    a->slow_head = e;
    a->slow_len++;
    while (a->slow_len > max) {
        slow_entry *old = a->slow_tail;
        a->slow_tail = old->prev;
        if (a->slow_tail)
            a->slow_tail->next = NULL;
        else
            a->slow_head = NULL;
        a->slow_len--;
        free(old);
    }
    pthread_mutex_unlock(&a->slow_mu);
}

static void slowlog_get(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    resp_admin *a = rc->s->admin;
    long long count = 10;
    if (argc == 3) {
        if (!resp_parse_ll(argv[2].p, argv[2].n, &count) || count < -1) {
            resp_w_error(w, "ERR count should be greater than or equal to -1");
            return;
        }
    } else if (argc > 3) {
        resp_w_errorf(w,
                      "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                      "SLOWLOG HELP.",
                      (int)(argv[1].n < 128 ? argv[1].n : 128), (const char *)argv[1].p);
        return;
    }
    pthread_mutex_lock(&a->slow_mu);
    size_t n = count == -1 || (unsigned long long)count > a->slow_len ? a->slow_len : (size_t)count;
    resp_w_array(w, n);
    slow_entry *e = a->slow_head;
    for (size_t i = 0; i < n; i++, e = e->next) {
        resp_w_array(w, 6);
        resp_w_int(w, (int64_t)e->id);
        resp_w_int(w, e->time);
        resp_w_int(w, e->usec);
        resp_w_array(w, e->argc);
        for (size_t k = 0; k < e->argc; k++)
            resp_w_bulk(w, e->argv[k].p, e->argv[k].n);
        resp_w_str(w, e->addr);
        resp_w_str(w, e->name);
    }
    pthread_mutex_unlock(&a->slow_mu);
}

static void slowlog_len(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    resp_admin *a = rc->s->admin;
    pthread_mutex_lock(&a->slow_mu);
    size_t n = a->slow_len;
    pthread_mutex_unlock(&a->slow_mu);
    resp_w_int(w, (int64_t)n);
}

static void slowlog_reset(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    resp_admin *a = rc->s->admin;
    pthread_mutex_lock(&a->slow_mu);
    slowlog_clear(a);
    pthread_mutex_unlock(&a->slow_mu);
    resp_w_simple(w, "OK");
}

static void slowlog_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
        NULL};
    resp_reply_help(w, lines);
}

/* ---------------------------------------------------------------------------------------------
 * Latency events
 */
static void latency_add(resp_admin *a, lat_event *ev, int64_t ms)
{
    int64_t now = td_wall_ms() / 1000;
    pthread_mutex_lock(&a->lat_mu);
    if (!ev->used) {
        memset(ev->samples, 0, sizeof(ev->samples));
        ev->idx = 0;
        ev->max = 0;
        ev->used = true;
    }
    if (ms > ev->max)
        ev->max = ms;
    /* One sample a second: the highest of that second. */
    lat_sample *prev = &ev->samples[(ev->idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN];
    if (prev->time == now) {
        if (ms > prev->ms)
            prev->ms = ms;
    } else {
        ev->samples[ev->idx] = (lat_sample){now, ms};
        ev->idx = (ev->idx + 1) % LATENCY_TS_LEN;
    }
    pthread_mutex_unlock(&a->lat_mu);
}

static void latency_latest(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    resp_admin *a = rc->s->admin;
    pthread_mutex_lock(&a->lat_mu);
    size_t n = 0;
    for (size_t i = 0; i < TD_ARRAY_LEN(a->lat); i++)
        n += a->lat[i].used;
    resp_w_array(w, n);
    for (size_t i = 0; i < TD_ARRAY_LEN(a->lat); i++) {
        const lat_event *ev = &a->lat[i];
        if (!ev->used)
            continue;
        const lat_sample *last = &ev->samples[(ev->idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN];
        resp_w_array(w, 4);
        resp_w_str(w, ev->name);
        resp_w_int(w, last->time);
        resp_w_int(w, last->ms);
        resp_w_int(w, ev->max);
    }
    pthread_mutex_unlock(&a->lat_mu);
}

static lat_event *latency_find(resp_admin *a, td_slice name)
{
    for (size_t i = 0; i < TD_ARRAY_LEN(a->lat); i++)
        if (a->lat[i].used && name.n == strlen(a->lat[i].name) &&
            !memcmp(name.p, a->lat[i].name, name.n))
            return &a->lat[i];
    return NULL;
}

static void latency_history(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    resp_admin *a = rc->s->admin;
    pthread_mutex_lock(&a->lat_mu);
    const lat_event *ev = latency_find(a, argv[2]);
    size_t n = 0;
    for (size_t i = 0; ev && i < LATENCY_TS_LEN; i++)
        n += ev->samples[i].time != 0;
    resp_w_array(w, n);
    for (size_t j = 0; ev && j < LATENCY_TS_LEN; j++) {
        const lat_sample *s = &ev->samples[(ev->idx + j) % LATENCY_TS_LEN];
        if (!s->time)
            continue;
        resp_w_array(w, 2);
        resp_w_int(w, s->time);
        resp_w_int(w, s->ms);
    }
    pthread_mutex_unlock(&a->lat_mu);
}

static void latency_reset(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    resp_admin *a = rc->s->admin;
    int64_t n = 0;
    pthread_mutex_lock(&a->lat_mu);
    for (size_t i = 0; i < TD_ARRAY_LEN(a->lat); i++) {
        bool hit = argc == 2;
        for (size_t k = 2; k < argc && !hit; k++)
            hit = resp_arg_is(argv[k], a->lat[i].name);
        if (hit && a->lat[i].used) {
            a->lat[i].used = false;
            n++;
        }
    }
    pthread_mutex_unlock(&a->lat_mu);
    resp_w_int(w, n);
}

static void latency_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the "
        "specified command names.",
        "    If no commands are specified then all histograms are replied.",
        "HELP",
        "    Prints this help.",
        NULL};
    resp_reply_help(w, lines);
}

/* LATENCY DOCTOR: a short report in Redis's spirit, from the events recorded. */
static void latency_doctor(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    resp_admin *a = rc->s->admin;
    td_buf b;
    td_buf_init(&b);
    pthread_mutex_lock(&a->lat_mu);
    bool any = a->lat[0].used || a->lat[1].used;
    if (!any) {
        info_line(&b, "Dave, no latency spike was observed during the lifetime of this Redis "
                      "instance, not in the slightest bit. I honestly think you ought to sleep "
                      "better tonight.\n");
    } else {
        info_line(&b, "Dave, I have observed latency spikes in this Redis instance. You don't "
                      "mind talking about it, do you Dave?\n\n");
        int k = 1;
        for (size_t i = 0; i < TD_ARRAY_LEN(a->lat); i++) {
            const lat_event *ev = &a->lat[i];
            if (!ev->used)
                continue;
            size_t n = 0;
            int64_t sum = 0;
            for (size_t j = 0; j < LATENCY_TS_LEN; j++)
                if (ev->samples[j].time) {
                    n++;
                    sum += ev->samples[j].ms;
                }
            info_line(&b,
                      "%d. %s: %zu latency spikes (average %" PRId64 "ms) worst all time event "
                      "%" PRId64 "ms.\n",
                      k++, ev->name, n, n ? sum / (int64_t)n : 0, ev->max);
        }
        info_line(&b, "\nI have a few advices for you:\n\n- Check your slow commands with "
                      "SLOWLOG GET, and the broker's own metrics (docs/operations.md).\n");
    }
    pthread_mutex_unlock(&a->lat_mu);
    resp_w_verbatim(w, b.p ? (const char *)b.p : "", b.len);
    td_buf_free(&b);
}

static void latency_graph(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    resp_admin *a = rc->s->admin;
    pthread_mutex_lock(&a->lat_mu);
    const lat_event *ev = latency_find(a, argv[2]);
    if (!ev) {
        pthread_mutex_unlock(&a->lat_mu);
        resp_w_errorf(w, "ERR No samples available for event '%.*s'",
                      (int)(argv[2].n < 128 ? argv[2].n : 128), (const char *)argv[2].p);
        return;
    }
    td_buf b;
    td_buf_init(&b);
    info_line(&b, "%s - high %" PRId64 " ms, low 0 ms (all time high %" PRId64 " ms)\n", ev->name,
              ev->max, ev->max);
    for (size_t j = 0; j < LATENCY_TS_LEN; j++) {
        const lat_sample *s = &ev->samples[(ev->idx + j) % LATENCY_TS_LEN];
        if (s->time)
            info_line(&b, "%" PRId64 " %" PRId64 "ms\n", s->time, s->ms);
    }
    pthread_mutex_unlock(&a->lat_mu);
    resp_w_verbatim(w, b.p, b.len);
    td_buf_free(&b);
}

/* LATENCY HISTOGRAM: tidings keeps per-command latency histograms as metrics
 * (tidings_request_seconds, docs/operations.md), not Redis's HDR histograms: an empty map. */
static void latency_histogram(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    resp_w_map(w, 0);
}

/* ---------------------------------------------------------------------------------------------
 * MONITOR
 */
static void mon_line_unref(mon_line *l)
{
    if (__atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(l);
}

static void monitor_unref(monitor *m)
{
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        net_conn_unref(m->c);
        free(m);
    }
}

/* On the monitor's loop. */
static void mon_deliver(void *arg)
{
    mon_task *t = arg;
    monitor *m = t->m;
    net_conn *c = m->c;
    __atomic_sub_fetch(&m->queued, t->line->n, __ATOMIC_RELAXED);
    rconn *rc = net_conn_closed(c) ? NULL : net_conn_data(c);
    if (rc) {
        if (__atomic_load_n(&m->overflow, __ATOMIC_RELAXED) ||
            net_conn_out_bytes(c) + t->line->n > m->limit) {
            TD_WARN("redis", "closing monitor %s: more than %zu bytes of lines unread", rc->addr,
                    m->limit);
            net_conn_close(c, true);
        } else if (net_conn_write(c, t->line->text, t->line->n) != 0) {
            net_conn_close(c, true);
        } else {
            net_conn_flush(c);
        }
    }
    mon_line_unref(t->line);
    monitor_unref(m);
    free(t);
}

/* Appends a as Redis's sdscatrepr writes it: quoted, with C escapes and \xHH. */
static void repr(td_buf *b, const uint8_t *p, size_t n)
{
    td_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        char e[5];
        size_t k = 2;
        e[0] = '\\';
        switch (p[i]) {
        case '\\':
            e[1] = '\\';
            break;
        case '"':
            e[1] = '"';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        case '\a':
            e[1] = 'a';
            break;
        case '\b':
            e[1] = 'b';
            break;
        default:
            if (p[i] >= 0x20 && p[i] < 0x7f) {
                e[0] = (char)p[i];
                k = 1;
            } else {
                snprintf(e, sizeof(e), "\\x%02x", p[i]);
                k = 4;
            }
        }
        td_buf_append(b, e, k);
    }
    td_buf_append(b, "\"", 1);
}

static void monitor_feed(rconn *rc, const rcmd *parent, const rcmd *c, size_t argc,
                         const td_slice *argv)
{
    resp_admin *a = rc->s->admin;
    td_buf b;
    td_buf_init(&b);
    static const mon_line header; /* room for the line's header, filled below */
    td_buf_append(&b, &header, sizeof(header));
    struct timeval tv;
    gettimeofday(&tv, NULL);
    info_line(&b, "+%ld.%06ld [0 %s] ", (long)tv.tv_sec, (long)tv.tv_usec, rc->addr);
    for (size_t i = 0; i < argc; i++) {
        if (redacted(parent, c, argc, argv, i))
            repr(&b, (const uint8_t *)"(redacted)", 10);
        else
            repr(&b, argv[i].p, argv[i].n);
        if (i + 1 < argc)
            td_buf_append(&b, " ", 1);
    }
    if (td_buf_append(&b, "\r\n", 2) != 0) {
        td_buf_free(&b);
        return;
    }
    /* The buffer becomes the shared line: its header is the first bytes. */
    mon_line *l = (mon_line *)b.p;
    l->n = b.len - sizeof(mon_line);
    memmove(l->text, b.p + sizeof(mon_line), l->n);
    l->refs = 1;
    pthread_mutex_lock(&a->mon_mu);
    for (monitor *m = a->monitors; m; m = m->next) {
        if (__atomic_load_n(&m->overflow, __ATOMIC_RELAXED))
            continue;
        if (__atomic_load_n(&m->queued, __ATOMIC_RELAXED) + l->n > m->limit) {
            /* Its loop is behind: no more lines queue up; the next one delivered closes it. */
            __atomic_store_n(&m->overflow, true, __ATOMIC_RELAXED);
            continue;
        }
        mon_task *t = malloc(sizeof(*t));
        if (!t)
            continue;
        t->m = m;
        t->line = l;
        __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&m->queued, l->n, __ATOMIC_RELAXED);
        net_conn_ref(m->c);
        if (net_loop_post(net_conn_loop(m->c), mon_deliver, t) != 0) {
            __atomic_sub_fetch(&m->queued, l->n, __ATOMIC_RELAXED);
            net_conn_unref(m->c);
            __atomic_sub_fetch(&l->refs, 1, __ATOMIC_RELAXED);
            __atomic_sub_fetch(&m->refs, 1, __ATOMIC_RELAXED);
            free(t);
        } else {
            net_conn_unref(m->c); /* the monitor's own reference keeps it */
        }
    }
    pthread_mutex_unlock(&a->mon_mu);
    mon_line_unref(l);
}

void resp_cmd_monitor(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    if (rc->in_exec) {
        /* EXEC expects a reply per command: a monitor never gives one. */
        resp_w_error(w, "ERR MONITOR isn't allowed for DENY BLOCKING client");
        return;
    }
    if (rc->monitor)
        return; /* already monitoring: no reply, as Redis */
    resp_admin *a = rc->s->admin;
    monitor *m = calloc(1, sizeof(*m));
    if (!m) {
        resp_w_error(w, "ERR out of memory");
        return;
    }
    m->c = rc->c;
    m->refs = 1;
    m->limit = a->mon_limit;
    net_conn_ref(rc->c);
    pthread_mutex_lock(&a->mon_mu);
    m->next = a->monitors;
    a->monitors = m;
    __atomic_add_fetch(&a->nmonitors, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&a->mon_mu);
    rc->monitor = true;
    resp_w_simple(w, "OK");
}

void resp_admin_monitor_forget(rconn *rc)
{
    if (!rc->monitor)
        return;
    resp_admin *a = rc->s->admin;
    monitor *m = NULL;
    pthread_mutex_lock(&a->mon_mu);
    for (monitor **pp = &a->monitors; *pp; pp = &(*pp)->next)
        if ((*pp)->c == rc->c) {
            m = *pp;
            *pp = m->next;
            __atomic_sub_fetch(&a->nmonitors, 1, __ATOMIC_RELAXED);
            break;
        }
    pthread_mutex_unlock(&a->mon_mu);
    rc->monitor = false;
    if (m)
        monitor_unref(m);
}

/* ---------------------------------------------------------------------------------------------
 * After each command
 */
void resp_admin_called(rconn *rc, const rcmd *parent, const rcmd *c, size_t argc,
                       const td_slice *argv, int64_t ns, bool failed)
{
    resp_admin *a = rc->s->admin;
    int64_t usec = ns / 1000;
    cmdstat *st = stat_of(a, c);
    if (st) {
        __atomic_add_fetch(&st->calls, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&st->usec, (uint64_t)usec, __ATOMIC_RELAXED);
        if (failed)
            __atomic_add_fetch(&st->failed, 1, __ATOMIC_RELAXED);
    }
    /* EXEC is not logged itself (Redis's SKIP_SLOWLOG): its commands are, each. */
    bool is_exec = !parent && !strcmp(c->name, "exec");
    int64_t lat = __atomic_load_n(&a->lat_threshold_ms, __ATOMIC_RELAXED);
    if (!is_exec && lat > 0 && usec / 1000 >= lat)
        latency_add(a, &a->lat[(c->flags & RF_FAST) ? 1 : 0], usec / 1000);
    int64_t slow = __atomic_load_n(&a->slow_threshold_us, __ATOMIC_RELAXED);
    if (!is_exec && slow >= 0 && usec >= slow && !rc->blk)
        slowlog_push(rc, parent, c, argc, argv, usec);
    /* Administrative commands are not shown to monitors (Redis: too dangerous). */
    if (__atomic_load_n(&a->nmonitors, __ATOMIC_RELAXED) && !(c->flags & RF_ADMIN))
        monitor_feed(rc, parent, c, argc, argv);
}

/* ---------------------------------------------------------------------------------------------
 * TIME, ROLE, WAIT
 */
void resp_cmd_time(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    resp_w_array(w, 2);
    resp_w_bulk_int(w, (int64_t)tv.tv_sec);
    resp_w_bulk_int(w, (int64_t)tv.tv_usec);
}

void resp_cmd_role(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    resp_w_array(w, 3);
    resp_w_str(w, "master");
    resp_w_int(w, 0);
    resp_w_array(w, 0);
}

/* WAIT numreplicas timeout: no replica exists to acknowledge anything, so the answer is 0 at
 * once (Redis, without replicas, answers 0 after the timeout; at once inside MULTI). */
void resp_cmd_wait(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    long long n, timeout;
    if (!resp_arg_ll(w, argv[1], &n))
        return;
    if (!resp_parse_ll(argv[2].p, argv[2].n, &timeout)) {
        resp_w_error(w, "ERR timeout is not an integer or out of range");
        return;
    }
    if (timeout < 0) {
        resp_w_error(w, "ERR timeout is negative");
        return;
    }
    resp_w_int(w, 0);
}

/* ---------------------------------------------------------------------------------------------
 * The tables
 */
const rcmd resp_slowlog_subs[] = {
    {"get", -2, RF_ADMIN | RF_LOADING | RF_STALE, slowlog_get, "server",
     "Returns the slow log's entries.", "2.2.12", 0, 0, 0, NULL, "@admin @slow @dangerous"},
    {"help", 2, RF_LOADING | RF_STALE, slowlog_help, "server",
     "Show helpful text about the different subcommands", "6.2.0", 0, 0, 0, NULL, "@slow"},
    {"len", 2, RF_ADMIN | RF_LOADING | RF_STALE, slowlog_len, "server",
     "Returns the number of entries in the slow log.", "2.2.12", 0, 0, 0, NULL,
     "@admin @slow @dangerous"},
    {"reset", 2, RF_ADMIN | RF_LOADING | RF_STALE, slowlog_reset, "server",
     "Clears all entries from the slow log.", "2.2.12", 0, 0, 0, NULL, "@admin @slow @dangerous"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

const rcmd resp_latency_subs[] = {
    {"doctor", 2, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, latency_doctor, "server",
     "Returns a human-readable latency analysis report.", "2.8.13", 0, 0, 0, NULL,
     "@admin @slow @dangerous"},
    {"graph", 3, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, latency_graph, "server",
     "Returns a latency graph for an event.", "2.8.13", 0, 0, 0, NULL, "@admin @slow @dangerous"},
    {"help", 2, RF_LOADING | RF_STALE, latency_help, "server",
     "Returns helpful text about the different subcommands.", "2.8.13", 0, 0, 0, NULL, "@slow"},
    {"histogram", -2, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, latency_histogram, "server",
     "Returns the cumulative distribution of latencies of a subset or all commands.", "7.0.0", 0, 0,
     0, NULL, "@admin @slow @dangerous"},
    {"history", 3, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, latency_history, "server",
     "Returns timestamp-latency samples for an event.", "2.8.13", 0, 0, 0, NULL,
     "@admin @slow @dangerous"},
    {"latest", 2, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, latency_latest, "server",
     "Returns the latest latency samples for all events.", "2.8.13", 0, 0, 0, NULL,
     "@admin @slow @dangerous"},
    {"reset", -2, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, latency_reset, "server",
     "Resets the latency data for one or more events.", "2.8.13", 0, 0, 0, NULL,
     "@admin @slow @dangerous"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
