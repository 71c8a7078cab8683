/*
 * registry_check.c: schemas enforced on produce (docs/schemas.md, "Enforcement on produce").
 * A topic with key.schema.validation or value.schema.validation takes, from Kafka, only keys and
 * values in Confluent's wire format (magic byte 0, a big-endian schema id) whose id is
 * registered under the subject its name strategy gives; with schema.validation.mode=full, the
 * payload after the header must also be valid against that schema. From HTTP and Redis, JSON
 * values (and Redis field maps as JSON objects) are validated against the latest JSON Schema of
 * the value subject.
 *
 * Cost: a produced record costs a wire header read and, for an id not seen just before in the
 * same call, one registry lookup (a read lock and a hash) and one subject check; producers
 * write one id over and over, so a batch pays them about once. The full mode adds the schema's
 * own validation of the payload. Outcomes are counted per call with one atomic add per
 * outcome, on series kept on the topic.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine_int.h"
#include "broker/registry_int.h"
#include "storage/batch.h"

/* A compressed batch is decompressed into at most this much (as the iterators read them). */
#define MAX_UNCOMPRESSED (64u << 20)
/* A subject's name: a topic's, a dash and a record's full name. */
#define SUBJECT_MAX 1024

/* The series of tidings_schema_events_total: accepted, then the reasons of a rejection. */
enum reason { R_OK, R_WIRE, R_UNKNOWN_ID, R_SUBJECT, R_PAYLOAD, R_NO_SCHEMA, R_N };
static const char *const reason_names[R_N] = {"none",          "wire_format",     "unknown_id",
                                              "wrong_subject", "invalid_payload", "no_schema"};

static td_metric_family *schema_family(td_engine *e)
{
    return td_metrics_family(broker_metrics(e), TD_COUNTER, "tidings_schema_events_total",
                             "Produced events checked against the schema registry, accepted or "
                             "rejected, with the reason of a rejection.",
                             "topic,result,reason", NULL, 0);
}

void registry_check_metrics_remove(td_engine *e, const char *name)
{
    td_metric_remove_first(schema_family(e), name);
}

/* The topic's series for reason r, looked up once and kept on the topic (td_metric_get gives
 * the same series to every thread that races here, so either store is right). */
static td_metric *series(td_engine *e, td_topic *t, int r)
{
    td_metric *m = __atomic_load_n(&t->m_schema[r], __ATOMIC_ACQUIRE);
    if (m)
        return m;
    const char *labels[3] = {t->name, r == R_OK ? "accepted" : "rejected", reason_names[r]};
    m = td_metric_get(schema_family(e), labels);
    __atomic_store_n(&t->m_schema[r], m, __ATOMIC_RELEASE);
    return m;
}

static void count(td_engine *e, td_topic_ref *ref, int r, uint64_t n)
{
    if (n)
        td_counter_add(series(e, engine_topic_of(ref), r), n);
}

void registry_count_accepted(td_engine *e, td_topic_ref *ref, uint64_t n)
{
    count(e, ref, R_OK, n);
}

void registry_policy_of(const td_topic_config *cfg, registry_policy *pol)
{
    static const registry_strategy of[] = {REG_STRATEGY_TOPIC, REG_STRATEGY_RECORD,
                                           REG_STRATEGY_TOPIC_RECORD};
    *pol = (registry_policy){
        .key = cfg->key_schema_validation,
        .value = cfg->value_schema_validation,
        .key_strategy = of[cfg->key_subject_strategy >= 0 && cfg->key_subject_strategy < 3
                               ? cfg->key_subject_strategy
                               : 0],
        .value_strategy = of[cfg->value_subject_strategy >= 0 && cfg->value_subject_strategy < 3
                                 ? cfg->value_subject_strategy
                                 : 0],
        .full = cfg->schema_validation_full,
    };
}

/* The subject of a key or value under a strategy; record is the record name of its schema
 * (NULL if it has none). False (with why) when the strategy cannot name one. */
static bool subject_of(const char *topic, registry_strategy st, bool is_key, const char *record,
                       int32_t id, char *out, size_t outlen, char *why, size_t whylen)
{
    int n;
    if (st == REG_STRATEGY_TOPIC) {
        n = snprintf(out, outlen, "%s-%s", topic, is_key ? "key" : "value");
    } else if (!record) {
        snprintf(why, whylen,
                 "schema id %" PRId32 " names no record, which %s needs to name the subject", id,
                 st == REG_STRATEGY_RECORD ? "RecordNameStrategy" : "TopicRecordNameStrategy");
        return false;
    } else if (st == REG_STRATEGY_RECORD) {
        n = snprintf(out, outlen, "%s", record);
    } else {
        n = snprintf(out, outlen, "%s-%s", topic, record);
    }
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(why, whylen, "the subject of schema id %" PRId32 " is too long", id);
        return false;
    }
    return true;
}

/* One call's memory of the last id checked for keys and for values (records of a batch
 * usually share them), holding the schema's reference. */
typedef struct id_memo {
    bool valid;
    int32_t id;
    const schema *s;
    void *ref;
    int verdict; /* R_OK, R_UNKNOWN_ID or R_SUBJECT */
    char why[300];
} id_memo;

static void memo_drop(id_memo *m)
{
    if (m->ref)
        registry_put(m->ref);
    memset(m, 0, sizeof(*m));
}

/* The id's verdict for a key or a value of topic (memoized in m). */
static void id_check(td_engine *e, const char *topic, registry_strategy st, bool is_key,
                     int32_t id, id_memo *m)
{
    if (m->valid && m->id == id)
        return;
    memo_drop(m);
    m->valid = true;
    m->id = id;
    m->s = registry_get_schema(e, id, &m->ref);
    if (!m->s) {
        m->verdict = R_UNKNOWN_ID;
        snprintf(m->why, sizeof(m->why), "schema id %" PRId32 " is unknown", id);
        return;
    }
    char subject[SUBJECT_MAX];
    if (!subject_of(topic, st, is_key, schema_record_name(m->s), id, subject, sizeof(subject),
                    m->why, sizeof(m->why))) {
        m->verdict = R_SUBJECT;
        return;
    }
    if (!registry_subject_has_id(e, subject, id)) {
        m->verdict = R_SUBJECT;
        snprintf(m->why, sizeof(m->why),
                 "schema id %" PRId32 " is not registered under subject %.200s", id, subject);
        return;
    }
    m->verdict = R_OK;
}

/* Checks one key or value in the wire format: R_OK, or a reason with why. */
static int wire_check(td_engine *e, const char *topic, const registry_policy *pol, bool is_key,
                      const uint8_t *p, size_t n, id_memo *m, char *why, size_t whylen)
{
    int32_t id;
    if (schema_wire_header(p, n, &id) != 0) {
        snprintf(why, whylen,
                 "the %s is not in the wire format (magic byte 0, then a 4-byte schema id)",
                 is_key ? "key" : "value");
        return R_WIRE;
    }
    id_check(e, topic, is_key ? pol->key_strategy : pol->value_strategy, is_key, id, m);
    if (m->verdict != R_OK) {
        snprintf(why, whylen, "%s: %s", is_key ? "key" : "value", m->why);
        return m->verdict;
    }
    if (!pol->full)
        return R_OK;
    schema_error err;
    if (schema_validate(m->s, p + SCHEMA_WIRE_HEADER, n - SCHEMA_WIRE_HEADER, &err) != 0) {
        snprintf(why, whylen, "%s does not match schema id %" PRId32 " at '%.200s' (%s): %.200s",
                 is_key ? "key" : "value", id, err.path, err.rule, err.message);
        return R_PAYLOAD;
    }
    return R_OK;
}

int registry_check_wire(td_engine *e, const char *topic, const registry_policy *pol, bool is_key,
                        const uint8_t *p, size_t n, char *why, size_t whylen)
{
    id_memo m = {0};
    int r = wire_check(e, topic, pol, is_key, p, n, &m, why, whylen);
    memo_drop(&m);
    /* By name: the series is looked up here (the listeners use the _ref forms). */
    const char *labels[3] = {topic, r == R_OK ? "accepted" : "rejected", reason_names[r]};
    td_counter_add(td_metric_get(schema_family(e), labels), 1);
    return r == R_OK ? 0 : -1;
}

int registry_check_wire_ref(td_engine *e, td_topic_ref *ref, const registry_policy *pol,
                            bool is_key, const uint8_t *p, size_t n, char *why, size_t whylen)
{
    id_memo m = {0};
    int r = wire_check(e, engine_topic_of(ref)->name, pol, is_key, p, n, &m, why, whylen);
    memo_drop(&m);
    if (r != R_OK)
        count(e, ref, r, 1);
    return r == R_OK ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------
 * Kafka: the records of a partition's batches
 *
 * Each batch's records are collected first (a decompressed batch stays in the reader until the
 * next one is opened), then checked: in full mode on the registry's pool too (td_pool_run), the
 * verdicts written per record, so that the counts and the bad records' list come out in the
 * records' order whatever thread checked them. A bad record is checked again on the caller's
 * thread for its message: rejections are rare, and a batch of bad records costs at most twice.
 */
/* Records a pool thread checks at a time: about 25 us of JSON Schema validation at 1 KiB. */
#define CHECK_CHUNK 16

typedef struct rec_slot {
    const uint8_t *k, *v;
    size_t kn, vn;
    bool knull, vnull;
    uint8_t verdict; /* R_* */
} rec_slot;

typedef struct check_job {
    td_engine *e;
    const char *topic;
    const registry_policy *pol;
    rec_slot *recs;
} check_job;

/* A record's verdict: its key, then its value (msg says why when it is not R_OK). */
static int record_check(const check_job *j, const rec_slot *r, id_memo *km, id_memo *vm,
                        char *msg, size_t msglen)
{
    int v = R_OK;
    if (j->pol->key && !r->knull)
        v = wire_check(j->e, j->topic, j->pol, true, r->k, r->kn, km, msg, msglen);
    if (v == R_OK && j->pol->value && !r->vnull)
        v = wire_check(j->e, j->topic, j->pol, false, r->v, r->vn, vm, msg, msglen);
    return v;
}

/* td_pool_fn: the verdicts of records [b, end). */
static void check_range(void *arg, size_t b, size_t end)
{
    check_job *j = arg;
    id_memo km = {0}, vm = {0};
    char msg[600];
    for (size_t i = b; i < end; i++)
        j->recs[i].verdict = (uint8_t)record_check(j, &j->recs[i], &km, &vm, msg, sizeof(msg));
    memo_drop(&km);
    memo_drop(&vm);
}

/* Reads the records of the open batch into *recs (grown as needed): their count, or -1 for a
 * corrupt record or no memory (*why says which). */
static ssize_t collect_records(td_batch_reader *rd, rec_slot **recs, size_t *cap,
                               const char **why)
{
    size_t n = 0;
    td_record rec;
    int rc;
    while ((rc = batch_reader_next(rd, &rec)) == 1) {
        if (td_grow(recs, cap, n, sizeof(**recs), 64) != 0) {
            *why = "no memory to check the records of a batch";
            return -1;
        }
        (*recs)[n++] = (rec_slot){.k = rec.key.p, .kn = rec.key.n, .knull = rec.key_null,
                                  .v = rec.value.p, .vn = rec.value.n, .vnull = rec.value_null};
    }
    if (rc < 0) {
        *why = "a record batch with a corrupt record";
        return -1;
    }
    return (ssize_t)n;
}

int registry_check_batches(td_engine *e, td_topic_ref *ref, const registry_policy *pol,
                           const uint8_t *p, size_t n, registry_bad_record_fn bad, void *arg,
                           const char **why)
{
    check_job j = {.e = e, .topic = engine_topic_of(ref)->name, .pol = pol};
    /* Only full validation is worth the threads: an id check is a few loads. */
    td_pool *pool = pol->full ? registry_pool(e) : NULL;
    td_batch_reader rd;
    batch_reader_init(&rd);
    id_memo km = {0}, vm = {0};
    uint64_t counts[R_N] = {0};
    size_t cap = 0;
    int nbad = 0;
    size_t off = 0;
    char msg[600];
    while (off < n) {
        if (n - off < TD_BATCH_HEADER_SIZE) {
            *why = "a truncated record batch";
            nbad = -1;
            break;
        }
        size_t bn = (size_t)td_load_be32(p + off + 8) + TD_BATCH_LOG_OVERHEAD;
        if (bn > n - off || batch_reader_open(&rd, p + off, bn, MAX_UNCOMPRESSED) != 0) {
            *why = "a record batch that cannot be read (truncated, corrupt, or too large "
                   "uncompressed)";
            nbad = -1;
            break;
        }
        off += bn;
        if (rd.h.attributes & TD_BATCH_ATTR_CONTROL)
            continue; /* transaction markers carry no key or value of the producer's */
        ssize_t nrec = collect_records(&rd, &j.recs, &cap, why);
        if (nrec < 0) {
            nbad = -1;
            break;
        }
        td_pool_run(pool, (size_t)nrec, CHECK_CHUNK, check_range, &j);
        for (ssize_t i = 0; i < nrec; i++) {
            int r = j.recs[i].verdict;
            counts[r]++;
            if (r != R_OK) {
                nbad++;
                (void)record_check(&j, &j.recs[i], &km, &vm, msg, sizeof(msg));
                bad(arg, (int32_t)i, msg); /* Kafka's batch_index: within its batch */
            }
        }
    }
    batch_reader_free(&rd);
    free(j.recs);
    memo_drop(&km);
    memo_drop(&vm);
    if (nbad != 0)
        counts[R_OK] = 0; /* nothing of the partition's batches is stored */
    for (int r = 0; r < R_N; r++)
        count(e, ref, r, counts[r]);
    return nbad;
}

/* ---------------------------------------------------------------------------------------------
 * JSON values (HTTP) and field maps (Redis)
 */
/* The latest schema of the topic's value subject, which must be a JSON Schema: R_OK with *s
 * and *ref (put it back with registry_put), or a reason with out filled. */
static int json_schema_of(td_engine *e, const char *topic, const registry_policy *pol,
                          const schema **s, void **ref, registry_json_check *out)
{
    char subject[SUBJECT_MAX];
    if (pol->value_strategy != REG_STRATEGY_TOPIC) {
        snprintf(out->rule, sizeof(out->rule), "subject");
        snprintf(out->why, sizeof(out->why),
                 "value.subject.name.strategy %s names the subject from the schema id of the "
                 "wire format: such values must come in the wire format",
                 pol->value_strategy == REG_STRATEGY_RECORD ? "RecordNameStrategy"
                                                            : "TopicRecordNameStrategy");
        return R_WIRE;
    }
    snprintf(subject, sizeof(subject), "%s-value", topic);
    *s = registry_latest_schema(e, subject, &out->id, ref);
    if (!*s) {
        snprintf(out->rule, sizeof(out->rule), "subject");
        snprintf(out->why, sizeof(out->why), "subject %.300s has no schema", subject);
        return R_NO_SCHEMA;
    }
    schema_type t = schema_get_type(*s);
    if (t != SCHEMA_JSON) {
        snprintf(out->rule, sizeof(out->rule), "type");
        snprintf(out->why, sizeof(out->why),
                 "the latest schema of subject %.300s (id %" PRId32 ") is %s: its values must "
                 "come in the wire format (through Kafka), not as JSON",
                 subject, out->id, schema_type_name(t));
        registry_put(*ref);
        *s = NULL;
        *ref = NULL;
        return R_WIRE;
    }
    return R_OK;
}

static int json_validate(const schema *s, const char *json, size_t len, registry_json_check *out)
{
    schema_error err;
    if (schema_validate_json(s, json, len, &err) == 0)
        return R_OK;
    snprintf(out->pointer, sizeof(out->pointer), "%s", err.path);
    snprintf(out->rule, sizeof(out->rule), "%s", err.rule);
    snprintf(out->why, sizeof(out->why), "%s", err.message);
    return R_PAYLOAD;
}

int registry_check_json_value(td_engine *e, td_topic_ref *ref, const registry_policy *pol,
                              const char *json, size_t len, bool count_it,
                              registry_json_check *out)
{
    memset(out, 0, sizeof(*out));
    const schema *s = NULL;
    void *sref = NULL;
    int r = json_schema_of(e, engine_topic_of(ref)->name, pol, &s, &sref, out);
    if (r == R_OK) {
        r = json_validate(s, json, len, out);
        registry_put(sref);
    }
    if (count_it || r != R_OK)
        count(e, ref, r, 1);
    return r == R_OK ? 0 : -1;
}

int registry_check_json(td_engine *e, const char *topic, const registry_policy *pol,
                        const char *json, size_t len, char *pointer, size_t plen, char *why,
                        size_t whylen)
{
    registry_json_check out = {0};
    const schema *s = NULL;
    void *sref = NULL;
    int r = json_schema_of(e, topic, pol, &s, &sref, &out);
    if (r == R_OK) {
        r = json_validate(s, json, len, &out);
        registry_put(sref);
    }
    const char *labels[3] = {topic, r == R_OK ? "accepted" : "rejected", reason_names[r]};
    td_counter_add(td_metric_get(schema_family(e), labels), 1);
    if (r == R_OK)
        return 0;
    snprintf(pointer, plen, "%s", out.pointer);
    snprintf(why, whylen, "%s", out.why);
    return -1;
}

/*
 * The field map as a JSON object: each value a JSON string where the schema's property for that
 * field accepts a string (or says nothing of it), else the value parsed as JSON ("12" the integer
 * 12 for an integer property); a value that does not parse stays a string, so that validation
 * names the field and the rule. One validation of the object built, without printing it.
 */
static int fields_validate(const schema *s, const td_slice *fv, size_t nf,
                           registry_json_check *out)
{
    json_t *obj = json_object();
    int r = R_PAYLOAD;
    char name[256];
    if (!obj) {
        snprintf(out->why, sizeof(out->why), "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nf; i++) {
        const char *f = (const char *)fv[2 * i].p, *v = (const char *)fv[2 * i + 1].p;
        size_t fn = fv[2 * i].n, vn = fv[2 * i + 1].n;
        if (json_object_getn(obj, f, fn)) {
            /* A JSON object's names are unique: a repeated field has no object to validate. */
            snprintf(out->rule, sizeof(out->rule), "type");
            snprintf(out->why, sizeof(out->why),
                     "field '%.*s' repeats: the field map is not a JSON object",
                     (int)TD_MIN(fn, 100), f);
            goto done;
        }
        /* A name with a NUL byte, or longer than any property a schema names here, is taken as
         * a property the schema says nothing of: its value is a string. */
        bool as_string = true;
        if (fn < sizeof(name) && !memchr(f, 0, fn)) {
            memcpy(name, f, fn);
            name[fn] = 0;
            as_string = schema_json_accepts_string_at(s, name);
        }
        json_t *jv = as_string ? NULL : json_loadb(v, vn, JSON_DECODE_ANY, NULL);
        if (!jv)
            jv = json_stringn(v, vn);
        if (!jv || json_object_setn_new(obj, f, fn, jv) != 0) {
            snprintf(out->rule, sizeof(out->rule), "type");
            snprintf(out->why, sizeof(out->why),
                     "field %zu or its value is not UTF-8 text: the field map is not a JSON object",
                     i + 1);
            goto done;
        }
    }
    schema_error err;
    if (schema_json_validate_value(s, obj, &err) == 0) {
        r = R_OK;
    } else {
        snprintf(out->pointer, sizeof(out->pointer), "%s", err.path);
        snprintf(out->rule, sizeof(out->rule), "%s", err.rule);
        snprintf(out->why, sizeof(out->why), "%s", err.message);
    }
done:
    json_decref(obj);
    return r;
}

int registry_check_fields(td_engine *e, td_topic_ref *ref, const registry_policy *pol,
                          const td_slice *fv, size_t nfv, registry_json_check *out)
{
    memset(out, 0, sizeof(*out));
    const schema *s = NULL;
    void *sref = NULL;
    int r = json_schema_of(e, engine_topic_of(ref)->name, pol, &s, &sref, out);
    if (r == R_OK) {
        r = fields_validate(s, fv, nfv / 2, out);
        registry_put(sref);
    }
    count(e, ref, r, 1);
    return r == R_OK ? 0 : -1;
}

size_t registry_json_header(td_engine *e, const uint8_t *p, size_t n, int32_t *id)
{
    int32_t got;
    if (n <= SCHEMA_WIRE_HEADER || schema_wire_header(p, n, &got) != 0)
        return 0;
    void *ref = NULL;
    const schema *s = registry_get_schema(e, got, &ref);
    bool json = s && schema_get_type(s) == SCHEMA_JSON;
    if (ref)
        registry_put(ref);
    if (!json)
        return 0;
    if (id)
        *id = got;
    return SCHEMA_WIRE_HEADER;
}
