/*
 * queue_policy.c: queue policies (td_queue_policy in tidings.h: the settings, their ranges and
 * their text form in the state records) and delivery ids, for queue groups and the Redis
 * groups' XGROUP POLICY.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/health.h"
#include "broker/queue_int.h"

/* ---------------------------------------------------------------------------------------------
 * Policy
 */
static const char *const policy_keys[] = {"ack.timeout.ms",
                                          "max.deliveries",
                                          "backoff.initial.ms",
                                          "backoff.multiplier",
                                          "backoff.max.ms",
                                          "backoff.jitter",
                                          "dead.letter.topic",
                                          "ordering",
                                          "max.in.flight",
                                          "max.in.flight.per.consumer",
                                          "start",
                                          "circuit.failure.rate",
                                          "circuit.window.ms",
                                          "circuit.min.calls",
                                          "circuit.open.ms",
                                          "circuit.half.open.trials",
                                          "forward.to",
                                          NULL};

void td_queue_policy_init(td_queue_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->ack_timeout_ms = 30000;
    p->max_deliveries = 5;
    p->backoff_initial_ms = 1000;
    p->backoff_multiplier = 2.0;
    p->backoff_max_ms = 60000;
    p->backoff_jitter = 0.1;
    p->ordering = TD_QUEUE_UNORDERED;
    p->max_in_flight = 1000;
    p->max_in_flight_per_consumer = 100;
    p->start_latest = 0;
    p->circuit_failure_rate = 0;
    p->circuit_window_ms = 60000;
    p->circuit_min_calls = 20;
    p->circuit_open_ms = 30000;
    p->circuit_half_open_trials = 3;
}

const char *const *td_queue_policy_keys(void)
{
    return policy_keys;
}

static bool parse_int(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = v && *v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || errno || *end || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

static bool parse_double(const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double x = v && *v ? strtod(v, &end) : 0;
    if (!v || !*v || errno || *end || !(x >= lo && x <= hi))
        return false;
    *out = x;
    return true;
}

static int apply_one(td_queue_policy *p, const char *k, const char *v)
{
    int64_t i;
    double d;
#define BAD(rule) td_fail(TD_ECONFIG, "queue setting %s=%s: %s", k, v ? v : "(none)", rule)
    if (!strcmp(k, "ack.timeout.ms")) {
        if (!parse_int(v, 1, 43200000, &i))
            return BAD("must be 1 to 43200000 (12 hours)");
        p->ack_timeout_ms = i;
    } else if (!strcmp(k, "max.deliveries")) {
        if (!parse_int(v, 1, 1000, &i))
            return BAD("must be 1 to 1000");
        p->max_deliveries = (int32_t)i;
    } else if (!strcmp(k, "backoff.initial.ms")) {
        if (!parse_int(v, 0, 86400000, &i))
            return BAD("must be 0 to 86400000 (a day)");
        p->backoff_initial_ms = i;
    } else if (!strcmp(k, "backoff.multiplier")) {
        if (!parse_double(v, 1, 100, &d))
            return BAD("must be 1 to 100");
        p->backoff_multiplier = d;
    } else if (!strcmp(k, "backoff.max.ms")) {
        if (!parse_int(v, 0, 86400000, &i))
            return BAD("must be 0 to 86400000 (a day)");
        p->backoff_max_ms = i;
    } else if (!strcmp(k, "backoff.jitter")) {
        if (!parse_double(v, 0, 1, &d))
            return BAD("must be 0 to 1");
        p->backoff_jitter = d;
    } else if (!strcmp(k, "dead.letter.topic")) {
        if (!v || (*v && td_topic_name_validate(v) != 0))
            return BAD("must be a topic name, or empty for <topic>.dlq");
        snprintf(p->dead_letter_topic, sizeof(p->dead_letter_topic), "%s", v);
    } else if (!strcmp(k, "forward.to")) {
        if (!v || (*v && td_topic_name_validate(v) != 0))
            return BAD("must be a topic name, or empty for none");
        snprintf(p->forward_to, sizeof(p->forward_to), "%s", v);
    } else if (!strcmp(k, "ordering")) {
        if (!v || (strcmp(v, "none") && strcmp(v, "key")))
            return BAD("must be none or key");
        p->ordering = strcmp(v, "key") ? TD_QUEUE_UNORDERED : TD_QUEUE_BY_KEY;
    } else if (!strcmp(k, "max.in.flight")) {
        if (!parse_int(v, 1, 100000, &i))
            return BAD("must be 1 to 100000");
        p->max_in_flight = (int32_t)i;
    } else if (!strcmp(k, "max.in.flight.per.consumer")) {
        if (!parse_int(v, 1, 100000, &i))
            return BAD("must be 1 to 100000");
        p->max_in_flight_per_consumer = (int32_t)i;
    } else if (!strcmp(k, "start")) {
        if (!v || (strcmp(v, "earliest") && strcmp(v, "latest")))
            return BAD("must be earliest or latest");
        p->start_latest = !strcmp(v, "latest");
    } else if (!strcmp(k, "circuit.failure.rate")) {
        if (!parse_int(v, 0, 100, &i))
            return BAD("must be 0 (no circuit breaker) to 100 (percent)");
        p->circuit_failure_rate = (int32_t)i;
    } else if (!strcmp(k, "circuit.window.ms")) {
        if (!parse_int(v, 100, 86400000, &i))
            return BAD("must be 100 to 86400000 (a day)");
        p->circuit_window_ms = i;
    } else if (!strcmp(k, "circuit.min.calls")) {
        if (!parse_int(v, 1, 1000000, &i))
            return BAD("must be 1 to 1000000");
        p->circuit_min_calls = (int32_t)i;
    } else if (!strcmp(k, "circuit.open.ms")) {
        if (!parse_int(v, 10, 86400000, &i))
            return BAD("must be 10 to 86400000 (a day)");
        p->circuit_open_ms = i;
    } else if (!strcmp(k, "circuit.half.open.trials")) {
        if (!parse_int(v, 1, 1000, &i))
            return BAD("must be 1 to 1000");
        p->circuit_half_open_trials = (int32_t)i;
    } else {
        return td_fail(TD_ECONFIG, "unknown queue setting '%s'", k);
    }
#undef BAD
    return 0;
}

int td_queue_policy_apply(td_queue_policy *p, const td_config_entry *entries, size_t n)
{
    td_queue_policy c = *p;
    for (size_t i = 0; i < n; i++) {
        if (!entries[i].key)
            return td_fail(TD_ECONFIG, "queue setting %zu has no key", i);
        int rc = apply_one(&c, entries[i].key, entries[i].value);
        if (rc)
            return rc;
    }
    if (c.backoff_max_ms < c.backoff_initial_ms)
        return td_fail(TD_ECONFIG,
                       "backoff.max.ms (%" PRId64 ") is below backoff.initial.ms (%" PRId64 ")",
                       c.backoff_max_ms, c.backoff_initial_ms);
    *p = c;
    return 0;
}

int td_queue_policy_get(const td_queue_policy *p, const char *key, char *buf, size_t len)
{
    int n;
    if (!strcmp(key, "ack.timeout.ms"))
        n = snprintf(buf, len, "%" PRId64, p->ack_timeout_ms);
    else if (!strcmp(key, "max.deliveries"))
        n = snprintf(buf, len, "%" PRId32, p->max_deliveries);
    else if (!strcmp(key, "backoff.initial.ms"))
        n = snprintf(buf, len, "%" PRId64, p->backoff_initial_ms);
    else if (!strcmp(key, "backoff.multiplier"))
        n = snprintf(buf, len, "%g", p->backoff_multiplier);
    else if (!strcmp(key, "backoff.max.ms"))
        n = snprintf(buf, len, "%" PRId64, p->backoff_max_ms);
    else if (!strcmp(key, "backoff.jitter"))
        n = snprintf(buf, len, "%g", p->backoff_jitter);
    else if (!strcmp(key, "dead.letter.topic"))
        n = snprintf(buf, len, "%s", p->dead_letter_topic);
    else if (!strcmp(key, "forward.to"))
        n = snprintf(buf, len, "%s", p->forward_to);
    else if (!strcmp(key, "ordering"))
        n = snprintf(buf, len, "%s", p->ordering == TD_QUEUE_BY_KEY ? "key" : "none");
    else if (!strcmp(key, "max.in.flight"))
        n = snprintf(buf, len, "%" PRId32, p->max_in_flight);
    else if (!strcmp(key, "max.in.flight.per.consumer"))
        n = snprintf(buf, len, "%" PRId32, p->max_in_flight_per_consumer);
    else if (!strcmp(key, "start"))
        n = snprintf(buf, len, "%s", p->start_latest ? "latest" : "earliest");
    else if (!strcmp(key, "circuit.failure.rate"))
        n = snprintf(buf, len, "%" PRId32, p->circuit_failure_rate);
    else if (!strcmp(key, "circuit.window.ms"))
        n = snprintf(buf, len, "%" PRId64, p->circuit_window_ms);
    else if (!strcmp(key, "circuit.min.calls"))
        n = snprintf(buf, len, "%" PRId32, p->circuit_min_calls);
    else if (!strcmp(key, "circuit.open.ms"))
        n = snprintf(buf, len, "%" PRId64, p->circuit_open_ms);
    else if (!strcmp(key, "circuit.half.open.trials"))
        n = snprintf(buf, len, "%" PRId32, p->circuit_half_open_trials);
    else
        return td_fail(TD_ENOTFOUND, "unknown queue setting '%s'", key);
    return n < 0 || (size_t)n >= len ? TD_ETOOBIG : 0;
}

int queue_policy_format(const td_queue_policy *p, char *buf, size_t len)
{
    size_t at = 0;
    for (const char *const *k = policy_keys; *k; k++) {
        char v[TD_TOPIC_NAME_MAX + 1];
        if (td_queue_policy_get(p, *k, v, sizeof(v)) != 0)
            return TD_ETOOBIG;
        int n = snprintf(buf + at, len - at, "%s=%s\n", *k, v);
        if (n < 0 || (size_t)n >= len - at)
            return TD_ETOOBIG;
        at += (size_t)n;
    }
    return 0;
}

void queue_policy_parse(const char *text, td_queue_policy *p)
{
    td_queue_policy_init(p);
    char line[512];
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t n = nl ? (size_t)(nl - text) : strlen(text);
        if (n < sizeof(line)) {
            memcpy(line, text, n);
            line[n] = 0;
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = 0;
                if (apply_one(p, line, eq + 1) != 0)
                    td_error_clear();
            }
        }
        text += n + (nl ? 1 : 0);
    }
}

/* The dead-letter topic of the group's events from `topic`: false when <topic>.dlq is too long
 * a name (check_dlq refuses that for a group on one topic; a wildcard group can meet it). */
bool queue_dlq_name(const char *configured, const char *topic, char *buf, size_t len)
{
    if (configured[0]) {
        snprintf(buf, len, "%s", configured);
        return true;
    }
    /* <topic>.dlq is the topic of the Redis key <key>.dlq (docs/redis.md#keys-and-topics): the
     * same bytes, but for the topics of the keys "", "." and "..", whose names (%, %2E,
     * %2E%2E) followed by ".dlq" are not names, while .dlq, ..dlq and ...dlq are. A pattern
     * (a group's description: "orders.*.dlq") is no name, and gets ".dlq" as it is. */
    /* A system topic's ($sys.groups, or a pattern of them) go to sys.groups.dlq: no client
     * makes a topic under $sys. (docs/health.md). */
    if (health_topic_name(topic))
        topic++;
    uint8_t key[TD_TOPIC_NAME_MAX + 4];
    char name[TD_TOPIC_NAME_MAX + 1];
    size_t n = strlen(topic);
    ssize_t kn = td_name_to_key(topic, n, key, TD_TOPIC_NAME_MAX);
    if (kn < 0) {
        if (n + 4 > TD_TOPIC_NAME_MAX)
            return false;
        snprintf(buf, len, "%s.dlq", topic);
        return true;
    }
    memcpy(key + kn, ".dlq", 4);
    if (td_key_to_name(key, (size_t)kn + 4, name) < 0)
        return false;
    snprintf(buf, len, "%s", name);
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Ids
 */
static bool parse_part(const char **p, int64_t max, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (max - (*s - '0')) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    *p = s;
    return true;
}

bool queue_id_parse(const char *id, int64_t *topic_id, int32_t *partition, int64_t *offset,
                    int32_t *deliveries)
{
    const char *p = id;
    int64_t t, pa, o, d;
    if (!id || !parse_part(&p, INT64_MAX, &t) || *p++ != '.' || !parse_part(&p, INT32_MAX, &pa) ||
        *p++ != '.' || !parse_part(&p, INT64_MAX, &o) || *p++ != '.' ||
        !parse_part(&p, INT32_MAX, &d) || *p)
        return false;
    *topic_id = t;
    *partition = (int32_t)pa;
    *offset = o;
    *deliveries = (int32_t)d;
    return true;
}

/* Writes v in decimal at w; returns the end. */
