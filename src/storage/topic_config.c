/*
 * topic_config.c: topic configuration (defaults, parsing, validation, formatting) and topic name
 * rules. One table describes every key, so that parsing, formatting, the catalog and the
 * documentation cannot drift apart.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "storage/storage.h"

enum kind { K_I64, K_I32, K_FSYNC, K_TSTYPE, K_CLEANUP };

typedef struct key_def {
    const char *key;
    enum kind kind;
    size_t off; /* of the int64_t or int32_t field */
    int64_t min, max;
    const char *rule; /* said when a value is out of range */
} key_def;

#define F(field) offsetof(td_topic_config, field)

static const key_def defs[] = {
    {"retention.ms", K_I64, F(retention_ms), -1, INT64_MAX, "-1 (forever) or >= 0"},
    {"retention.bytes", K_I64, F(retention_bytes), -1, INT64_MAX, "-1 (no limit) or >= 0"},
    {"retention.records", K_I64, F(retention_records), -1, INT64_MAX, "-1 (no limit) or >= 0"},
    {"segment.bytes", K_I64, F(segment_bytes), 1024, INT32_MAX,
     "from 1024 to 2147483647 (index positions are 32-bit)"},
    {"segment.ms", K_I64, F(segment_ms), 1, INT64_MAX, ">= 1"},
    {"fsync", K_FSYNC, 0, 0, 0, "always, none or interval:<ms> with ms >= 1"},
    {"max.message.bytes", K_I32, F(max_message_bytes), 0, INT32_MAX, "from 0 to 2147483647"},
    {"message.timestamp.type", K_TSTYPE, 0, 0, 0, "CreateTime or LogAppendTime"},
    {"cleanup.policy", K_CLEANUP, 0, 0, 0, "delete (the only policy supported)"},
};

static const char *const key_names[] = {
    "retention.ms", "retention.bytes",   "retention.records",      "segment.bytes",
    "segment.ms",   "fsync",             "max.message.bytes",      "message.timestamp.type",
    "cleanup.policy", NULL};

const char *const *td_topic_config_keys(void)
{
    return key_names;
}

void td_topic_config_init(td_topic_config *c)
{
    memset(c, 0, sizeof(*c));
    c->retention_ms = 604800000LL;
    c->retention_bytes = -1;
    c->retention_records = -1;
    c->segment_bytes = 1073741824LL;
    c->segment_ms = 604800000LL;
    c->fsync_policy = TD_FSYNC_ALWAYS;
    c->fsync_interval_ms = 1000;
    c->max_message_bytes = 1048588;
    c->timestamp_type = TD_TS_CREATE_TIME;
}

static const key_def *find_def(const char *key)
{
    for (size_t i = 0; i < TD_ARRAY_LEN(defs); i++)
        if (strcmp(defs[i].key, key) == 0)
            return &defs[i];
    return NULL;
}

/* Parses a whole decimal int64; -1 on anything else. */
static int parse_i64(const char *s, int64_t *out)
{
    if (!*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int apply_one(td_topic_config *c, const char *key, const char *value)
{
    const key_def *d = find_def(key);
    if (!d)
        return td_fail(TD_ECONFIG, "unknown topic configuration key '%s'", key);
    if (!value)
        return td_fail(TD_ECONFIG, "%s needs a value: %s", key, d->rule);
    int64_t v;
    switch (d->kind) {
    case K_I64:
    case K_I32:
        if (parse_i64(value, &v) || v < d->min || v > d->max)
            return td_fail(TD_ECONFIG, "invalid %s '%s': must be %s", key, value, d->rule);
        if (d->kind == K_I64)
            *(int64_t *)((char *)c + d->off) = v;
        else
            *(int32_t *)((char *)c + d->off) = (int32_t)v;
        return 0;
    case K_FSYNC:
        if (strcmp(value, "always") == 0) {
            c->fsync_policy = TD_FSYNC_ALWAYS;
        } else if (strcmp(value, "none") == 0) {
            c->fsync_policy = TD_FSYNC_NONE;
        } else if (strncmp(value, "interval:", 9) == 0 && parse_i64(value + 9, &v) == 0 &&
                   v >= 1) {
            c->fsync_policy = TD_FSYNC_INTERVAL;
            c->fsync_interval_ms = v;
        } else {
            return td_fail(TD_ECONFIG, "invalid fsync '%s': must be %s", value, d->rule);
        }
        return 0;
    case K_TSTYPE:
        if (strcmp(value, "CreateTime") == 0)
            c->timestamp_type = TD_TS_CREATE_TIME;
        else if (strcmp(value, "LogAppendTime") == 0)
            c->timestamp_type = TD_TS_LOG_APPEND_TIME;
        else
            return td_fail(TD_ECONFIG, "invalid message.timestamp.type '%s': must be %s", value,
                           d->rule);
        return 0;
    case K_CLEANUP:
        if (strcmp(value, "delete") != 0)
            return td_fail(TD_ECONFIG, "cleanup.policy=%s is not supported: must be %s", value,
                           d->rule);
        return 0;
    }
    return TD_ECONFIG;
}

int td_topic_config_apply(td_topic_config *cfg, const td_config_entry *entries, size_t n)
{
    td_topic_config c = *cfg;
    for (size_t i = 0; i < n; i++) {
        if (!entries[i].key)
            return td_fail(TD_ECONFIG, "configuration entry %zu has no key", i);
        int rc = apply_one(&c, entries[i].key, entries[i].value);
        if (rc)
            return rc;
    }
    *cfg = c;
    return 0;
}

int td_topic_config_get(const td_topic_config *c, const char *key, char *buf, size_t len)
{
    const key_def *d = find_def(key);
    if (!d)
        return td_fail(TD_ENOTFOUND, "unknown topic configuration key '%s'", key);
    int n = 0;
    switch (d->kind) {
    case K_I64:
        n = snprintf(buf, len, "%" PRId64, *(const int64_t *)((const char *)c + d->off));
        break;
    case K_I32:
        n = snprintf(buf, len, "%" PRId32, *(const int32_t *)((const char *)c + d->off));
        break;
    case K_FSYNC:
        if (c->fsync_policy == TD_FSYNC_INTERVAL)
            n = snprintf(buf, len, "interval:%" PRId64, c->fsync_interval_ms);
        else
            n = snprintf(buf, len, "%s", c->fsync_policy == TD_FSYNC_NONE ? "none" : "always");
        break;
    case K_TSTYPE:
        n = snprintf(buf, len, "%s",
                     c->timestamp_type == TD_TS_LOG_APPEND_TIME ? "LogAppendTime" : "CreateTime");
        break;
    case K_CLEANUP:
        n = snprintf(buf, len, "delete");
        break;
    }
    if (n < 0 || (size_t)n >= len)
        return TD_ETOOBIG;
    return 0;
}

bool td_topic_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

int td_topic_name_validate(const char *name)
{
    if (!name || !*name)
        return td_fail(TD_ENAME, "topic name is empty");
    size_t n = strlen(name);
    if (n > TD_TOPIC_NAME_MAX)
        return td_fail(TD_ENAME, "topic name is %zu characters long: at most %d are allowed", n,
                       TD_TOPIC_NAME_MAX);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return td_fail(TD_ENAME, "topic name '%s' is not allowed: '.' and '..' are reserved",
                       name);
    for (size_t i = 0; i < n; i++) {
        if (!td_topic_name_char(name[i]))
            return td_fail(TD_ENAME,
                           "invalid topic name '%s': character %zu is not allowed; only "
                           "[A-Za-z0-9._-] are",
                           name, i + 1);
    }
    return 0;
}
