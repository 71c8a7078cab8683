/*
 * log.c: one line per event, "2026-11-24T21:40:00.123Z INFO storage: message k=v", written with
 * a single write(2) so that lines from several threads never interleave.
 *
 * Repeated lines are rate-limited, the way the kernel's printk_ratelimited is: each call site
 * (its format string) may write `burst` lines per `interval`; further lines of that call site
 * in the same interval are counted, not written, and once the interval is over one summary line
 * says how many were dropped and quotes the first of them. A peer that makes the broker log on
 * every connection or every request (a port scanner, a client in a reconnect loop, accept(2)
 * failing for want of descriptors) therefore costs at most burst lines per interval per call
 * site, instead of megabytes a second. Debug lines are not limited: they are off unless asked
 * for, and whoever asks wants them all.
 *
 * The limiter is a small open-addressing table keyed by the format string's address, under one
 * mutex. Cost per line at info and above: one mutex and a few probes, next to the formatting and
 * the write(2) that every line pays anyway. A call site that finds no slot in its probe window
 * (more than RL_SLOTS call sites active at once) is not limited.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

static int level = TD_LOG_INFO;
static td_log_sink sink;
static void *sink_arg;

static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

#define RL_SLOTS 256
#define RL_PROBES 8
#define RL_SAMPLE 200

typedef struct rl_slot {
    const char *key; /* the call site's format string; NULL: free */
    int level;
    char subsystem[24];
    int64_t window_start;   /* monotonic ms */
    uint32_t lines;         /* written in this window */
    uint64_t suppressed;    /* dropped in this window */
    char sample[RL_SAMPLE]; /* the message of the first dropped line */
} rl_slot;

static pthread_mutex_t rl_mu = PTHREAD_MUTEX_INITIALIZER;
static rl_slot rl_slots[RL_SLOTS];
static size_t rl_suppressing; /* slots with suppressed > 0 (under rl_mu) */
static int rl_burst = TD_LOG_RATE_BURST;
static int64_t rl_interval_ms = TD_LOG_RATE_INTERVAL_MS;

void td_log_set_level(int l)
{
    __atomic_store_n(&level, l, __ATOMIC_RELAXED);
}

int td_log_get_level(void)
{
    return __atomic_load_n(&level, __ATOMIC_RELAXED);
}

int td_log_level_parse(const char *s)
{
    static const char *lower[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, lower[i]) == 0)
            return i;
    return -1;
}

int td_set_log_level(const char *name)
{
    int l = name ? td_log_level_parse(name) : -1;
    if (l < 0)
        return td_fail(TD_EINVAL, "unknown log level '%s': use debug, info, warn, error or off",
                       name ? name : "");
    td_log_set_level(l);
    return 0;
}

void td_log_set_sink(td_log_sink s, void *arg)
{
    pthread_mutex_lock(&rl_mu);
    sink = s;
    sink_arg = arg;
    pthread_mutex_unlock(&rl_mu);
}

void td_log_set_rate_limit(int burst, int64_t interval_ms)
{
    pthread_mutex_lock(&rl_mu);
    rl_burst = burst < 0 ? 0 : burst;
    rl_interval_ms = interval_ms > 0 ? interval_ms : TD_LOG_RATE_INTERVAL_MS;
    memset(rl_slots, 0, sizeof(rl_slots));
    rl_suppressing = 0;
    pthread_mutex_unlock(&rl_mu);
}

/* Writes one finished line (rl_mu held, so that the sink and the limiter agree). */
static void emit(int l, char *line, size_t len)
{
    if (sink) {
        line[len - 1] = 0;
        sink(l, line, sink_arg);
        return;
    }
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* "2026-11-24T21:40:00.123Z WARN net: " into line; returns its length. */
static int prefix(char *line, size_t cap, int l, const char *subsystem)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    return snprintf(line, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    ts.tv_nsec / 1000000, names[l], subsystem);
}

/* The summary of a slot whose window is over, then a fresh window (rl_mu held). */
static void summarize(rl_slot *s, int64_t now)
{
    if (s->suppressed > 0) {
        char line[512];
        int n = prefix(line, sizeof(line), s->level, s->subsystem);
        int m = snprintf(line + n, sizeof(line) - (size_t)n - 1,
                         "%llu more lines like \"%s\" were suppressed (at most %d a call site "
                         "logs per %lld ms)",
                         (unsigned long long)s->suppressed, s->sample, rl_burst,
                         (long long)rl_interval_ms);
        size_t len = (size_t)n + (m < 0 ? 0 : TD_MIN((size_t)m, sizeof(line) - (size_t)n - 2));
        line[len++] = '\n';
        line[len] = 0;
        emit(s->level, line, len);
        s->suppressed = 0;
        rl_suppressing--;
    }
    s->window_start = now;
    s->lines = 0;
}

/* Summarizes every slot whose window is over (rl_mu held). */
static void flush_expired(int64_t now, bool all)
{
    if (rl_suppressing == 0)
        return;
    for (size_t i = 0; i < RL_SLOTS && rl_suppressing > 0; i++) {
        rl_slot *s = &rl_slots[i];
        if (s->key && s->suppressed > 0 && (all || now - s->window_start >= rl_interval_ms))
            summarize(s, now);
    }
}

void td_log_flush_suppressed(void)
{
    pthread_mutex_lock(&rl_mu);
    flush_expired(td_mono_ms(), true);
    pthread_mutex_unlock(&rl_mu);
}

/* The slot of a call site, or NULL when the table has no room near its hash (rl_mu held). */
static rl_slot *slot_of(const char *key, int64_t now)
{
    uintptr_t h = (uintptr_t)key;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    size_t start = (size_t)(h >> 40) % RL_SLOTS;
    rl_slot *spare = NULL;
    for (size_t k = 0; k < RL_PROBES; k++) {
        rl_slot *s = &rl_slots[(start + k) % RL_SLOTS];
        if (s->key == key)
            return s;
        if (!spare && (!s->key || (s->suppressed == 0 && now - s->window_start >= rl_interval_ms)))
            spare = s;
    }
    if (spare) {
        memset(spare, 0, sizeof(*spare));
        spare->key = key;
        spare->window_start = now;
    }
    return spare;
}

void td_log(int l, const char *subsystem, const char *fmt, ...)
{
    if (l < td_log_get_level() || l < TD_LOG_DEBUG || l > TD_LOG_ERROR)
        return;
    char line[2048];
    int n = prefix(line, sizeof(line), l, subsystem);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : TD_MIN((size_t)m, sizeof(line) - (size_t)n - 2));
    line[len++] = '\n';
    line[len] = 0;
    pthread_mutex_lock(&rl_mu);
    if (rl_burst > 0 && l > TD_LOG_DEBUG) {
        int64_t now = td_mono_ms();
        flush_expired(now, false);
        rl_slot *s = slot_of(fmt, now);
        if (s) {
            if (now - s->window_start >= rl_interval_ms)
                summarize(s, now);
            s->level = l;
            snprintf(s->subsystem, sizeof(s->subsystem), "%s", subsystem);
            if (s->lines >= (uint32_t)rl_burst) {
                if (s->suppressed++ == 0) {
                    rl_suppressing++;
                    size_t k = TD_MIN(len - 1 - (size_t)n, (size_t)RL_SAMPLE - 1);
                    memcpy(s->sample, line + n, k);
                    s->sample[k] = 0;
                }
                pthread_mutex_unlock(&rl_mu);
                return;
            }
            s->lines++;
        }
    }
    emit(l, line, len);
    pthread_mutex_unlock(&rl_mu);
}
