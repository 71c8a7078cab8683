/*
 * registry.h: the schema registry (docs/schemas.md): subjects, their versions, schema IDs,
 * compatibility levels and modes, as Confluent Schema Registry keeps them, stored as records
 * of the compacted internal topic __schemas (docs/storage.md, "State topics") and replayed into
 * memory at open. The HTTP listener serves Confluent's REST API over it (proto/http/registry.c);
 * the listeners validate produced events through it (registry_check_*).
 *
 * Every function is thread-safe. A change (register, delete, config, mode) is answered only once
 * its record is durable under the state topics' fsync policy. Errors are Confluent's codes
 * (REG_E*, the numbers its REST API answers), with a message in its wording in *msg (a static
 * string, one kept in the registry_result's arena (valid until registry_result_free), or a
 * thread-local one valid until the thread's next call into the registry).
 */
#ifndef TD_BROKER_REGISTRY_H
#define TD_BROKER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"

/* Confluent's error codes (its REST API's "error_code"); the HTTP status is the code's first
 * three digits (40401 -> 404), 409 and 5xx stand alone. */
enum {
    REG_OK = 0,
    REG_ESUBJECT_NOT_FOUND = 40401,
    REG_EVERSION_NOT_FOUND = 40402,
    REG_ESCHEMA_NOT_FOUND = 40403,
    REG_ESUBJECT_SOFT_DELETED = 40404,
    REG_ESUBJECT_NOT_SOFT_DELETED = 40405,
    REG_EVERSION_SOFT_DELETED = 40406,
    REG_EVERSION_NOT_SOFT_DELETED = 40407,
    REG_ESUBJECT_LEVEL_COMPAT_NOT_CONFIGURED = 40408,
    REG_ESUBJECT_LEVEL_MODE_NOT_CONFIGURED = 40409,
    REG_EINCOMPATIBLE = 409,
    REG_EINVALID_SCHEMA = 42201,
    REG_EINVALID_VERSION = 42202,
    REG_EINVALID_COMPAT = 42203,
    REG_EINVALID_MODE = 42204,
    REG_EOPERATION_NOT_PERMITTED = 42205,
    REG_EREFERENCE_EXISTS = 42206,
    REG_EID_IN_USE = 42207,
    REG_EINVALID_SUBJECT = 42208,
    REG_ESTORE = 50001,
    REG_ETIMEOUT = 50002,
};

typedef enum registry_compat {
    REG_COMPAT_BACKWARD = 0, /* the default */
    REG_COMPAT_BACKWARD_TRANSITIVE,
    REG_COMPAT_FORWARD,
    REG_COMPAT_FORWARD_TRANSITIVE,
    REG_COMPAT_FULL,
    REG_COMPAT_FULL_TRANSITIVE,
    REG_COMPAT_NONE,
} registry_compat;
const char *registry_compat_name(registry_compat c);
bool registry_compat_parse(const char *name, registry_compat *out);

typedef enum registry_mode {
    REG_MODE_READWRITE = 0, /* the default */
    REG_MODE_READONLY,
    REG_MODE_IMPORT,
} registry_mode;
const char *registry_mode_name(registry_mode m);
bool registry_mode_parse(const char *name, registry_mode *out);

/* A reference of a schema: the name the schema uses for it, and the subject and version of the
 * referenced schema. */
typedef struct registry_ref {
    const char *name, *subject;
    int32_t version;
} registry_ref;

/* A schema as the REST API shows it. Strings point into the result's memory. */
typedef struct registry_schema {
    const char *subject; /* NULL where the request did not name one (GET /schemas/ids/{id}) */
    int32_t version;
    int32_t id;
    const char *type; /* "AVRO", "JSON", "PROTOBUF" */
    const char *text; /* the canonical form */
    const registry_ref *refs;
    size_t nrefs;
    bool deleted; /* soft-deleted */
} registry_schema;

/* What a call answers: a list of schemas, of names (subjects), of versions or IDs, and the
 * messages of a compatibility check. Allocated by the call; free with registry_result_free. */
typedef struct registry_result {
    registry_schema *schemas;
    size_t nschemas;
    char **names;
    size_t nnames;
    int32_t *ints;
    size_t nints;
    char *messages; /* '\n'-separated, NULL if none */
    void *mem;      /* the result's own allocations */
} registry_result;
void registry_result_free(registry_result *r);

/* The schema a client sends: type NULL means AVRO, as Confluent. */
typedef struct registry_input {
    const char *type;
    const char *text;
    size_t len;
    const registry_ref *refs;
    size_t nrefs;
    int32_t id;      /* IMPORT mode: the ID to keep (else 0: the registry picks) */
    int32_t version; /* IMPORT mode: the version to keep (else 0: latest + 1) */
    bool normalize;  /* ?normalize=true */
} registry_input;

/* Flags for the listing calls. */
#define REG_WITH_DELETED 1u /* ?deleted=true: soft-deleted ones too */
#define REG_ONLY_DELETED 2u /* ?deletedOnly=true (subjects) */

/* POST /subjects/{s}/versions: registers, or finds it registered; out->schemas[0] has the id
 * and version. REG_EINCOMPATIBLE with the reasons in out->messages, REG_EINVALID_SCHEMA,
 * REG_EOPERATION_NOT_PERMITTED (READONLY or IMPORT mode), ... */
int registry_register(td_engine *e, const char *subject, const registry_input *in,
                      registry_result *out, const char **msg);
/* POST /subjects/{s}: the version under which the subject holds this schema. */
int registry_lookup(td_engine *e, const char *subject, const registry_input *in, bool deleted,
                    registry_result *out, const char **msg);
/* GET /subjects (out->names; prefix "" for all; flags REG_WITH_DELETED, REG_ONLY_DELETED). */
int registry_subjects(td_engine *e, const char *prefix, unsigned flags, registry_result *out);
/* GET /subjects/{s}/versions (out->ints). */
int registry_versions(td_engine *e, const char *subject, unsigned flags, registry_result *out,
                      const char **msg);
/* GET /subjects/{s}/versions/{v}: version -1 is "latest". */
int registry_get_version(td_engine *e, const char *subject, int32_t version, unsigned flags,
                         registry_result *out, const char **msg);
/* GET /subjects/{s}/versions/{v}/referencedby (out->ints: ids). */
int registry_referenced_by(td_engine *e, const char *subject, int32_t version,
                           registry_result *out, const char **msg);
/* GET /schemas/ids/{id} (out->schemas[0], subject NULL; with subject non-NULL, only if it is
 * registered under it), /schemas/ids/{id}/subjects (out->names),
 * /schemas/ids/{id}/versions (out->schemas: subject and version of each). */
int registry_get_id(td_engine *e, int32_t id, const char *subject, registry_result *out,
                    const char **msg);
int registry_id_subjects(td_engine *e, int32_t id, unsigned flags, registry_result *out,
                         const char **msg);
int registry_id_versions(td_engine *e, int32_t id, unsigned flags, registry_result *out,
                         const char **msg);
/* GET /schemas (every schema, latest only or not, subjectPrefix): out->schemas. */
int registry_schemas(td_engine *e, const char *prefix, bool latest_only, unsigned flags,
                     registry_result *out);
/* DELETE /subjects/{s}[?permanent=true]: out->ints, the versions deleted. */
int registry_delete_subject(td_engine *e, const char *subject, bool permanent,
                            registry_result *out, const char **msg);
/* DELETE /subjects/{s}/versions/{v}[?permanent=true] (-1: latest). */
int registry_delete_version(td_engine *e, const char *subject, int32_t version, bool permanent,
                            registry_result *out, const char **msg);
/* POST /compatibility/subjects/{s}/versions/{v} (version -1: latest; -2: every version, as
 * /compatibility/subjects/{s}/versions): *compatible, and the reasons in out->messages. */
int registry_check(td_engine *e, const char *subject, int32_t version, const registry_input *in,
                   bool *compatible, registry_result *out, const char **msg);
/* GET/PUT/DELETE /config[/{s}]: subject NULL is the global level. get with fallback (the
 * ?defaultToGlobal=true behaviour) answers the global level for a subject without its own;
 * without it, REG_ESUBJECT_LEVEL_COMPAT_NOT_CONFIGURED. */
int registry_config_get(td_engine *e, const char *subject, bool fallback, registry_compat *out,
                        const char **msg);
int registry_config_set(td_engine *e, const char *subject, registry_compat c, const char **msg);
int registry_config_delete(td_engine *e, const char *subject, registry_compat *old,
                           const char **msg);
/* GET/PUT/DELETE /mode[/{s}]: the same for modes. IMPORT may be set only while the registry
 * (or the subject) holds no schema, unless force. */
int registry_mode_get(td_engine *e, const char *subject, bool fallback, registry_mode *out,
                      const char **msg);
int registry_mode_set(td_engine *e, const char *subject, registry_mode m, bool force,
                      const char **msg);
int registry_mode_delete(td_engine *e, const char *subject, registry_mode *old,
                         const char **msg);

/*
 * Enforcement on produce (the topic's key.schema.validation / value.schema.validation).
 * The policy is read from the topic's configuration by the caller; these answer for one
 * payload. Each returns 0 when the payload is valid, or -1 with *why (a message naming the
 * rule: "not in the wire format", "schema id 7 is unknown", "schema id 7 is not registered
 * under subject t-value", or the schema's own message with the JSON pointer), and counts the
 * outcome in the topic's metrics (tidings_schema_events_total{topic,result,reason}).
 */
typedef enum registry_strategy {
    REG_STRATEGY_TOPIC = 0,   /* TopicNameStrategy: <topic>-key, <topic>-value (the default) */
    REG_STRATEGY_RECORD,      /* RecordNameStrategy: the record's full name */
    REG_STRATEGY_TOPIC_RECORD /* TopicRecordNameStrategy: <topic>-<record full name> */
} registry_strategy;

typedef struct registry_policy {
    bool key, value;             /* key.schema.validation, value.schema.validation */
    registry_strategy key_strategy, value_strategy;
    bool full;                   /* schema.validation.mode=full: decode the payload too */
} registry_policy;

/* A Kafka record's key or value in Confluent's wire format. */
int registry_check_wire(td_engine *e, const char *topic, const registry_policy *pol, bool is_key,
                        const uint8_t *p, size_t n, char *why, size_t whylen);

/*
 * The listeners' entry points (registry_check.c), over a topic reference they hold: the
 * topic's series of tidings_schema_events_total are looked up once per topic and kept on it, so
 * that counting is an atomic add.
 */
/* The policy a topic's configuration gives; registry_policy_on: whether it checks anything. */
void registry_policy_of(const td_topic_config *cfg, registry_policy *pol);
static inline bool registry_policy_on(const registry_policy *pol)
{
    return pol->key || pol->value;
}

/* Kafka produce: checks the key and value of every record of the record batches p[0..n)
 * (already checked by broker_batches_check; compressed ones are decompressed), as pol says.
 * Null keys and values (tombstones) pass; control batches are skipped. For each bad record,
 * bad(arg, index, why) with its index in its batch and a message naming the rule. Returns the
 * number of bad records (0: the batches may be appended), or -1 when a batch cannot be read
 * (*why set). Counts the records in the topic's metrics: accepted ones only when none is bad,
 * since nothing of a partition's batches is stored then. */
typedef void (*registry_bad_record_fn)(void *arg, int32_t index, const char *why);
int registry_check_batches(td_engine *e, td_topic_ref *ref, const registry_policy *pol,
                           const uint8_t *p, size_t n, registry_bad_record_fn bad, void *arg,
                           const char **why);

/* HTTP produce: one JSON value, against the latest schema of the topic's value subject. */
typedef struct registry_json_check {
    int32_t id;       /* the schema id it was validated against: the wire header to prepend */
    char pointer[256]; /* where it fails (a JSON pointer), "" for the whole value */
    char rule[48];     /* the rule (a JSON Schema keyword), or "type" for a refused schema type */
    char why[600];
} registry_json_check;
/* 0 (out->id set), or -1 with out's pointer, rule and why. The value subject's latest schema
 * must be a JSON Schema (an Avro or Protobuf one is named in why: such values must come in the
 * wire format); only TopicNameStrategy names the subject of a value that has no header. With
 * count, the outcome is counted in the topic's metrics. */
int registry_check_json_value(td_engine *e, td_topic_ref *ref, const registry_policy *pol,
                              const char *json, size_t len, bool count,
                              registry_json_check *out);
/* Counts n events accepted (HTTP arrays count once all are valid). */
void registry_count_accepted(td_engine *e, td_topic_ref *ref, uint64_t n);

/* HTTP produce of bytes (value_b64, value_text) and any other payload in the wire format:
 * registry_check_wire over a reference. */
int registry_check_wire_ref(td_engine *e, td_topic_ref *ref, const registry_policy *pol,
                            bool is_key, const uint8_t *p, size_t n, char *why, size_t whylen);

/* Redis XADD: the field map fv[0..nfv) (field, value, field, value...) as a JSON object, each
 * value a JSON string except where the schema does not accept a string for that property:
 * there the value parsed as JSON. 0, or -1 with out's pointer and why. Counted. */
int registry_check_fields(td_engine *e, td_topic_ref *ref, const registry_policy *pol,
                          const td_slice *fv, size_t nfv, registry_json_check *out);

/* HTTP and SSE reads: the length of the wire header of a value (5) when it has one whose id
 * names a JSON Schema, else 0: such a value reads as the JSON after the header. */
size_t registry_json_header(td_engine *e, const uint8_t *p, size_t n, int32_t *id);

/* An HTTP event's JSON value (or Redis field map as JSON), against the latest schema of the
 * topic's value subject, which must be a JSON Schema. *pointer gets the JSON pointer of the
 * failing part. */
int registry_check_json(td_engine *e, const char *topic, const registry_policy *pol,
                        const char *json, size_t len, char *pointer, size_t plen, char *why,
                        size_t whylen);

/*
 * Confluent's REST API v1 (registry_rest.c): method, path after the prefix (percent-encoded,
 * "/subjects/x/versions"), query (without '?', "" for none) and body (JSON) in; returns the
 * HTTP status, with *resp (malloc'd, NUL-terminated, *resp_len bytes) the answer: JSON, or the
 * raw schema for .../schema; errors are {"error_code", "message"}. p is who asks (the
 * authorization of docs/schemas.md), NULL for a local caller with every permission.
 */
struct td_principal;
int registry_rest(td_engine *e, const struct td_principal *p, const char *method,
                  const char *path, const char *query, const char *body, size_t len, char **resp,
                  size_t *resp_len);
/* The same without blocking on the fsync: when the request changed something, returns 1 and
 * calls done(arg, status, resp, resp_len) once its records are durable (on the engine's flusher
 * thread, or in this thread before returning; resp is malloc'd and passes to done); else 0 with
 * the answer in *status, *resp and *resp_len, as registry_rest. For event loops. */
typedef void (*registry_rest_done)(void *arg, int status, char *resp, size_t resp_len);
int registry_rest_async(td_engine *e, const struct td_principal *p, const char *method,
                        const char *path, const char *query, const char *body, size_t len,
                        int *status, char **resp, size_t *resp_len, registry_rest_done done,
                        void *arg);
/* Percent-decodes s[0..n) into a malloc'd string ('+' as a space when plus_space); NULL for a
 * bad escape, an escaped NUL or no memory. Pure. */
char *registry_pct_decode(const char *s, size_t n, bool plus_space);

/* Opens and closes the registry with the engine (engine.c), after state_open. */
typedef struct td_registry td_registry;
int registry_open(td_engine *e, td_registry **out);
void registry_close(td_registry *r);

#endif /* TD_BROKER_REGISTRY_H */
