/*
 * log.c: one line per event, "2026-11-24T21:40:00.123Z INFO storage: message k=v", written with
 * a single write(2) so that lines from several threads never interleave.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

static int level = TD_LOG_INFO;
static td_log_sink sink;
static void *sink_arg;

static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

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
    sink = s;
    sink_arg = arg;
}

void td_log(int l, const char *subsystem, const char *fmt, ...)
{
    if (l < td_log_get_level() || l < TD_LOG_DEBUG || l > TD_LOG_ERROR)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[l], subsystem);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : TD_MIN((size_t)m, sizeof(line) - (size_t)n - 2));
    line[len++] = '\n';
    line[len] = 0;
    if (sink) {
        line[len - 1] = 0;
        sink(l, line, sink_arg);
        return;
    }
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
