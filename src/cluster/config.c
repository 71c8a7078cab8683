/*
 * config.c: the cluster.* and broker.* settings (docs/configuration.md#cluster).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "tidings.h"

const char *const cluster_config_keys[] = {
    "cluster.coordinator",        "broker.id", "broker.rack", "cluster.session.timeout.ms",
    "cluster.connect.timeout.ms", NULL};

static int parse_int(const char *key, const char *value, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(value, &end, 10);
    if (errno || end == value || *end || x < lo || x > hi)
        return td_fail(TD_ECONFIG, "%s: expected %" PRId64 " to %" PRId64 ", got '%s'", key, lo, hi,
                       value);
    *out = x;
    return 0;
}

int cluster_config_set(td_cluster_config *c, const char *key, const char *value)
{
    int64_t n = 0;
    int rc;
    if (!strcmp(key, "cluster.coordinator")) {
        if (strlen(value) >= sizeof(c->coordinator))
            return td_fail(TD_ECONFIG, "%s: at most %zu bytes", key, sizeof(c->coordinator) - 1);
        if (value[0] && strncmp(value, "etcd://", 7) != 0)
            return td_fail(TD_ECONFIG,
                           "%s: expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX] "
                           "(or nothing: a single broker), got '%s'",
                           key, value);
        snprintf(c->coordinator, sizeof(c->coordinator), "%s", value);
    } else if (!strcmp(key, "broker.rack")) {
        if (strlen(value) >= sizeof(c->rack))
            return td_fail(TD_ECONFIG, "%s: at most %zu bytes", key, sizeof(c->rack) - 1);
        snprintf(c->rack, sizeof(c->rack), "%s", value);
    } else if (!strcmp(key, "broker.id")) {
        if ((rc = parse_int(key, value, 0, INT32_MAX, &n)) != 0)
            return rc;
        c->broker_id = (int32_t)n;
    } else if (!strcmp(key, "cluster.session.timeout.ms")) {
        if ((rc = parse_int(key, value, 2000, 600000, &n)) != 0)
            return rc;
        c->session_timeout_ms = n;
    } else if (!strcmp(key, "cluster.connect.timeout.ms")) {
        if ((rc = parse_int(key, value, 100, 3600000, &n)) != 0)
            return rc;
        c->connect_timeout_ms = n;
    } else {
        return 1;
    }
    return 0;
}
