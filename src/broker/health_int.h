/*
 * health_int.h: what health.c and health_check.c share: the periodic checks' memory, which only
 * the health thread touches.
 */
#ifndef TD_BROKER_HEALTH_INT_H
#define TD_BROKER_HEALTH_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/broker.h"

/* A group's lag on a topic found over a threshold, until it recovers. */
typedef struct health_lag_over {
    char *group, *topic;
    bool seen; /* in the current pass */
} health_lag_over;

typedef struct health_checks {
    bool disk_high;
    /* "topic/partition" of the partitions said offline (dropped once they are not). */
    char **offline;
    size_t noffline, offline_cap;
    health_lag_over *over;
    size_t nover, over_cap;
} health_checks;

/* The checks' memory starts zeroed (its struct is calloc'd with the module's). */
void health_checks_free(health_checks *c);
/* One pass of every check (the health thread's, every health.check.interval.ms). */
void health_check_all(td_engine *e, health_checks *c);

#endif /* TD_BROKER_HEALTH_INT_H */
