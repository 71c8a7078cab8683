/*
 * topic_config.c: topic configuration (defaults, parsing, validation, formatting, the type and
 * meaning of each key) and topic name rules. One table describes every key, so that parsing,
 * formatting, the catalog, DescribeConfigs and the documentation cannot drift apart.
 *
 * The keys are Kafka 3.x's topic configuration (LogConfig) plus tidings' own (`fsync`,
 * `retention.records`). Values are validated as Kafka validates them (types, ranges, lists);
 * each key either works or is kept and reported with no effect, for reasons docs/storage.md
 * gives; only what cannot be honoured (compaction, tiered storage) is refused, with the reason.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "storage/storage.h"

enum kind {
    K_I64,
    K_I32,
    K_BOOL,
    K_DOUBLE,
    K_FSYNC,
    K_TSTYPE,
    K_CLEANUP,
    K_COMPRESSION,
    K_FORMAT_VERSION,
    K_THROTTLED,
    K_STRATEGY,
    K_SVMODE,
};

typedef struct key_def {
    const char *key;
    enum kind kind;
    size_t off; /* of the field, for the kinds that have one */
    int64_t min, max;
    const char *rule; /* said when a value is out of range */
    int type;         /* enum topic_config_type, Kafka's type for DescribeConfigs */
    const char *doc;  /* one line, for DescribeConfigs */
} key_def;

#define F(field) offsetof(td_topic_config, field)
#define LMAX INT64_MAX
#define STRATEGY_RULE                                                                             \
    "TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy (or Confluent's class "  \
    "names io.confluent.kafka.serializers.subject.*)"

/* The subject name strategies' names (TD_SUBJECT_*), as Confluent's serializers' classes. */
static const char *const strategy_names[] = {"TopicNameStrategy", "RecordNameStrategy",
                                             "TopicRecordNameStrategy"};
#define STRATEGY_CLASS_PREFIX "io.confluent.kafka.serializers.subject."

static int strategy_parse(const char *value)
{
    if (strncmp(value, STRATEGY_CLASS_PREFIX, strlen(STRATEGY_CLASS_PREFIX)) == 0)
        value += strlen(STRATEGY_CLASS_PREFIX);
    for (int i = 0; i < (int)(sizeof(strategy_names) / sizeof(strategy_names[0])); i++)
        if (strcmp(value, strategy_names[i]) == 0)
            return i;
    return -1;
}

/* In documentation order: tidings' keys first, then the rest of Kafka's alphabetically. */
static const key_def defs[] = {
    {"retention.ms", K_I64, F(retention_ms), -1, LMAX, "-1 (forever) or >= 0", TCT_LONG,
     "How long events are kept, in ms (-1: forever). A segment is deleted once its newest event "
     "is older."},
    {"retention.bytes", K_I64, F(retention_bytes), -1, LMAX, "-1 (no limit) or >= 0", TCT_LONG,
     "The most bytes a partition keeps (-1: no limit); the oldest segments go first."},
    {"retention.records", K_I64, F(retention_records), -1, LMAX, "-1 (no limit) or >= 0",
     TCT_LONG, "The most events a partition keeps (-1: no limit); a tidings setting."},
    {"segment.bytes", K_I64, F(segment_bytes), 1024, INT32_MAX,
     "from 1024 to 2147483647 (index positions are 32-bit)", TCT_INT,
     "The size at which the active segment file is closed and a new one started."},
    {"segment.ms", K_I64, F(segment_ms), 1, LMAX, ">= 1", TCT_LONG,
     "The age at which the active segment is closed even if it is not full."},
    {"fsync", K_FSYNC, 0, 0, 0, "always, none or interval:<ms> with ms >= 1", TCT_STRING,
     "When appends are fsynced: always (before they are acknowledged or visible), "
     "interval:<ms>, or none; a tidings setting."},
    {"key.index", K_BOOL, F(key_index), 0, 0, "true or false", TCT_BOOLEAN,
     "Every event indexed by key on disk, for reads of one key's events and expected versions "
     "(docs/event-sourcing.md); a tidings setting."},
    {"key.index.memory.bytes", K_I64, F(key_index_memory_bytes), 65536, LMAX, ">= 65536",
     TCT_LONG,
     "The most memory the key index of a partition's active segment may take; the segment "
     "rolls before it would pass it. A tidings setting."},
    {"trace.index", K_BOOL, F(trace_index), 0, 0, "true or false", TCT_BOOLEAN,
     "Events indexed on disk by trace id, span id and cause, for reads of a trace and of what "
     "an event caused (docs/tracing.md); never on internal topics. A tidings setting."},
    {"trace.index.memory.bytes", K_I64, F(trace_index_memory_bytes), 65536, LMAX, ">= 65536",
     TCT_LONG,
     "The most memory the trace index of a partition's active segment may take; the segment "
     "rolls before it would pass it. A tidings setting."},
    {"delivery.delay.ms", K_I64, F(delivery_delay_ms), 0, 315576000000LL,
     "from 0 to 315576000000 (ten years)", TCT_LONG,
     "How long after its timestamp queue groups deliver an event that names no delivery time "
     "of its own (docs/queues.md#delayed-delivery); 0: at once. A tidings setting."},
    {"max.message.bytes", K_I32, F(max_message_bytes), 0, INT32_MAX, "from 0 to 2147483647",
     TCT_INT, "The largest record batch the topic accepts."},
    {"message.timestamp.type", K_TSTYPE, 0, 0, 0, "CreateTime or LogAppendTime", TCT_STRING,
     "CreateTime (the producer's timestamps) or LogAppendTime (the broker's clock)."},
    {"cleanup.policy", K_CLEANUP, 0, 0, 0, "delete, compact or compact,delete", TCT_LIST,
     "delete: retention deletes old segments; compact: the cleaner keeps the latest record of "
     "each key; both: compacted, and old segments deleted by retention."},
    {"compression.type", K_COMPRESSION, 0, 0, 0,
     "one of producer, uncompressed, gzip, snappy, lz4, zstd", TCT_STRING,
     "producer keeps each batch's codec; any other value recompresses every batch on append."},
    {"min.insync.replicas", K_I32, F(min_insync_replicas), 1, INT32_MAX, ">= 1", TCT_INT,
     "Replicas that must have an acks=all write; above 1 such writes fail with "
     "NOT_ENOUGH_REPLICAS (a single broker has one replica)."},
    {"message.timestamp.difference.max.ms", K_I64, F(timestamp_difference_max_ms), 0, LMAX,
     ">= 0", TCT_LONG,
     "How far a CreateTime record's timestamp may be from the broker's clock, either way."},
    {"message.timestamp.before.max.ms", K_I64, F(timestamp_before_max_ms), 0, LMAX, ">= 0",
     TCT_LONG, "How far a CreateTime record's timestamp may lie behind the broker's clock."},
    {"message.timestamp.after.max.ms", K_I64, F(timestamp_after_max_ms), 0, LMAX, ">= 0",
     TCT_LONG, "How far a CreateTime record's timestamp may lie ahead of the broker's clock."},
    {"delete.retention.ms", K_I64, F(delete_retention_ms), 0, LMAX, ">= 0", TCT_LONG,
     "How long a compacted topic's tombstone stays after the cleaning that first kept it."},
    {"file.delete.delay.ms", K_I64, F(file_delete_delay_ms), 0, LMAX, ">= 0", TCT_LONG,
     "Kept; segments are deleted at once (readers hold their own references)."},
    {"flush.messages", K_I64, F(flush_messages), 1, LMAX, ">= 1", TCT_LONG,
     "Kept; the fsync key decides when appends are synced (always, by default)."},
    {"flush.ms", K_I64, F(flush_ms), 0, LMAX, ">= 0", TCT_LONG,
     "Kept; the fsync key decides when appends are synced (always, by default)."},
    {"follower.replication.throttled.replicas", K_THROTTLED, F(follower_throttled_replicas), 0,
     0, "empty, * or partition:broker pairs separated by commas", TCT_LIST,
     "Kept; a single broker has no followers to throttle."},
    {"index.interval.bytes", K_I32, F(index_interval_bytes), 0, INT32_MAX, ">= 0", TCT_INT,
     "Kept; the offset index has an entry per batch's position as tidings builds it."},
    {"leader.replication.throttled.replicas", K_THROTTLED, F(leader_throttled_replicas), 0, 0,
     "empty, * or partition:broker pairs separated by commas", TCT_LIST,
     "Kept; a single broker has no replication to throttle."},
    {"local.retention.bytes", K_I64, F(local_retention_bytes), -2, LMAX, ">= -2", TCT_LONG,
     "Kept; only meaningful with tiered storage, which tidings does not have."},
    {"local.retention.ms", K_I64, F(local_retention_ms), -2, LMAX, ">= -2", TCT_LONG,
     "Kept; only meaningful with tiered storage, which tidings does not have."},
    {"max.compaction.lag.ms", K_I64, F(max_compaction_lag_ms), 1, LMAX, ">= 1", TCT_LONG,
     "The longest a record of a compacted topic stays ineligible for compaction: the active "
     "segment rolls by it, and a partition past it is cleaned whatever its dirty ratio."},
    {"message.downconversion.enable", K_BOOL, F(message_downconversion_enable), 0, 0,
     "true or false", TCT_BOOLEAN,
     "Kept; every served Fetch version reads record batch v2, so nothing is down-converted."},
    {"message.format.version", K_FORMAT_VERSION, 0, 0, 0, "a Kafka version such as 2.8 or 3.0-IV1",
     TCT_STRING, "Accepted and ignored, as in Kafka 3: batches are always v2."},
    {"min.cleanable.dirty.ratio", K_DOUBLE, F(min_cleanable_dirty_ratio), 0, 1,
     "from 0 to 1", TCT_DOUBLE,
     "The share of dirty bytes at which the cleaner compacts a partition."},
    {"min.compaction.lag.ms", K_I64, F(min_compaction_lag_ms), 0, LMAX, ">= 0", TCT_LONG,
     "The least time a record stays uncompacted (its segment must be older)."},
    {"preallocate", K_BOOL, F(preallocate), 0, 0, "true or false", TCT_BOOLEAN,
     "Kept; segment files grow as they are written."},
    {"remote.storage.enable", K_BOOL, F(remote_storage_enable), 0, 0,
     "false (tiered storage is not available)", TCT_BOOLEAN,
     "false: tiered storage is not available (true is refused)."},
    {"segment.index.bytes", K_I32, F(segment_index_bytes), 4, INT32_MAX, ">= 4", TCT_INT,
     "Kept; the active segment's index lives in memory and is written whole at a seal."},
    {"segment.jitter.ms", K_I64, F(segment_jitter_ms), 0, LMAX, ">= 0", TCT_LONG,
     "Kept; segments roll at exactly segment.ms."},
    {"unclean.leader.election.enable", K_BOOL, F(unclean_leader_election_enable), 0, 0,
     "true or false", TCT_BOOLEAN, "Kept; a single broker is the only replica of each partition."},
    /* Schema enforcement (docs/schemas.md). The confluent.* keys are Confluent Server's names
     * for the same settings: each is a second name of its field, so setting either changes
     * both, and both are described and reported. */
    {"key.schema.validation", K_BOOL, F(key_schema_validation), 0, 0, "true or false",
     TCT_BOOLEAN,
     "Produced keys must be in the schema registry's wire format with a schema id registered "
     "under the key subject."},
    {"value.schema.validation", K_BOOL, F(value_schema_validation), 0, 0, "true or false",
     TCT_BOOLEAN,
     "Produced values must be in the schema registry's wire format with a schema id registered "
     "under the value subject (HTTP and Redis: JSON validated against its JSON Schema)."},
    {"key.subject.name.strategy", K_STRATEGY, F(key_subject_strategy), 0, 0, STRATEGY_RULE,
     TCT_STRING, "How the key subject is named: TopicNameStrategy (<topic>-key), "
     "RecordNameStrategy or TopicRecordNameStrategy."},
    {"value.subject.name.strategy", K_STRATEGY, F(value_subject_strategy), 0, 0, STRATEGY_RULE,
     TCT_STRING, "How the value subject is named: TopicNameStrategy (<topic>-value), "
     "RecordNameStrategy or TopicRecordNameStrategy."},
    {"schema.validation.mode", K_SVMODE, 0, 0, 0, "id or full", TCT_STRING,
     "id: the wire header's schema id must be registered under the subject; full: the payload "
     "must also be valid against that schema."},
    {"confluent.key.schema.validation", K_BOOL, F(key_schema_validation), 0, 0, "true or false",
     TCT_BOOLEAN, "Confluent Server's name of key.schema.validation (the same setting)."},
    {"confluent.value.schema.validation", K_BOOL, F(value_schema_validation), 0, 0,
     "true or false", TCT_BOOLEAN,
     "Confluent Server's name of value.schema.validation (the same setting)."},
    {"confluent.key.subject.name.strategy", K_STRATEGY, F(key_subject_strategy), 0, 0,
     STRATEGY_RULE, TCT_STRING,
     "Confluent Server's name of key.subject.name.strategy (the same setting)."},
    {"confluent.value.subject.name.strategy", K_STRATEGY, F(value_subject_strategy), 0, 0,
     STRATEGY_RULE, TCT_STRING,
     "Confluent Server's name of value.subject.name.strategy (the same setting)."},
};

static const char *key_names[TD_ARRAY_LEN(defs) + 1];

static void fill_key_names(void)
{
    for (size_t i = 0; i < TD_ARRAY_LEN(defs); i++)
        key_names[i] = defs[i].key;
}

const char *const *td_topic_config_keys(void)
{
    /* Filled once from the table; every fill writes the same pointers, so a race between two
     * first calls is benign, but it is still done under pthread_once for the sanitizers. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fill_key_names);
    return key_names;
}

static const key_def *find_def(const char *key)
{
    for (size_t i = 0; i < TD_ARRAY_LEN(defs); i++)
        if (strcmp(defs[i].key, key) == 0)
            return &defs[i];
    return NULL;
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
    /* Kafka 3.x's defaults. */
    c->compression_type = TD_TOPIC_COMPRESSION_PRODUCER;
    c->min_insync_replicas = 1;
    c->cleanup_policy = TD_CLEANUP_DELETE;
    c->timestamp_difference_max_ms = INT64_MAX;
    c->timestamp_before_max_ms = INT64_MAX;
    c->timestamp_after_max_ms = INT64_MAX;
    c->delete_retention_ms = 86400000LL;
    c->file_delete_delay_ms = 60000;
    c->flush_messages = INT64_MAX;
    c->flush_ms = INT64_MAX;
    c->local_retention_bytes = -2;
    c->local_retention_ms = -2;
    c->max_compaction_lag_ms = INT64_MAX;
    c->min_compaction_lag_ms = 0;
    c->segment_jitter_ms = 0;
    c->index_interval_bytes = 4096;
    c->segment_index_bytes = 10485760;
    c->min_cleanable_dirty_ratio = 0.5;
    c->key_index_memory_bytes = 16 << 20;
    c->trace_index_memory_bytes = 16 << 20;
    c->message_downconversion_enable = true;
    snprintf(c->message_format_version, sizeof(c->message_format_version), "3.0-IV1");
}

/* compression.type's name for a codec: "producer" (TD_TOPIC_COMPRESSION_PRODUCER),
 * "uncompressed", "gzip", "snappy", "lz4", "zstd". */
static const char *topic_compression_name(int codec)
{
    static const char *const names[] = {"uncompressed", "gzip", "snappy", "lz4", "zstd"};
    if (codec == TD_TOPIC_COMPRESSION_PRODUCER)
        return "producer";
    return codec >= 0 && codec < (int)TD_ARRAY_LEN(names) ? names[codec] : "unknown";
}

int topic_config_type(const char *key)
{
    const key_def *d = find_def(key);
    return d ? d->type : -1;
}

const char *topic_config_doc(const char *key)
{
    const key_def *d = find_def(key);
    return d ? d->doc : NULL;
}


/* value without leading and trailing blanks, in buf (Kafka trims booleans, doubles and list
 * items); "" if it does not fit. */
static const char *trim(const char *value, char *buf, size_t len)
{
    while (isspace((unsigned char)*value))
        value++;
    size_t n = strlen(value);
    while (n > 0 && isspace((unsigned char)value[n - 1]))
        n--;
    if (n >= len)
        return "";
    memcpy(buf, value, n);
    buf[n] = 0;
    return buf;
}

/* Kafka's version strings (MetadataVersion): 0.8.0 .. 0.11.0 and 1.0 .. 3.x, optionally with a
 * patch number and an -IVn suffix ("2.8", "2.8.1", "3.0-IV1"). */
static bool format_version_ok(const char *v)
{
    unsigned major, minor, patch, iv;
    int n = 0;
    int got = sscanf(v, "%u.%u%n", &major, &minor, &n);
    if (got != 2 || !isdigit((unsigned char)v[0]))
        return false;
    const char *p = v + n;
    if (*p == '.' && sscanf(p, ".%u%n", &patch, &n) == 1 && isdigit((unsigned char)p[1]))
        p += n;
    if (*p == '-' && sscanf(p, "-IV%u%n", &iv, &n) == 1 && isdigit((unsigned char)p[3]))
        p += n;
    if (*p)
        return false;
    if (major == 0)
        return minor >= 8 && minor <= 11;
    return major <= 3 && minor <= 9;
}

/* Kafka's throttled replicas lists: "", "*", or "partition:broker" pairs separated by commas. */
static bool throttled_ok(const char *v)
{
    if (!*v || strcmp(v, "*") == 0)
        return true;
    const char *p = v;
    for (;;) {
        while (*p == ' ')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p++ != ':' || !isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
        while (*p == ' ')
            p++;
        if (!*p)
            return true;
        if (*p++ != ',')
            return false;
    }
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

/* cleanup.policy is a list of "delete" and "compact" (any order, repeats and spaces around
 * allowed), as Kafka's: into *policy as TD_CLEANUP_* bits. */
static int cleanup_parse(const char *value, int *policy)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", value);
    char *save = NULL;
    int bits = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char tb[64];
        const char *w = trim(t, tb, sizeof(tb));
        if (strcmp(w, "compact") == 0)
            bits |= TD_CLEANUP_COMPACT;
        else if (strcmp(w, "delete") == 0)
            bits |= TD_CLEANUP_DELETE;
        else
            return td_fail(TD_ECONFIG,
                           "invalid cleanup.policy '%s': '%s' is not a policy (delete or compact)",
                           value, w);
    }
    if (bits == 0 || strlen(value) >= sizeof(buf))
        return td_fail(TD_ECONFIG, "invalid cleanup.policy '%s': must be delete, compact or both",
                       value);
    *policy = bits;
    return 0;
}

static int apply_one(td_topic_config *c, const char *key, const char *value)
{
    char tmp[64];
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
        return cleanup_parse(value, &c->cleanup_policy);
    case K_BOOL: {
        bool *b = (bool *)((char *)c + d->off);
        const char *t = trim(value, tmp, sizeof(tmp));
        if (strcasecmp(t, "true") == 0)
            *b = true;
        else if (strcasecmp(t, "false") == 0)
            *b = false;
        else
            return td_fail(TD_ECONFIG, "invalid %s '%s': must be %s", key, value, d->rule);
        if (d->off == F(remote_storage_enable) && *b)
            return td_fail(TD_ECONFIG,
                           "remote.storage.enable=true is not supported: tidings has no tiered "
                           "storage");
        return 0;
    }
    case K_DOUBLE: {
        char *end;
        const char *t = trim(value, tmp, sizeof(tmp));
        errno = 0;
        double x = *t ? strtod(t, &end) : NAN;
        if (!*t || errno || *end || !(x >= (double)d->min && x <= (double)d->max))
            return td_fail(TD_ECONFIG, "invalid %s '%s': must be %s", key, value, d->rule);
        *(double *)((char *)c + d->off) = x;
        return 0;
    }
    case K_COMPRESSION:
        for (int k = TD_TOPIC_COMPRESSION_PRODUCER; k <= 4; k++) {
            if (strcmp(value, topic_compression_name(k)) == 0) {
                c->compression_type = k;
                return 0;
            }
        }
        return td_fail(TD_ECONFIG, "invalid compression.type '%s': must be %s", value, d->rule);
    case K_FORMAT_VERSION:
        if (!format_version_ok(value))
            return td_fail(TD_ECONFIG, "invalid message.format.version '%s': must be %s", value,
                           d->rule);
        snprintf(c->message_format_version, sizeof(c->message_format_version), "%s", value);
        return 0;
    case K_THROTTLED:
        if (strlen(value) >= sizeof(c->leader_throttled_replicas) || !throttled_ok(value))
            return td_fail(TD_ECONFIG, "invalid %s '%s': must be %s (at most %zu characters)",
                           key, value, d->rule, sizeof(c->leader_throttled_replicas) - 1);
        snprintf((char *)c + d->off, sizeof(c->leader_throttled_replicas), "%s", value);
        return 0;
    case K_STRATEGY: {
        int k = strategy_parse(trim(value, tmp, sizeof(tmp)));
        if (k < 0)
            return td_fail(TD_ECONFIG, "invalid %s '%s': must be %s", key, value, d->rule);
        *(int *)((char *)c + d->off) = k;
        return 0;
    }
    case K_SVMODE:
        if (strcmp(value, "id") == 0)
            c->schema_validation_full = false;
        else if (strcmp(value, "full") == 0)
            c->schema_validation_full = true;
        else
            return td_fail(TD_ECONFIG, "invalid schema.validation.mode '%s': must be %s", value,
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
        n = snprintf(buf, len, "%s",
                     c->cleanup_policy == (TD_CLEANUP_DELETE | TD_CLEANUP_COMPACT) ? "compact,delete"
                     : c->cleanup_policy == TD_CLEANUP_COMPACT                      ? "compact"
                                                                                   : "delete");
        break;
    case K_BOOL:
        n = snprintf(buf, len, "%s", *(const bool *)((const char *)c + d->off) ? "true" : "false");
        break;
    case K_DOUBLE:
        n = snprintf(buf, len, "%g", *(const double *)((const char *)c + d->off));
        break;
    case K_COMPRESSION:
        n = snprintf(buf, len, "%s", topic_compression_name(c->compression_type));
        break;
    case K_FORMAT_VERSION:
        n = snprintf(buf, len, "%s", c->message_format_version);
        break;
    case K_THROTTLED:
        n = snprintf(buf, len, "%s", (const char *)c + d->off);
        break;
    case K_STRATEGY: {
        int k = *(const int *)((const char *)c + d->off);
        n = snprintf(buf, len, "%s",
                     k >= 0 && k < (int)TD_ARRAY_LEN(strategy_names) ? strategy_names[k]
                                                                      : "TopicNameStrategy");
        break;
    }
    case K_SVMODE:
        n = snprintf(buf, len, "%s", c->schema_validation_full ? "full" : "id");
        break;
    }
    if (n < 0 || (size_t)n >= len)
        return TD_ETOOBIG;
    return 0;
}

/* The rule itself is base's (topic_name.c), shared with the key mapping of the Redis
 * listener, the parsers of names inside cursors and patterns, and the CLI. */
int td_topic_name_validate(const char *name)
{
    if (!name || !*name)
        return td_fail(TD_ENAME, "topic name is empty");
    size_t n = strlen(name);
    if (n > TD_TOPIC_NAME_MAX)
        return td_fail(TD_ENAME, "topic name is %zu bytes long: at most %d are allowed", n,
                       TD_TOPIC_NAME_MAX);
    const char *why;
    size_t at;
    if (td_name_check(name, n, &why, &at) != 0)
        return td_fail(TD_ENAME, "invalid topic name '%s' (at byte %zu): %s", name, at + 1, why);
    return 0;
}
