/*
 * bench_common.h: the helpers the embedded-API benchmarks (bench_*.c) share: clocks, settings
 * from the environment, and exiting on an error.
 */
#ifndef TD_BENCH_COMMON_H
#define TD_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tidings.h"

/* Wall-clock seconds (monotonic). */
static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The CPU time of the whole process, every thread's, in seconds. */
static inline double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The integer setting `name` from the environment, or def when it is unset or empty. */
static inline long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? atol(v) : def;
}

/* Exits with the error's text when rc is one (< 0). */
static inline void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s (%s)\n", what, td_strerror(rc), td_last_error());
        exit(1);
    }
}

#endif /* TD_BENCH_COMMON_H */
