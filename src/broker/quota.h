/*
 * quota.h: client quotas in force (docs/security.md#quotas), for the protocols. The public API
 * (td_quota_alter, td_quota_list) keeps the configuration; this is the measuring side.
 *
 * Rates are measured as Kafka measures them: per quota entity in force, a sampled rate over
 * QUOTA_SAMPLES windows of QUOTA_WINDOW_MS (what the metrics show). Throttling follows a token
 * bucket of the quota's rate that holds up to QUOTA_BURST_MS of it, as Kafka's controller
 * mutation quota does (KIP-599): a new or rested client may send that much at once, as
 * Kafka's sampled rate lets it (it counts at least QUOTA_SAMPLES - 1 windows of time); past
 * it, each record leaves a debt, and the throttle time is the time the quota takes to pay it
 * back (at most QUOTA_SAMPLES windows a time). Unlike Kafka's sampled rate, whose whole-window
 * steps let a saturating client run about 10 % above its quota for ten seconds and then stop
 * for one, the bucket holds the client to its quota over any stretch of time.
 *
 * Clients that share a quota entity share its measurement: with a quota for user alice, all of
 * alice's connections and client ids are measured together; with the default client-id quota,
 * each client id is measured on its own. Memory is bounded: at most QUOTA_SENSORS_MAX
 * measurements are kept; one idle for an hour is dropped, and past the bound the least
 * recently used goes.
 *
 * Thread-safe. broker_quota_record costs one atomic load when no quota of its key exists.
 */
#ifndef TD_BROKER_QUOTA_H
#define TD_BROKER_QUOTA_H

#include <stdint.h>

#include "tidings.h"

#define QUOTA_SAMPLES 11
#define QUOTA_WINDOW_MS 1000
#define QUOTA_BURST_MS ((QUOTA_SAMPLES - 1) * QUOTA_WINDOW_MS)
#define QUOTA_SENSORS_MAX 16384
#define QUOTA_SENSOR_IDLE_MS (3600 * 1000)

/* The user that quotas know an unauthenticated client by (Kafka's principal name). */
#define QUOTA_ANONYMOUS "ANONYMOUS"

/*
 * Records `amount` (bytes for the byte rates; for request_percentage, the request's time on the
 * loop in percent-seconds: nanoseconds * 1e-7) for the client (user NULL: anonymous; client_id
 * may be NULL or empty) at now_ms (a monotonic clock), and returns how long the client must be
 * throttled, in milliseconds: 0 while its rate is within its quota, or when no quota applies.
 */
int64_t broker_quota_record(td_engine *e, const char *user, const char *client_id, td_quota_key key,
                            double amount, int64_t now_ms);

/* How long the client still owes, in ms, under any of its quotas (0: nothing): the wait
 * before its next request is served, for protocols that delay requests rather than mute a
 * connection (HTTP, whose clients may open a connection per request). */
int64_t broker_quota_debt_ms(td_engine *e, const char *user, const char *client_id, int64_t now_ms);

/* Whether any quota of this key exists (a cheap test before measuring request time). */
bool broker_quota_any(td_engine *e, td_quota_key key);

#endif /* TD_BROKER_QUOTA_H */
