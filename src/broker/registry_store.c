/*
 * registry_store.c: the schema registry's memory and its records in the compacted state topic
 * __schemas (state.h): the records' format, their replay at open, the lookups the other
 * registry files share (registry_mem.h) and those the enforcement uses (registry_int.h).
 *
 * Records (docs/storage.md, "State topics"); strings are Kafka's (int16 length), the schema's
 * text an int32 length then its bytes (a schema may pass 32767 bytes):
 *   version  key   int16 0, string subject, int32 version
 *            value int16 0, int32 id, int16 deleted (0|1), int16 type (0 AVRO, 1 JSON,
 *                  2 PROTOBUF), int32 text length, text, int32 references, and per reference
 *                  string name, string subject, int32 version
 *            tombstone: the version was deleted permanently
 *   config   key   int16 1, string subject (null: the global level)
 *            value int16 0, int16 level (registry_compat); tombstone: the subject's is removed
 *            (the global one: back to BACKWARD)
 *   mode     key   int16 2, string subject (null: global); value int16 0, int16 mode
 *   counter  key   int16 3; value int16 0, int32 the highest schema ID handed out
 * The counter record is written with every version that takes a new ID, in the same batch, so
 * that an ID is never handed out twice, even once every version holding it is deleted
 * permanently and compaction removed its records.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/engine_int.h"
#include "broker/registry_mem.h"
#include "broker/state.h"

enum { KEY_VERSION = 0, KEY_CONFIG = 1, KEY_MODE = 2, KEY_COUNTER = 3 };

struct td_registry *registry_of(td_engine *e)
{
    return e ? e->registry : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Names
 */
static const char *const compat_names[] = {"BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD",
                                           "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE",
                                           "NONE"};
static const char *const mode_names[] = {"READWRITE", "READONLY", "IMPORT"};

const char *registry_compat_name(registry_compat c)
{
    return (unsigned)c < TD_ARRAY_LEN(compat_names) ? compat_names[c] : "BACKWARD";
}

bool registry_compat_parse(const char *name, registry_compat *out)
{
    /* Confluent accepts the level in any case ("backward"). */
    for (size_t i = 0; name && i < TD_ARRAY_LEN(compat_names); i++)
        if (!strcasecmp(name, compat_names[i])) {
            *out = (registry_compat)i;
            return true;
        }
    return false;
}

const char *registry_mode_name(registry_mode m)
{
    return (unsigned)m < TD_ARRAY_LEN(mode_names) ? mode_names[m] : "READWRITE";
}

bool registry_mode_parse(const char *name, registry_mode *out)
{
    for (size_t i = 0; name && i < TD_ARRAY_LEN(mode_names); i++)
        if (!strcasecmp(name, mode_names[i])) {
            *out = (registry_mode)i;
            return true;
        }
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * Results
 */
td_arena *reg_result_arena(registry_result *out)
{
    if (!out->mem) {
        td_arena *a = malloc(sizeof(*a));
        if (!a)
            return NULL;
        td_arena_init(a);
        out->mem = a;
    }
    return out->mem;
}

char *reg_strdup(registry_result *out, const char *s)
{
    td_arena *a = reg_result_arena(out);
    return a && s ? td_arena_strndup(a, s, strlen(s)) : NULL;
}

void registry_result_free(registry_result *r)
{
    if (!r)
        return;
    if (r->mem) {
        td_arena_free(r->mem);
        free(r->mem);
    }
    free(r->schemas);
    free(r->names);
    free(r->ints);
    free(r->messages);
    memset(r, 0, sizeof(*r));
}

void reg_fill(registry_result *out, registry_schema *dst, const char *subject,
              const reg_version *v, const reg_id *id)
{
    td_arena *a = reg_result_arena(out);
    memset(dst, 0, sizeof(*dst));
    if (!a)
        return;
    dst->subject = subject ? td_arena_strndup(a, subject, strlen(subject)) : NULL;
    dst->version = v ? v->version : 0;
    dst->deleted = v ? v->deleted : false;
    dst->id = id->id;
    dst->type = schema_type_name(id->type);
    dst->text = td_arena_strndup(a, id->text, id->len);
    if (id->nrefs) {
        registry_ref *refs = td_arena_calloc(a, id->nrefs, sizeof(*refs));
        for (size_t i = 0; refs && i < id->nrefs; i++) {
            refs[i].name = td_arena_strndup(a, id->refs[i].name, strlen(id->refs[i].name));
            refs[i].subject = td_arena_strndup(a, id->refs[i].subject,
                                               strlen(id->refs[i].subject));
            refs[i].version = id->refs[i].version;
        }
        dst->refs = refs;
        dst->nrefs = refs ? id->nrefs : 0;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Lookups
 */
static size_t subject_pos(struct td_registry *r, const char *name, bool *found)
{
    size_t lo = 0, hi = r->nsubs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->subs[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

reg_subject *reg_find_subject(struct td_registry *r, const char *name)
{
    bool found;
    size_t i = subject_pos(r, name, &found);
    return found ? r->subs[i] : NULL;
}

static size_t id_pos(struct td_registry *r, int32_t id, bool *found)
{
    size_t lo = 0, hi = r->nids;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->ids[mid]->id == id) {
            *found = true;
            return mid;
        }
        if (r->ids[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

reg_id *reg_find_id(struct td_registry *r, int32_t id)
{
    bool found;
    size_t i = id_pos(r, id, &found);
    return found ? r->ids[i] : NULL;
}

static size_t version_pos(reg_subject *s, int32_t version, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->v[mid].version == version) {
            *found = true;
            return mid;
        }
        if (s->v[mid].version < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

reg_version *reg_find_version(reg_subject *s, int32_t version)
{
    bool found;
    size_t i = version_pos(s, version, &found);
    return found ? &s->v[i] : NULL;
}

reg_version *reg_latest(reg_subject *s, bool with_deleted)
{
    for (size_t i = s ? s->n : 0; i > 0; i--)
        if (with_deleted || !s->v[i - 1].deleted)
            return &s->v[i - 1];
    return NULL;
}

bool reg_subject_live(const reg_subject *s)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (!s->v[i].deleted)
            return true;
    return false;
}

uint64_t reg_fingerprint(schema_type t, const char *text, size_t len, const registry_ref *refs,
                         size_t nrefs)
{
    /* FNV-1a over the fields with separators, so that no two identities share an input. */
    td_buf b;
    td_buf_init(&b);
    uint8_t tb = (uint8_t)t;
    int rc = td_buf_append(&b, &tb, 1) | td_buf_append(&b, text, len);
    for (size_t i = 0; i < nrefs; i++) {
        rc |= td_buf_append(&b, "\0", 1) | td_buf_append(&b, refs[i].name, strlen(refs[i].name)) |
              td_buf_append(&b, "\0", 1) |
              td_buf_append(&b, refs[i].subject, strlen(refs[i].subject)) |
              td_buf_append_be32(&b, (uint32_t)refs[i].version);
    }
    uint64_t h = rc ? 0 : td_hash64(b.p, b.len);
    td_buf_free(&b);
    return h;
}

static bool same_refs(const registry_ref *a, size_t na, const registry_ref *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].name, b[i].name) || strcmp(a[i].subject, b[i].subject) ||
            a[i].version != b[i].version)
            return false;
    return true;
}

reg_id *reg_find_schema(struct td_registry *r, schema_type t, const char *text, size_t len,
                        const registry_ref *refs, size_t nrefs, uint64_t fp)
{
    /* A scan of fingerprints: registrations are rare, and 100000 comparisons of a word take
     * far less than the fsync that follows. */
    for (size_t i = 0; i < r->nids; i++) {
        reg_id *x = r->ids[i];
        if (x->fp == fp && x->type == t && x->len == len && !memcmp(x->text, text, len) &&
            same_refs(x->refs, x->nrefs, refs, nrefs))
            return x;
    }
    return NULL;
}

bool reg_is_referenced(struct td_registry *r, const char *subject, int32_t version)
{
    for (size_t i = 0; i < r->nids; i++) {
        reg_id *x = r->ids[i];
        for (size_t j = 0; j < x->nrefs; j++)
            if (x->refs[j].version == version && !strcmp(x->refs[j].subject, subject))
                return true;
    }
    return false;
}

typedef struct resolve_ctx {
    struct td_registry *r;
    bool with_deleted;
    schema_dep *deps;
    size_t n, cap;
    char *msg;
    size_t msglen;
} resolve_ctx;

static int resolve_into(resolve_ctx *c, const registry_ref *refs, size_t nrefs, int depth)
{
    if (depth > SCHEMA_MAX_DEPTH) {
        snprintf(c->msg, c->msglen, "references nest deeper than %d", SCHEMA_MAX_DEPTH);
        return REG_EINVALID_SCHEMA;
    }
    for (size_t i = 0; i < nrefs; i++) {
        const registry_ref *ref = &refs[i];
        bool seen = false;
        for (size_t j = 0; j < c->n && !seen; j++)
            seen = !strcmp(c->deps[j].name, ref->name);
        if (seen)
            continue;
        reg_subject *s = reg_find_subject(c->r, ref->subject);
        reg_version *v = NULL;
        if (s)
            v = ref->version == -1 ? reg_latest(s, c->with_deleted)
                                   : reg_find_version(s, ref->version);
        if (!v || (v->deleted && !c->with_deleted)) {
            snprintf(c->msg, c->msglen,
                     "Invalid schema: the reference '%.200s' names subject '%.200s' version "
                     "%" PRId32 ", which does not exist",
                     ref->name, ref->subject, ref->version);
            return REG_EINVALID_SCHEMA;
        }
        int rc = resolve_into(c, v->sch->refs, v->sch->nrefs, depth + 1);
        if (rc)
            return rc;
        if (c->n == REG_MAX_REFS) {
            snprintf(c->msg, c->msglen, "more than %d references", REG_MAX_REFS);
            return REG_EINVALID_SCHEMA;
        }
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 8;
            schema_dep *d = realloc(c->deps, cap * sizeof(*d));
            if (!d) {
                snprintf(c->msg, c->msglen, "out of memory");
                return REG_ESTORE;
            }
            c->deps = d;
            c->cap = cap;
        }
        c->deps[c->n++] = (schema_dep){ref->name, v->sch->text, v->sch->len};
    }
    return 0;
}

int reg_resolve(struct td_registry *r, const registry_ref *refs, size_t nrefs, bool with_deleted,
                schema_dep **deps, size_t *ndeps, char *msg, size_t msglen)
{
    resolve_ctx c = {.r = r, .with_deleted = with_deleted, .msg = msg, .msglen = msglen};
    int rc = resolve_into(&c, refs, nrefs, 0);
    if (rc) {
        free(c.deps);
        c.deps = NULL;
        c.n = 0;
    }
    *deps = c.deps;
    *ndeps = c.n;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Memory changes (under lock exclusive, or alone at open)
 */
static void id_unref(reg_id *x)
{
    if (atomic_fetch_sub(&x->nref, 1) != 1)
        return;
    schema_free(x->parsed);
    for (size_t i = 0; i < x->nrefs; i++) {
        free((char *)x->refs[i].name);
        free((char *)x->refs[i].subject);
    }
    free(x->refs);
    free(x->text);
    free(x);
}

static reg_id *id_new(int32_t id, schema_type t, const char *text, size_t len,
                      const registry_ref *refs, size_t nrefs)
{
    reg_id *x = calloc(1, sizeof(*x));
    if (!x || !(x->text = malloc(len + 1)) ||
        (nrefs && !(x->refs = calloc(nrefs, sizeof(*x->refs))))) {
        if (x)
            free(x->text);
        free(x);
        return NULL;
    }
    memcpy(x->text, text, len);
    x->text[len] = '\0';
    x->len = len;
    x->id = id;
    x->type = t;
    atomic_init(&x->nref, 1);
    for (size_t i = 0; i < nrefs; i++) {
        x->refs[i].name = strdup(refs[i].name);
        x->refs[i].subject = strdup(refs[i].subject);
        x->refs[i].version = refs[i].version;
        x->nrefs = i + 1;
        if (!x->refs[i].name || !x->refs[i].subject) {
            id_unref(x);
            return NULL;
        }
    }
    x->fp = reg_fingerprint(t, text, len, refs, nrefs);
    return x;
}

static void id_drop_version(struct td_registry *r, reg_id *x)
{
    if (--x->nversions > 0)
        return;
    bool found;
    size_t i = id_pos(r, x->id, &found);
    if (found) {
        memmove(&r->ids[i], &r->ids[i + 1], (r->nids - i - 1) * sizeof(*r->ids));
        r->nids--;
    }
    id_unref(x);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static reg_subject *subject_get(struct td_registry *r, const char *name, bool create)
{
    bool found;
    size_t i = subject_pos(r, name, &found);
    if (found || !create)
        return found ? r->subs[i] : NULL;
    if (grow((void **)&r->subs, &r->capsubs, r->nsubs + 1, sizeof(*r->subs)))
        return NULL;
    reg_subject *s = calloc(1, sizeof(*s));
    if (!s || !(s->name = strdup(name))) {
        free(s);
        return NULL;
    }
    memmove(&r->subs[i + 1], &r->subs[i], (r->nsubs - i) * sizeof(*r->subs));
    r->subs[i] = s;
    r->nsubs++;
    return s;
}

static void subject_gc(struct td_registry *r, reg_subject *s)
{
    if (s->n || s->has_compat || s->has_mode)
        return;
    bool found;
    size_t i = subject_pos(r, s->name, &found);
    if (found) {
        memmove(&r->subs[i], &r->subs[i + 1], (r->nsubs - i - 1) * sizeof(*r->subs));
        r->nsubs--;
    }
    free(s->v);
    free(s->name);
    free(s);
}

/* A version record: the version holds the schema (found by ID, else made from the fields). */
static int apply_version(struct td_registry *r, const reg_change *c)
{
    reg_id *x = c->sch ? c->sch : reg_find_id(r, c->id);
    bool fresh = false;
    if (!x) {
        if (!(x = id_new(c->id, c->type, c->text, c->len, c->refs, c->nrefs)))
            return -ENOMEM;
        bool found;
        size_t i = id_pos(r, c->id, &found);
        if (grow((void **)&r->ids, &r->capids, r->nids + 1, sizeof(*r->ids))) {
            id_unref(x);
            return -ENOMEM;
        }
        memmove(&r->ids[i + 1], &r->ids[i], (r->nids - i) * sizeof(*r->ids));
        r->ids[i] = x;
        r->nids++;
        fresh = true;
    }
    if (fresh && c->parsed)
        x->parsed = c->parsed; /* taken */
    else if (c->parsed)
        schema_free(c->parsed);
    if (x->id > r->max_id)
        r->max_id = x->id;
    reg_subject *s = subject_get(r, c->subject, true);
    if (!s || grow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v))) {
        if (fresh) {
            x->nversions = 1;
            id_drop_version(r, x);
        }
        return -ENOMEM;
    }
    bool found;
    size_t i = version_pos(s, c->version, &found);
    if (found) {
        reg_id *old = s->v[i].sch;
        s->v[i].deleted = c->deleted;
        if (old != x) {
            x->nversions++;
            s->v[i].sch = x;
            id_drop_version(r, old);
        }
        return 0;
    }
    memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
    s->v[i] = (reg_version){c->version, c->deleted, x};
    s->n++;
    x->nversions++;
    r->nversions++;
    return 0;
}

static void apply_version_delete(struct td_registry *r, const char *subject, int32_t version)
{
    reg_subject *s = reg_find_subject(r, subject);
    bool found;
    size_t i = s ? version_pos(s, version, &found) : 0;
    if (!s || !found)
        return;
    reg_id *x = s->v[i].sch;
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
    s->n--;
    r->nversions--;
    id_drop_version(r, x);
    subject_gc(r, s);
}

static int apply(struct td_registry *r, const reg_change *c)
{
    switch (c->kind) {
    case REGC_VERSION:
        return apply_version(r, c);
    case REGC_VERSION_DEL:
        apply_version_delete(r, c->subject, c->version);
        return 0;
    case REGC_CONFIG:
    case REGC_MODE: {
        bool is_config = c->kind == REGC_CONFIG;
        if (!c->subject) {
            if (is_config)
                r->compat = c->clear ? REG_COMPAT_BACKWARD : (registry_compat)c->value;
            else
                r->mode = c->clear ? REG_MODE_READWRITE : (registry_mode)c->value;
            return 0;
        }
        reg_subject *s = subject_get(r, c->subject, !c->clear);
        if (!s)
            return c->clear ? 0 : -ENOMEM;
        if (is_config) {
            s->has_compat = !c->clear;
            s->compat = (registry_compat)c->value;
        } else {
            s->has_mode = !c->clear;
            s->mode = (registry_mode)c->value;
        }
        subject_gc(r, s);
        return 0;
    }
    case REGC_COUNTER:
        if (c->id > r->max_id)
            r->max_id = c->id;
        return 0;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Records
 */
static int encode(const reg_change *c, td_buf *k, td_buf *v, bool *tombstone)
{
    int rc = 0;
    *tombstone = false;
    switch (c->kind) {
    case REGC_VERSION:
    case REGC_VERSION_DEL: {
        rc = state_put16(k, KEY_VERSION) | state_put_str(k, c->subject) | state_put32(k, c->version);
        if (c->kind == REGC_VERSION_DEL) {
            *tombstone = true;
            break;
        }
        const reg_id *x = c->sch;
        schema_type t = x ? x->type : c->type;
        const char *text = x ? x->text : c->text;
        size_t len = x ? x->len : c->len;
        const registry_ref *refs = x ? x->refs : c->refs;
        size_t nrefs = x ? x->nrefs : c->nrefs;
        rc |= state_put16(v, 0) | state_put32(v, x ? x->id : c->id) |
              state_put16(v, c->deleted ? 1 : 0) | state_put16(v, (int16_t)t) |
              state_put32(v, (int32_t)len) | (len ? td_buf_append(v, text, len) : 0) |
              state_put32(v, (int32_t)nrefs);
        for (size_t i = 0; i < nrefs; i++)
            rc |= state_put_str(v, refs[i].name) | state_put_str(v, refs[i].subject) |
                  state_put32(v, refs[i].version);
        break;
    }
    case REGC_CONFIG:
    case REGC_MODE:
        rc = state_put16(k, c->kind == REGC_CONFIG ? KEY_CONFIG : KEY_MODE) |
             state_put_str(k, c->subject);
        if (c->clear)
            *tombstone = true;
        else
            rc |= state_put16(v, 0) | state_put16(v, (int16_t)c->value);
        break;
    case REGC_COUNTER:
        rc = state_put16(k, KEY_COUNTER) | state_put16(v, 0) | state_put32(v, c->id);
        break;
    }
    return rc ? -ENOMEM : 0;
}

int reg_commit(struct td_registry *r, reg_change *c, size_t n, int64_t *end)
{
    td_buf *keys = calloc(n, sizeof(*keys)), *vals = calloc(n, sizeof(*vals));
    td_event *evs = calloc(n, sizeof(*evs));
    int rc = keys && vals && evs ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        bool tomb;
        td_buf_init(&keys[i]);
        td_buf_init(&vals[i]);
        rc = encode(&c[i], &keys[i], &vals[i], &tomb);
        evs[i] = (td_event){.key = keys[i].p, .key_len = keys[i].len,
                            .value = tomb ? NULL : (vals[i].p ? vals[i].p : (uint8_t *)""),
                            .value_len = tomb ? 0 : vals[i].len};
    }
    if (rc == 0)
        rc = state_append(r->e, STATE_SCHEMAS, 0, evs, n, end);
    if (rc == 0) {
        pthread_rwlock_wrlock(&r->lock);
        for (size_t i = 0; i < n; i++) {
            if (apply(r, &c[i]) != 0)
                TD_ERROR("registry", "out of memory applying a change: restart to replay it");
            c[i].parsed = NULL;
        }
        pthread_rwlock_unlock(&r->lock);
    } else {
        TD_ERROR("registry", "cannot write to %s: %s", STATE_SCHEMAS_TOPIC, td_last_error());
    }
    for (size_t i = 0; keys && vals && i < n; i++) {
        td_buf_free(&keys[i]);
        td_buf_free(&vals[i]);
    }
    free(keys);
    free(vals);
    free(evs);
    return rc ? REG_ESTORE : 0;
}

static _Thread_local int64_t *deferred_end;

void reg_defer_waits(int64_t *end)
{
    deferred_end = end;
}

int64_t reg_log_end(struct td_registry *r)
{
    return state_log_end(r->e, STATE_SCHEMAS, 0);
}

int reg_wait(struct td_registry *r, int64_t end)
{
    if (deferred_end) {
        if (end > *deferred_end)
            *deferred_end = end;
        return 0;
    }
    int rc = state_wait(r->e, STATE_SCHEMAS, 0, end);
    if (rc)
        TD_ERROR("registry", "a change of %s is not durable: %s", STATE_SCHEMAS_TOPIC,
                 td_last_error());
    return rc ? REG_ESTORE : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Replay
 */
static int replay_version(struct td_registry *r, const char *subject, int32_t version,
                          const td_event *ev)
{
    if (!ev->value) {
        apply_version_delete(r, subject, version);
        return 0;
    }
    state_reader v = {.p = ev->value, .n = ev->value_len};
    reg_change c = {.kind = REGC_VERSION, .subject = subject, .version = version};
    if (state_get16(&v) != 0)
        return -1; /* a version of the fields this tidings does not know */
    c.id = state_get32(&v);
    c.deleted = state_get16(&v) != 0;
    int16_t type = state_get16(&v);
    int32_t len = state_get32(&v);
    if (v.bad || len < 0 || (size_t)len > v.n - v.pos || type < 0 || type >= SCHEMA_NTYPES ||
        c.id <= 0 || version <= 0)
        return -1;
    c.type = (schema_type)type;
    c.text = (const char *)v.p + v.pos;
    c.len = (size_t)len;
    v.pos += (size_t)len;
    int32_t nrefs = state_get32(&v);
    if (v.bad || nrefs < 0 || nrefs > REG_MAX_REFS)
        return -1;
    registry_ref *refs = calloc((size_t)nrefs + 1, sizeof(*refs));
    if (!refs)
        return -ENOMEM;
    int rc = 0;
    for (int32_t i = 0; i < nrefs; i++) {
        refs[i].name = state_get_str(&v);
        refs[i].subject = state_get_str(&v);
        refs[i].version = state_get32(&v);
        if (v.bad || !refs[i].name || !refs[i].subject)
            rc = -1;
    }
    c.refs = refs;
    c.nrefs = (size_t)nrefs;
    if (rc == 0)
        rc = apply_version(r, &c);
    for (int32_t i = 0; i < nrefs; i++) {
        free((char *)refs[i].name);
        free((char *)refs[i].subject);
    }
    free(refs);
    return rc;
}

static int replay_record(void *arg, int32_t partition, const td_event *ev)
{
    struct td_registry *r = arg;
    (void)partition;
    state_reader k = {.p = ev->key, .n = ev->key_len};
    int16_t kind = state_get16(&k);
    char *subject = NULL;
    int rc = 0;
    if (!ev->key || k.bad)
        rc = -1;
    else if (kind == KEY_VERSION) {
        subject = state_get_str(&k);
        int32_t version = state_get32(&k);
        rc = k.bad || !subject ? -1 : replay_version(r, subject, version, ev);
    } else if (kind == KEY_CONFIG || kind == KEY_MODE) {
        subject = state_get_str(&k);
        reg_change c = {.kind = kind == KEY_CONFIG ? REGC_CONFIG : REGC_MODE, .subject = subject,
                        .clear = !ev->value};
        state_reader v = {.p = ev->value, .n = ev->value_len};
        if (ev->value && state_get16(&v) != 0)
            v.bad = true;
        if (ev->value)
            c.value = state_get16(&v);
        int lim = kind == KEY_CONFIG ? REG_COMPAT_NONE : REG_MODE_IMPORT;
        rc = k.bad || v.bad || c.value < 0 || c.value > lim ? -1 : apply(r, &c);
    } else if (kind == KEY_COUNTER) {
        state_reader v = {.p = ev->value, .n = ev->value_len};
        if (ev->value && state_get16(&v) != 0)
            v.bad = true;
        reg_change c = {.kind = REGC_COUNTER, .id = ev->value ? state_get32(&v) : 0};
        rc = v.bad ? -1 : apply(r, &c);
    } else {
        rc = -1; /* a kind of record this tidings does not know */
    }
    free(subject);
    if (rc == -ENOMEM)
        return rc;
    if (rc) {
        /* As __queue_state and __xgroup_state (docs/storage.md, "Records a replay does not
         * understand"): skipping a record could lose a schema version, or the counter that
         * keeps ids from being handed out twice; refusing the start is the lesser harm. */
        TD_ERROR("registry",
                 "%s partition 0 offset %" PRId64 ": a record of an unknown kind or version, or "
                 "malformed; refusing to start rather than lose the state it holds (run the "
                 "tidings version that wrote it, or restore the data directory)",
                 STATE_SCHEMAS_TOPIC, ev->offset);
        return td_fail(TD_ECORRUPT, "%s partition 0 offset %" PRId64 ": a record not understood",
                       STATE_SCHEMAS_TOPIC, ev->offset);
    }
    return 0;
}

/* Parses every schema once the replay has every text (references may come in any order after
 * compaction). A schema that no longer parses stays listed but cannot validate: logged. */
static void parse_all(struct td_registry *r)
{
    for (size_t i = 0; i < r->nids; i++) {
        reg_id *x = r->ids[i];
        schema_dep *deps;
        size_t ndeps;
        char msg[512];
        schema_error err;
        if (reg_resolve(r, x->refs, x->nrefs, true, &deps, &ndeps, msg, sizeof(msg)) != 0) {
            TD_WARN("registry", "schema id %" PRId32 ": %s", x->id, msg);
            continue;
        }
        if (schema_parse(x->type, x->text, x->len, deps, ndeps, &x->parsed, &err) != 0)
            TD_WARN("registry", "schema id %" PRId32 " does not parse: %s", x->id, err.message);
        free(deps);
    }
}

int registry_open(td_engine *e, td_registry **out)
{
    struct td_registry *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->e = e;
    pthread_rwlock_init(&r->lock, NULL);
    pthread_mutex_init(&r->write_mu, NULL);
    r->max_versions = e->opts.schema_registry_max_schemas > 0 ? e->opts.schema_registry_max_schemas
                                                              : REG_DEFAULT_MAX_SCHEMAS;
    r->max_bytes = e->opts.schema_registry_max_schema_bytes > 0
                       ? e->opts.schema_registry_max_schema_bytes
                       : REG_DEFAULT_MAX_BYTES;
    int threads = e->opts.schema_validation_threads;
    if (threads < 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 1 ? (int)TD_MIN(cores - 1, 64) : 0;
    }
    r->pool = td_pool_new(threads); /* NULL for 0: the producing thread validates alone */
    int rc = state_replay(e, STATE_SCHEMAS, replay_record, r);
    if (rc) {
        registry_close(r);
        return rc;
    }
    parse_all(r);
    if (r->nids)
        TD_INFO("registry", "replayed %zu schema versions of %zu subjects, %zu schema ids",
                r->nversions, r->nsubs, r->nids);
    *out = r;
    return 0;
}

void registry_close(td_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nsubs; i++) {
        free(r->subs[i]->v);
        free(r->subs[i]->name);
        free(r->subs[i]);
    }
    for (size_t i = 0; i < r->nids; i++)
        id_unref(r->ids[i]);
    free(r->subs);
    free(r->ids);
    td_pool_free(r->pool);
    pthread_rwlock_destroy(&r->lock);
    pthread_mutex_destroy(&r->write_mu);
    free(r);
}

/* ---------------------------------------------------------------------------------------------
 * registry_int.h
 */
td_pool *registry_pool(td_engine *e)
{
    struct td_registry *r = registry_of(e);
    return r ? r->pool : NULL;
}

const schema *registry_get_schema(td_engine *e, int32_t id, void **ref)
{
    struct td_registry *r = registry_of(e);
    *ref = NULL;
    if (!r)
        return NULL;
    pthread_rwlock_rdlock(&r->lock);
    reg_id *x = reg_find_id(r, id);
    const schema *s = NULL;
    if (x && x->parsed) {
        atomic_fetch_add(&x->nref, 1);
        *ref = x;
        s = x->parsed;
    }
    pthread_rwlock_unlock(&r->lock);
    return s;
}

void registry_put(void *ref)
{
    if (ref)
        id_unref(ref);
}

bool registry_subject_has_id(td_engine *e, const char *subject, int32_t id)
{
    struct td_registry *r = registry_of(e);
    if (!r || !subject)
        return false;
    bool has = false;
    pthread_rwlock_rdlock(&r->lock);
    reg_subject *s = reg_find_subject(r, subject);
    for (size_t i = 0; s && i < s->n && !has; i++)
        has = !s->v[i].deleted && s->v[i].sch->id == id;
    pthread_rwlock_unlock(&r->lock);
    return has;
}

const schema *registry_latest_schema(td_engine *e, const char *subject, int32_t *id, void **ref)
{
    struct td_registry *r = registry_of(e);
    *ref = NULL;
    if (!r || !subject)
        return NULL;
    const schema *out = NULL;
    pthread_rwlock_rdlock(&r->lock);
    reg_version *v = reg_latest(reg_find_subject(r, subject), false);
    if (v && v->sch->parsed) {
        atomic_fetch_add(&v->sch->nref, 1);
        *ref = v->sch;
        out = v->sch->parsed;
        if (id)
            *id = v->sch->id;
    }
    pthread_rwlock_unlock(&r->lock);
    return out;
}
