/* clock.c: monotonic and wall clocks. */
#include <time.h>

#include "base/base.h"

int64_t td_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t td_mono_ms(void)
{
    return td_mono_ns() / 1000000;
}

struct timespec td_deadline_ns(clockid_t clock, int64_t ns)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ns = ns > 0 ? ns : 0;
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec += (long)(ns % 1000000000);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int64_t td_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
