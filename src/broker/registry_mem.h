/*
 * registry_mem.h: the schema registry's memory, shared by its files only: registry_store.c (the
 * records of __schemas, replay, lookups), registry.c (the changes and queries of registry.h)
 * and registry_rest.c (Confluent's REST API over them).
 *
 * Locking: `lock` (a rwlock) guards the memory below; readers (the REST queries and the
 * enforcement on produce, once per record) take it shared. `write_mu` serializes the changes:
 * a change validates against memory, appends its records to __schemas and applies them to
 * memory (under `lock` exclusive, briefly) while holding write_mu, so that memory and the log
 * agree in order; it waits for durability after releasing write_mu, so that readers never wait
 * for an fsync. The order is write_mu, then lock.
 */
#ifndef TD_BROKER_REGISTRY_MEM_H
#define TD_BROKER_REGISTRY_MEM_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/base.h"
#include "broker/registry_int.h"

#define REG_SUBJECT_MAX 1024
#define REG_MAX_REFS 1000 /* references of one schema, transitively */
#define REG_DEFAULT_MAX_SCHEMAS 100000
#define REG_DEFAULT_MAX_BYTES (1 << 20)

/* One schema ID: the schema's identity (type, canonical text, references) and its parse. */
typedef struct reg_id {
    int32_t id;
    schema_type type;
    char *text; /* canonical, NUL-terminated */
    size_t len;
    registry_ref *refs; /* strings owned */
    size_t nrefs;
    uint64_t fp;    /* fingerprint of type, text and references */
    schema *parsed; /* NULL when it no longer parses (a reference gone): logged at open */
    /* References: one of the registry's while a version holds the ID, one per
     * registry_get_schema caller. The last registry_put frees it. */
    atomic_int nref;
    int nversions; /* versions (soft-deleted ones too) holding it; under lock */
} reg_id;

typedef struct reg_version {
    int32_t version;
    bool deleted; /* soft-deleted */
    reg_id *sch;
} reg_version;

typedef struct reg_subject {
    char *name;
    reg_version *v; /* sorted by version */
    size_t n, cap;
    bool has_compat, has_mode;
    registry_compat compat;
    registry_mode mode;
} reg_subject;

struct td_registry {
    td_engine *e;
    pthread_rwlock_t lock;
    pthread_mutex_t write_mu;
    reg_subject **subs; /* sorted by name */
    size_t nsubs, capsubs;
    reg_id **ids; /* sorted by id */
    size_t nids, capids;
    int32_t max_id; /* the highest ID ever handed out (the counter record) */
    registry_compat compat;
    registry_mode mode;
    size_t nversions; /* over all subjects, soft-deleted ones too */
    int64_t max_versions, max_bytes;
    td_pool *pool; /* validates the records of large batches (registry_check.c) */
};

/* The registry of an engine (NULL before open). */
struct td_registry *registry_of(td_engine *e);

/* Lookups, under lock (shared or exclusive). */
reg_subject *reg_find_subject(struct td_registry *r, const char *name);
reg_id *reg_find_id(struct td_registry *r, int32_t id);
reg_version *reg_find_version(reg_subject *s, int32_t version);
/* The latest version, not deleted unless with_deleted; NULL if none. */
reg_version *reg_latest(reg_subject *s, bool with_deleted);
/* Whether s has a version that is not soft-deleted. */
bool reg_subject_live(const reg_subject *s);
/* The ID of this schema (type, canonical text, refs), or NULL. */
reg_id *reg_find_schema(struct td_registry *r, schema_type t, const char *text, size_t len,
                        const registry_ref *refs, size_t nrefs, uint64_t fp);
uint64_t reg_fingerprint(schema_type t, const char *text, size_t len, const registry_ref *refs,
                         size_t nrefs);
/* Whether a version that exists (soft-deleted or not) refers to subject/version. */
bool reg_is_referenced(struct td_registry *r, const char *subject, int32_t version);

/* The schemas refs refer to, transitively, referenced ones first, for schema_parse: *deps
 * (malloc'd; its strings point into the registry's memory, valid under lock). 0, or a REG_E*
 * code with the message in msg. with_deleted: soft-deleted versions resolve too (replay). */
int reg_resolve(struct td_registry *r, const registry_ref *refs, size_t nrefs, bool with_deleted,
                schema_dep **deps, size_t *ndeps, char *msg, size_t msglen);

/*
 * Changes, as records (registry_store.c writes them to __schemas and applies them to memory).
 * A version record: subject, version, the schema (ID and identity), deleted; or a tombstone.
 */
typedef struct reg_change {
    enum { REGC_VERSION, REGC_VERSION_DEL, REGC_CONFIG, REGC_MODE, REGC_COUNTER } kind;
    const char *subject; /* NULL: global (config, mode) */
    int32_t version;
    bool deleted;
    bool clear; /* config/mode: delete the subject's own (a tombstone; global: the default) */
    int value;  /* compat or mode */
    /* REGC_VERSION: the schema; sch non-NULL when the ID exists already. */
    reg_id *sch;
    int32_t id;
    schema_type type;
    const char *text;
    size_t len;
    const registry_ref *refs;
    size_t nrefs;
    schema *parsed; /* a new ID's parse, taken by the registry */
} reg_change;

/* Appends the changes as one batch and applies them to memory. Under write_mu. 0 and *end (to
 * wait for with reg_wait), or REG_ESTORE. */
int reg_commit(struct td_registry *r, reg_change *c, size_t n, int64_t *end);
int reg_wait(struct td_registry *r, int64_t end);
/* While set (non-NULL), this thread's reg_wait does not wait: it raises *end to the offset to
 * wait for and returns 0 (registry_rest_async waits once, without blocking, for the answer). */
void reg_defer_waits(int64_t *end);
/* The end of __schemas now, to wait for before answering from state a change may have made
 * that is not durable yet. */
int64_t reg_log_end(struct td_registry *r);

/* A result's arena. */
td_arena *reg_result_arena(registry_result *out);
char *reg_strdup(registry_result *out, const char *s);
/* Fills a registry_schema of the result from a version (subject non-NULL) or an ID. */
void reg_fill(registry_result *out, registry_schema *dst, const char *subject,
              const reg_version *v, const reg_id *id);

/* Authorization of the REST API (registry_rest.c). */
struct td_principal;

#endif /* TD_BROKER_REGISTRY_MEM_H */
