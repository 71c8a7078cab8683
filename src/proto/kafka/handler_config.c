/*
 * handler_config.c: the Kafka requests on configuration and records: DescribeConfigs,
 * AlterConfigs, IncrementalAlterConfigs (topics' settings, and the broker's, read-only) and
 * DeleteRecords. Split from handler.c, which keeps framing, dispatch, produce and fetch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "net/net.h"
#include "proto/kafka/handler_int.h"
#include "proto/kafka/kauthz.h"


static void resource_error(kreq *q, kafka_config_resource *res, int16_t code, const char *msg)
{
    res->error_code = code;
    res->error_message = msg ? td_arena_strdup(&q->arena, msg) : NULL;
}

/* True if the resource names this broker: its node id, or "" (the cluster-wide default). */
static bool is_this_broker(const kafka_server *s, const char *name)
{
    char id[16];
    snprintf(id, sizeof(id), "%" PRId32, s->cfg.node_id);
    return name && (!name[0] || !strcmp(name, id));
}

static bool wanted(const kafka_config_resource *res, const char *key)
{
    if (res->nkeys < 0)
        return true;
    for (int32_t i = 0; i < res->nkeys; i++)
        if (res->keys[i] && !strcmp(res->keys[i], key))
            return true;
    return false;
}

static void describe_topic(kreq *q, kafka_config_resource *res)
{
    td_topic_info info;
    if (!res->name || td_topic_describe(q->kc->s->e, res->name, &info) != 0) {
        int16_t code = kafka_missing_topic_error(res->name);
        resource_error(q, res, code,
                       code == KERR_INVALID_TOPIC_EXCEPTION
                           ? "invalid topic name (docs/kafka.md#topic-names)"
                           : "no such topic");
        return;
    }
    td_topic_config def;
    td_topic_config_init(&def);
    /* Every key, with the type and line of documentation that storage/topic_config.c keeps
     * for it (its types are Kafka's DescribeConfigs codes). */
    const char *const *keys = td_topic_config_keys();
    size_t nk = 0;
    while (keys[nk])
        nk++;
    res->out = td_arena_calloc(&q->arena, nk + 1, sizeof(*res->out));
    if (!res->out) {
        q->out.err = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < nk; i++) {
        const char *key = keys[i];
        char val[TD_TOPIC_CONFIG_VALUE_MAX], dval[TD_TOPIC_CONFIG_VALUE_MAX];
        if (!wanted(res, key) || td_topic_config_get(&info.config, key, val, sizeof(val)) ||
            td_topic_config_get(&def, key, dval, sizeof(dval)))
            continue;
        kafka_config_desc *d = &res->out[res->nout++];
        d->name = key;
        d->value = td_arena_strdup(&q->arena, val);
        d->is_default = !strcmp(val, dval);
        d->source = d->is_default ? KAFKA_SOURCE_DEFAULT : KAFKA_SOURCE_DYNAMIC_TOPIC;
        d->type = (int8_t)broker_topic_config_type(key);
        d->doc = broker_topic_config_doc(key);
    }
}

/* The broker's settings under Kafka's names, read-only: they come from `tidings serve`'s
 * flags, environment and config file (docs/configuration.md). */
static void describe_broker(kreq *q, kafka_config_resource *res)
{
    kafka_server *s = q->kc->s;
    if (!is_this_broker(s, res->name)) {
        resource_error(q, res, KERR_INVALID_REQUEST, "no such broker: this is a single broker");
        return;
    }
    td_topic_config def;
    td_topic_config_init(&def);
    char listener[1024], nparts[16], node[16], retention[32], segment[32], roll[32], maxmsg[32];
    snprintf(listener, sizeof(listener), "%s", s->listeners ? s->listeners : "");
    if (!listener[0])
        snprintf(listener, sizeof(listener), "PLAINTEXT://%s:%" PRId32, s->host, s->cfg.port);
    snprintf(nparts, sizeof(nparts), "%" PRId32, s->cfg.default_partitions);
    snprintf(node, sizeof(node), "%" PRId32, s->cfg.node_id);
    snprintf(retention, sizeof(retention), "%" PRId64, def.retention_ms);
    snprintf(segment, sizeof(segment), "%" PRId64, def.segment_bytes);
    snprintf(roll, sizeof(roll), "%" PRId64, def.segment_ms);
    snprintf(maxmsg, sizeof(maxmsg), "%" PRId32, def.max_message_bytes);
    const struct {
        const char *key, *value;
        int8_t type;
        bool from_settings;
        const char *doc;
    } e[] = {
        {"node.id", node, KAFKA_CONFIG_INT, false, "This broker's id."},
        {"broker.id", node, KAFKA_CONFIG_INT, false, "This broker's id."},
        {"advertised.listeners", listener, KAFKA_CONFIG_LIST, true,
         "Where clients reach this broker (kafka, kafka.tls or kafka.listeners, "
         "advertised.host)."},
        {"listeners", listener, KAFKA_CONFIG_LIST, true,
         "The listeners and their security protocols (kafka, kafka.tls or kafka.listeners)."},
        {"log.dirs", s->cfg.data_dir ? s->cfg.data_dir : "", KAFKA_CONFIG_STRING, true,
         "The data directory (--data)."},
        {"auto.create.topics.enable", s->cfg.auto_create_topics ? "true" : "false",
         KAFKA_CONFIG_BOOLEAN, true, "Whether Metadata and Produce create unknown topics."},
        {"num.partitions", nparts, KAFKA_CONFIG_INT, true,
         "The partition count of automatically created topics."},
        {"default.replication.factor", "1", KAFKA_CONFIG_INT, false, "A single broker: 1."},
        {"min.insync.replicas", "1", KAFKA_CONFIG_INT, false, "A single broker: 1."},
        {"offsets.topic.replication.factor", "1", KAFKA_CONFIG_INT, false, "A single broker: 1."},
        {"log.retention.ms", retention, KAFKA_CONFIG_LONG, false,
         "The default retention.ms of new topics."},
        {"log.retention.bytes", "-1", KAFKA_CONFIG_LONG, false,
         "The default retention.bytes of new topics."},
        {"log.segment.bytes", segment, KAFKA_CONFIG_INT, false,
         "The default segment.bytes of new topics."},
        {"log.roll.ms", roll, KAFKA_CONFIG_LONG, false, "The default segment.ms of new topics."},
        {"message.max.bytes", maxmsg, KAFKA_CONFIG_INT, false,
         "The default max.message.bytes of new topics."},
        {"log.message.timestamp.type", "CreateTime", KAFKA_CONFIG_STRING, false,
         "The default message.timestamp.type of new topics."},
        {"log.cleanup.policy", "delete", KAFKA_CONFIG_LIST, false,
         "The default cleanup.policy of new topics: delete, compact, or both."},
    };
    res->out = td_arena_calloc(&q->arena, TD_ARRAY_LEN(e), sizeof(*res->out));
    if (!res->out) {
        q->out.err = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < TD_ARRAY_LEN(e); i++) {
        if (!wanted(res, e[i].key))
            continue;
        kafka_config_desc *d = &res->out[res->nout++];
        d->name = e[i].key;
        d->value = td_arena_strdup(&q->arena, e[i].value);
        d->read_only = true;
        d->is_default = !e[i].from_settings;
        d->source = e[i].from_settings ? KAFKA_SOURCE_STATIC_BROKER : KAFKA_SOURCE_DEFAULT;
        d->type = e[i].type;
        d->doc = e[i].doc;
    }
}

void kafka_serve_describe_configs(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_describe_configs_req req;
    if (kafka_decode_describe_configs(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.nresources && !q->out.err; i++) {
        kafka_config_resource *res = &req.resources[i];
        int16_t denied = kafka_authz_configs(q, res->type, res->name, false);
        if (denied)
            resource_error(q, res, denied, "Authorization failed.");
        else if (res->type == KAFKA_RESOURCE_TOPIC)
            describe_topic(q, res);
        else if (res->type == KAFKA_RESOURCE_BROKER)
            describe_broker(q, res);
        else
            resource_error(q, res, KERR_INVALID_REQUEST,
                           "only topic (2) and broker (4) resources have configurations");
    }
    if (q->out.err)
        return;
    kreq_begin(q);
    kafka_encode_describe_configs(&q->out, v, &req);
    ko_end(&q->out);
}

/* cleanup.policy is a list in Kafka (delete, compact): APPEND adds members to the topic's,
 * SUBTRACT removes them; the list may not end up empty. */
static int cleanup_list_op(td_topic_config *cfg, int8_t op, const char *value)
{
    int bits = cfg->cleanup_policy;
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ",");
        int bit = n == 6 && !strncmp(p, "delete", 6)    ? TD_CLEANUP_DELETE
                  : n == 7 && !strncmp(p, "compact", 7) ? TD_CLEANUP_COMPACT
                                                        : 0;
        if (!bit)
            return td_fail(TD_ECONFIG, "cleanup.policy: '%.*s' is not a policy (delete, compact)",
                           (int)n, p);
        bits = op == KAFKA_OP_APPEND ? bits | bit : bits & ~bit;
        p += n + (p[n] == ',');
    }
    if (!bits)
        return td_fail(TD_ECONFIG, "cleanup.policy cannot be empty");
    td_config_entry ent = {"cleanup.policy", bits == TD_CLEANUP_DELETE    ? "delete"
                                             : bits == TD_CLEANUP_COMPACT ? "compact"
                                                                          : "compact,delete"};
    return td_topic_config_apply(cfg, &ent, 1);
}

/* Applies one resource's changes to a copy of the topic's configuration (AlterConfigs starts
 * from the defaults: it replaces the whole set; IncrementalAlterConfigs from the current one)
 * and, unless validate_only, stores the result. */
static void alter_topic(kreq *q, kafka_config_resource *res, bool incremental, bool validate_only)
{
    kafka_server *s = q->kc->s;
    td_topic_info info;
    if (!res->name || td_topic_describe(s->e, res->name, &info) != 0) {
        int16_t code = kafka_missing_topic_error(res->name);
        resource_error(q, res, code,
                       code == KERR_INVALID_TOPIC_EXCEPTION
                           ? "invalid topic name (docs/kafka.md#topic-names)"
                           : "no such topic");
        return;
    }
    td_topic_config def, cfg;
    td_topic_config_init(&def);
    cfg = incremental ? info.config : def;
    for (int32_t i = 0; i < res->nconfigs; i++) {
        const kafka_config *c = &res->configs[i];
        if (!c->name) {
            resource_error(q, res, KERR_INVALID_REQUEST, "a configuration name is null");
            return;
        }
        for (int32_t k = 0; k < i; k++)
            if (res->configs[k].name && !strcmp(res->configs[k].name, c->name)) {
                resource_error(q, res, KERR_INVALID_REQUEST,
                               "a configuration key is named twice");
                return;
            }
        char dval[TD_TOPIC_CONFIG_VALUE_MAX];
        int rc = td_topic_config_get(&def, c->name, dval, sizeof(dval));
        if (rc) {
            char msg[300];
            snprintf(msg, sizeof(msg), "unknown topic configuration key '%s'", c->name);
            resource_error(q, res, KERR_INVALID_CONFIG, msg);
            return;
        }
        td_config_entry ent = {c->name, c->value};
        switch (c->op) {
        case KAFKA_OP_SET:
            rc = c->value ? td_topic_config_apply(&cfg, &ent, 1)
                          : td_fail(TD_ECONFIG, "%s: a null value is not supported", c->name);
            break;
        case KAFKA_OP_DELETE:
            ent.value = dval;
            rc = td_topic_config_apply(&cfg, &ent, 1);
            break;
        case KAFKA_OP_APPEND:
        case KAFKA_OP_SUBTRACT:
            if (strcmp(c->name, "cleanup.policy"))
                rc = td_fail(TD_ECONFIG, "%s is not a list: it takes SET and DELETE only",
                             c->name);
            else
                rc = cleanup_list_op(&cfg, c->op, c->value ? c->value : "");
            break;
        default:
            resource_error(q, res, KERR_INVALID_REQUEST, "unknown configuration operation");
            return;
        }
        if (rc) {
            resource_error(q, res, KERR_INVALID_CONFIG, td_last_error());
            return;
        }
    }
    if (validate_only)
        return;
    const char *const *keys = td_topic_config_keys();
    td_config_entry ents[64];
    char vals[64][TD_TOPIC_CONFIG_VALUE_MAX];
    size_t n = 0;
    for (; keys[n] && n < TD_ARRAY_LEN(ents); n++) {
        if (td_topic_config_get(&cfg, keys[n], vals[n], sizeof(vals[n])) != 0) {
            resource_error(q, res, KERR_UNKNOWN_SERVER_ERROR, "cannot render the configuration");
            return;
        }
        ents[n] = (td_config_entry){keys[n], vals[n]};
    }
    int rc = td_topic_alter(s->e, res->name, ents, n);
    if (rc) {
        resource_error(q, res, kafka_error_of(rc), td_last_error());
        return;
    }
    TD_INFO("kafka", "configuration of topic %s changed by %s", res->name,
            net_conn_peer(q->kc->c));
}

void kafka_serve_alter_configs(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version, key = q->h.api_key;
    kafka_alter_configs_req req;
    if (kafka_decode_alter_configs(r, key, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.nresources; i++) {
        kafka_config_resource *res = &req.resources[i];
        bool dup = false;
        for (int32_t k = 0; k < i && !dup; k++)
            dup = req.resources[k].type == res->type && res->name && req.resources[k].name &&
                  !strcmp(req.resources[k].name, res->name);
        int16_t denied = dup ? KERR_NONE : kafka_authz_configs(q, res->type, res->name, true);
        if (dup)
            resource_error(q, res, KERR_INVALID_REQUEST, "the resource is named twice");
        else if (denied)
            resource_error(q, res, denied, "Authorization failed.");
        else if (res->type == KAFKA_RESOURCE_TOPIC)
            alter_topic(q, res, key == KAFKA_INCREMENTAL_ALTER_CONFIGS, req.validate_only);
        else if (res->type == KAFKA_RESOURCE_BROKER || res->type == KAFKA_RESOURCE_BROKER_LOGGER)
            resource_error(q, res, KERR_INVALID_REQUEST,
                           "broker settings are not dynamic: set them with tidings serve's "
                           "flags, TIDINGS_* variables or config file");
        else
            resource_error(q, res, KERR_INVALID_REQUEST,
                           "only topic (2) resources can be altered");
    }
    kreq_begin(q);
    kafka_encode_alter_configs(&q->out, key, v, &req);
    ko_end(&q->out);
}

void kafka_serve_delete_records(kreq *q, kafka_reader *r)
{
    kafka_server *s = q->kc->s;
    int16_t v = q->h.api_version;
    kafka_delete_records_req req;
    if (kafka_decode_delete_records(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.ntopics; i++) {
        kafka_delete_records_topic *t = &req.topics[i];
        bool denied = t->name && !kafka_authz_delete_topic(q, t->name);
        for (int32_t k = 0; k < t->nparts; k++) {
            kafka_delete_records_part *pp = &t->parts[k];
            int64_t ls = -1;
            if (denied) {
                pp->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                pp->low_watermark = -1;
                continue;
            }
            int rc = t->name ? td_delete_records(s->e, t->name, pp->partition, pp->offset, &ls)
                             : TD_ENOTFOUND;
            pp->error_code =
                rc == TD_ENOTFOUND ? kafka_missing_topic_error(t->name) : kafka_error_of(rc);
            pp->low_watermark = rc == 0 ? ls : -1;
            if (rc == 0)
                TD_INFO("kafka", "%s/%" PRId32 ": records before %" PRId64 " deleted for %s",
                        t->name, pp->partition, ls, net_conn_peer(q->kc->c));
        }
    }
    kreq_begin(q);
    kafka_encode_delete_records(&q->out, v, &req);
    ko_end(&q->out);
}
