/*
 * msgs_quota.c: the client-quota messages (KIP-546), pure functions over buffers like msgs.c.
 * Each names the versions that carry each field.
 */
#include <string.h>

#include "proto/kafka/kafka.h"

/* An entity: [entity_type string, entity_name nullable string]. */
static kafka_quota_entity_part *read_entity(kafka_reader *r, int32_t *n)
{
    kafka_quota_entity_part *v = kr_array_alloc(r, sizeof(*v), n);
    for (int32_t i = 0; i < *n && !r->err; i++) {
        v[i].type = kr_string(r);
        v[i].name = kr_string(r);
        kr_tags(r);
    }
    return v;
}

static void write_entity(kafka_out *o, const kafka_quota_entity_part *v, int32_t n)
{
    ko_array(o, n);
    for (int32_t i = 0; i < n; i++) {
        ko_string_nn(o, v[i].type);
        ko_string(o, v[i].name);
        ko_tags(o);
    }
}

/* ---------------------------------------------------------------------------------------------
 * DescribeClientQuotas v0-1 (flexible v1+)
 *   request:  components [entity_type, match_type int8, match nullable], strict bool
 *   response: throttle_time_ms, error_code, error_message nullable, entries nullable
 *             [entity [entity_type, entity_name nullable], values [key, value float64]]
 */
int kafka_decode_describe_quotas(kafka_reader *r, int16_t v, kafka_describe_quotas_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_DESCRIBE_CLIENT_QUOTAS, v);
    q->filters = kr_array_alloc(r, sizeof(*q->filters), &q->nfilters);
    for (int32_t i = 0; i < q->nfilters && !r->err; i++) {
        q->filters[i].type = kr_string(r);
        q->filters[i].match_type = kr_i8(r);
        q->filters[i].match = kr_string(r);
        kr_tags(r);
    }
    q->strict = kr_bool(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_describe_quotas(kafka_out *o, int16_t v, const kafka_describe_quotas_resp *m)
{
    ko_set_flexible(o, KAFKA_DESCRIBE_CLIENT_QUOTAS, v);
    ko_i32(o, 0);
    ko_i16(o, m->error_code);
    ko_string(o, m->error_message);
    ko_array(o, m->nentries);
    for (int32_t i = 0; i < m->nentries; i++) {
        const kafka_quota_entry *e = &m->entries[i];
        write_entity(o, e->parts, e->nparts);
        ko_array(o, e->nvalues);
        for (int32_t k = 0; k < e->nvalues; k++) {
            ko_string_nn(o, e->values[k].key);
            ko_f64(o, e->values[k].value);
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * AlterClientQuotas v0-1 (flexible v1+)
 *   request:  entries [entity [entity_type, entity_name nullable], ops [key, value float64,
 *             remove bool]], validate_only bool
 *   response: throttle_time_ms, entries [error_code, error_message nullable,
 *             entity [entity_type, entity_name nullable]]
 */
int kafka_decode_alter_quotas(kafka_reader *r, int16_t v, kafka_alter_quotas_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_ALTER_CLIENT_QUOTAS, v);
    q->entries = kr_array_alloc(r, sizeof(*q->entries), &q->nentries);
    for (int32_t i = 0; i < q->nentries && !r->err; i++) {
        kafka_quota_alter_entry *e = &q->entries[i];
        e->parts = read_entity(r, &e->nparts);
        e->ops = kr_array_alloc(r, sizeof(*e->ops), &e->nops);
        for (int32_t k = 0; k < e->nops && !r->err; k++) {
            e->ops[k].key = kr_string(r);
            e->ops[k].value = kr_f64(r);
            e->ops[k].remove = kr_bool(r);
            kr_tags(r);
        }
        kr_tags(r);
    }
    q->validate_only = kr_bool(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_alter_quotas(kafka_out *o, int16_t v, const kafka_alter_quotas_req *m)
{
    ko_set_flexible(o, KAFKA_ALTER_CLIENT_QUOTAS, v);
    ko_i32(o, 0);
    ko_array(o, m->nentries);
    for (int32_t i = 0; i < m->nentries; i++) {
        const kafka_quota_alter_entry *e = &m->entries[i];
        ko_i16(o, e->error_code);
        ko_string(o, e->error_message);
        write_entity(o, e->parts, e->nparts);
        ko_tags(o);
    }
    ko_tags(o);
}
