/*
 * metrics.h: the metrics registry every subsystem counts into (docs/design.md §7), rendered
 * in the Prometheus text exposition format (version 0.0.4) on HTTP /metrics.
 *
 * A family is one metric name with its type, help and label names; a series is one set of
 * label values in a family. Counting is one atomic add on a series, so hot paths look their
 * series up once (when a topic is opened, when a listener starts) and keep the pointer: series
 * live until the registry is freed. Removing a series (a deleted topic) hides it from the output
 * and zeroes it; asking for the same labels again brings it back from zero, which Prometheus
 * reads as a counter reset.
 *
 * Values that are cheaper to read when scraped than to keep up to date (bytes on disk, group
 * lag, offsets) come from collectors: functions the registry calls at each render, which write
 * whole families with td_metrics_text_* below.
 *
 * Threads: every function is thread-safe. Renders call collectors without holding the lock
 * that series lookups take, so a collector may take locks of its own subsystem even if that
 * subsystem looks series up while holding them.
 */
#ifndef TD_BASE_METRICS_H
#define TD_BASE_METRICS_H

#include "base/base.h"

typedef struct td_metrics td_metrics;
typedef struct td_metric_family td_metric_family;
typedef struct td_metric td_metric;

typedef enum td_metric_type {
    TD_COUNTER,
    TD_GAUGE,
    TD_HISTOGRAM, /* of durations: observed in nanoseconds, rendered in seconds */
} td_metric_type;

#define TD_METRIC_MAX_LABELS 4
#define TD_METRIC_MAX_BUCKETS 20

int td_metrics_new(td_metrics **out);
void td_metrics_free(td_metrics *m);

/*
 * The family called name (created at the first call; later calls with the same name return it
 * and ignore the rest). labels: comma-separated label names ("topic,partition"), NULL or "" for
 * none. bounds: a histogram's bucket upper bounds in seconds, increasing (NULL: the default
 * latency buckets, 100 us to 10 s). NULL on allocation failure or a bad argument.
 */
td_metric_family *td_metrics_family(td_metrics *m, td_metric_type type, const char *name,
                                    const char *help, const char *labels, const double *bounds,
                                    size_t nbounds);

/* The series with these label values (as many as the family has labels), created at the first
 * call. NULL on allocation failure; every counting function accepts NULL and does nothing. */
td_metric *td_metric_get(td_metric_family *f, const char *const *values);
/* One-label and no-label shortcuts. */
td_metric *td_metric_get1(td_metric_family *f, const char *value);
/* Hides and zeroes every series whose first label is value (all of a deleted topic's). */
void td_metric_remove_first(td_metric_family *f, const char *value);

void td_counter_add(td_metric *s, uint64_t n);
void td_gauge_set(td_metric *s, int64_t v);
void td_gauge_add(td_metric *s, int64_t d);
void td_histogram_observe(td_metric *s, int64_t ns);
/* A counter's or gauge's value (tests, and rates computed inside the broker). */
int64_t td_metric_value(const td_metric *s);

/* Rendered text; err keeps the first allocation failure, after which appends do nothing. */
typedef struct td_metrics_out {
    td_buf buf;
    int err;
} td_metrics_out;

/* A collector writes whole families into out at each render. */
typedef void (*td_metrics_collect_fn)(void *arg, td_metrics_out *out);
int td_metrics_add_collector(td_metrics *m, td_metrics_collect_fn fn, void *arg);
/* Removes it; returns once no render is running it. */
void td_metrics_remove_collector(td_metrics *m, td_metrics_collect_fn fn, void *arg);

/* Renders every family and collector into out (appending; init it zeroed). 0 or -ENOMEM. */
int td_metrics_render(td_metrics *m, td_metrics_out *out);

/* For collectors: a family's "# HELP" and "# TYPE" lines, then samples. Label values are
 * escaped as the format requires (a byte that is not UTF-8 is written as \xNN); nlabels pairs
 * of names and values. */
void td_metrics_text_family(td_metrics_out *out, const char *name, const char *help,
                            td_metric_type type);
void td_metrics_text_sample(td_metrics_out *out, const char *name, const char *const *label_names,
                            const char *const *label_values, size_t nlabels, double value);

/* A label value for a binary name (a Redis key or group name), malloc'd: NUL and backslash
 * become \x00 and \x5c, so that different names give different values. NULL without memory. */
char *td_metrics_label_of(const void *name, size_t n);

#endif /* TD_BASE_METRICS_H */
