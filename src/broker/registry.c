/*
 * registry.c: the schema registry's operations (registry.h), with Confluent Schema Registry's
 * rules and errors: registration (identity of schemas across subjects, compatibility, modes),
 * lookups, soft and permanent deletes, compatibility levels and modes. The memory and records
 * are registry_store.c's; Confluent's REST API over these is registry_rest.c.
 *
 * Messages: *msg is a static string or a thread-local buffer, valid until the thread's next
 * call into the registry (the REST layer copies it into its answer at once).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/registry_mem.h"

static _Thread_local char tls_msg[1024];

static const char *fmt_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_msg, sizeof(tls_msg), fmt, ap);
    va_end(ap);
    return tls_msg;
}

static int fail(const char **msg, int code, const char *m)
{
    if (msg)
        *msg = m;
    return code;
}

#define SUBJECT_NOT_FOUND(msg, s) fail(msg, REG_ESUBJECT_NOT_FOUND, fmt_msg("Subject '%.900s' not found.", s))

static struct td_registry *reg(td_engine *e, const char **msg)
{
    struct td_registry *r = registry_of(e);
    if (!r && msg)
        *msg = "the schema registry is not open";
    return r;
}

/* Confluent's rule for subject names: not empty, no control characters; ours: at most
 * REG_SUBJECT_MAX bytes (the memory of a name is bounded by configuration, not by the client). */
static bool subject_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > REG_SUBJECT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static registry_mode mode_of(struct td_registry *r, const reg_subject *s)
{
    return s && s->has_mode ? s->mode : r->mode;
}

static registry_compat compat_of(struct td_registry *r, const reg_subject *s)
{
    return s && s->has_compat ? s->compat : r->compat;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing a client's schema
 */
typedef struct parsed_input {
    schema_type type;
    schema *s;
    const char *canonical;
    size_t len;
    uint64_t fp;
} parsed_input;

/* Parses in (its references resolved in memory; the caller holds write_mu or lock). */
static int parse_input(struct td_registry *r, const registry_input *in, parsed_input *out,
                       const char **msg)
{
    memset(out, 0, sizeof(*out));
    if (in->type && !schema_type_parse(in->type, &out->type))
        return fail(msg, REG_EINVALID_SCHEMA, fmt_msg("Invalid schema type %.200s", in->type));
    if (!in->text || in->len == 0)
        return fail(msg, REG_EINVALID_SCHEMA, "Empty schema");
    if ((int64_t)in->len > r->max_bytes)
        return fail(msg, REG_EINVALID_SCHEMA,
                    fmt_msg("Invalid schema: its %zu bytes are more than "
                            "schema.registry.max.schema.bytes (%" PRId64 ")",
                            in->len, r->max_bytes));
    /* The references count in the schema's bytes: a version's memory is bounded by
     * schema.registry.max.schema.bytes, whatever a client sends. */
    size_t total = in->len;
    for (size_t i = 0; i < in->nrefs; i++) {
        const registry_ref *f = &in->refs[i];
        if (!f->name || !f->subject || !f->name[0] || strlen(f->name) > 4096 ||
            !subject_valid(f->subject) || (f->version < 1 && f->version != -1))
            return fail(msg, REG_EINVALID_SCHEMA,
                        "Invalid schema: a reference needs a name, a subject and a version");
        total += strlen(f->name) + strlen(f->subject) + 8;
    }
    if ((int64_t)total > r->max_bytes)
        return fail(msg, REG_EINVALID_SCHEMA,
                    fmt_msg("Invalid schema: with its references, its %zu bytes are more than "
                            "schema.registry.max.schema.bytes (%" PRId64 ")",
                            total, r->max_bytes));
    schema_dep *deps;
    size_t ndeps;
    char why[512];
    int rc = reg_resolve(r, in->refs, in->nrefs, false, &deps, &ndeps, why, sizeof(why));
    if (rc)
        return fail(msg, rc, fmt_msg("%s", why));
    schema_error err;
    if (schema_parse(out->type, in->text, in->len, deps, ndeps, &out->s, &err) != 0) {
        free(deps);
        return fail(msg, REG_EINVALID_SCHEMA,
                    fmt_msg("Invalid schema %.300s, details: %s%s%s", in->text, err.message,
                            err.path[0] ? " at " : "", err.path));
    }
    free(deps);
    out->canonical = schema_canonical(out->s);
    out->len = strlen(out->canonical);
    out->fp = reg_fingerprint(out->type, out->canonical, out->len, in->refs, in->nrefs);
    return 0;
}

/* Whether version v of s holds this schema. */
static bool holds(const reg_version *v, const parsed_input *p, const registry_input *in)
{
    const reg_id *x = v->sch;
    if (x->fp != p->fp || x->type != p->type || x->len != p->len ||
        memcmp(x->text, p->canonical, p->len) || x->nrefs != in->nrefs)
        return false;
    for (size_t i = 0; i < in->nrefs; i++)
        if (strcmp(x->refs[i].name, in->refs[i].name) ||
            strcmp(x->refs[i].subject, in->refs[i].subject) ||
            x->refs[i].version != in->refs[i].version)
            return false;
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Compatibility
 */
static bool compat_pair(registry_compat level, const schema *news, const schema *olds,
                        schema_msgs *m)
{
    bool ok = true;
    switch (level) {
    case REG_COMPAT_BACKWARD:
    case REG_COMPAT_BACKWARD_TRANSITIVE:
        ok = schema_can_read(news, olds, m);
        break;
    case REG_COMPAT_FORWARD:
    case REG_COMPAT_FORWARD_TRANSITIVE:
        ok = schema_can_read(olds, news, m);
        break;
    case REG_COMPAT_FULL:
    case REG_COMPAT_FULL_TRANSITIVE:
        ok = schema_can_read(news, olds, m);
        ok = schema_can_read(olds, news, m) && ok;
        break;
    case REG_COMPAT_NONE:
        break;
    }
    return ok;
}

static bool transitive(registry_compat c)
{
    return c == REG_COMPAT_BACKWARD_TRANSITIVE || c == REG_COMPAT_FORWARD_TRANSITIVE ||
           c == REG_COMPAT_FULL_TRANSITIVE;
}

/* Checks news against the versions of s the level names (only: one version; 0: by the level),
 * appending Confluent's verbose lines to m. */
static bool compat_check(registry_compat level, const reg_subject *s, const reg_version *only,
                         const schema *news, schema_msgs *m)
{
    if (level == REG_COMPAT_NONE || !s)
        return true;
    bool ok = true, all = transitive(level);
    for (size_t i = s->n; i > 0; i--) {
        const reg_version *v = &s->v[i - 1];
        if (v->deleted || (only && v != only))
            continue;
        if (!v->sch->parsed) {
            if (m)
                schema_msgs_add(m, "the schema of version %" PRId32 " does not parse",
                                v->version);
            ok = false;
        } else {
            size_t before = m ? m->count : 0;
            if (schema_get_type(v->sch->parsed) != schema_get_type(news)) {
                if (m)
                    schema_msgs_add(m, "Incompatible because of different schema type");
                ok = false;
            } else if (!compat_pair(level, news, v->sch->parsed, m)) {
                ok = false;
            }
            if (m && m->count > before) {
                schema_msgs_add(m, "{oldSchemaVersion: %" PRId32 "}", v->version);
                schema_msgs_add(m, "{oldSchema: '%s'}", v->sch->text);
                schema_msgs_add(m, "{compatibility: '%s'}", registry_compat_name(level));
            }
        }
        if (!all && !only)
            break;
    }
    return ok;
}

/* ---------------------------------------------------------------------------------------------
 * Register
 */
/* Under write_mu: the change that registers p under the subject, or the existing answer. */
static int do_register(struct td_registry *r, const char *subject, const registry_input *in,
                       parsed_input *p, registry_result *out, const char **msg, int64_t *end)
{
    reg_subject *s = reg_find_subject(r, subject);
    registry_mode mode = mode_of(r, s);
    if (mode == REG_MODE_READONLY)
        return fail(msg, REG_EOPERATION_NOT_PERMITTED,
                    fmt_msg("Subject %.900s is in read-only mode", subject));
    if (in->id > 0 && mode != REG_MODE_IMPORT)
        return fail(msg, REG_EOPERATION_NOT_PERMITTED,
                    fmt_msg("Subject %.900s is not in import mode", subject));
    if (mode == REG_MODE_IMPORT && in->id <= 0)
        return fail(msg, REG_EOPERATION_NOT_PERMITTED,
                    fmt_msg("Subject %.900s is in import mode: give the schema's id", subject));
    /* Registered already under this subject (not deleted): its id and version. */
    for (size_t i = s ? s->n : 0; i > 0; i--) {
        reg_version *v = &s->v[i - 1];
        if (!v->deleted && holds(v, p, in)) {
            if (in->id > 0 && in->id != v->sch->id)
                return fail(msg, REG_EID_IN_USE,
                            fmt_msg("Overwrite new schema with id %" PRId32
                                    " is not permitted.", in->id));
            out->schemas = calloc(1, sizeof(*out->schemas));
            if (!out->schemas)
                return fail(msg, REG_ESTORE, "out of memory");
            out->nschemas = 1;
            reg_fill(out, out->schemas, subject, v, v->sch);
            *end = -1;
            return 0;
        }
    }
    reg_id *x = reg_find_schema(r, p->type, p->canonical, p->len, in->refs, in->nrefs, p->fp);
    if (in->id > 0) {
        reg_id *other = reg_find_id(r, in->id);
        if (other && other != x)
            return fail(msg, REG_EID_IN_USE,
                        fmt_msg("Overwrite new schema with id %" PRId32 " is not permitted.",
                                in->id));
        if (x && x->id != in->id)
            return fail(msg, REG_EID_IN_USE,
                        fmt_msg("Overwrite new schema with id %" PRId32
                                " is not permitted: the schema has id %" PRId32,
                                in->id, x->id));
    }
    if (mode != REG_MODE_IMPORT) {
        schema_msgs m = {0};
        registry_compat level = compat_of(r, s);
        if (!compat_check(level, s, NULL, p->s, &m)) {
            out->messages = m.text;
            return fail(msg, REG_EINCOMPATIBLE,
                        fmt_msg("Schema being registered is incompatible with an earlier schema "
                                "for subject \"%.900s\"",
                                subject));
        }
        schema_msgs_free(&m);
    }
    if ((int64_t)r->nversions >= r->max_versions)
        return fail(msg, REG_EOPERATION_NOT_PERMITTED,
                    fmt_msg("the registry holds %zu schema versions, its limit "
                            "(schema.registry.max.schemas): delete some permanently first",
                            r->nversions));
    reg_version *last = reg_latest(s, true);
    int32_t version = last ? last->version + 1 : 1;
    if (in->version > 0) {
        if (s && reg_find_version(s, in->version))
            return fail(msg, REG_EINVALID_VERSION,
                        fmt_msg("Version %" PRId32 " of subject %.900s exists already",
                                in->version, subject));
        version = in->version;
    }
    if (version <= 0)
        return fail(msg, REG_EINVALID_VERSION, "no version is left for this subject");
    reg_change c[2];
    size_t n = 0;
    int32_t id = x ? x->id : in->id > 0 ? in->id : r->max_id + 1;
    if (!x && r->max_id == INT32_MAX && in->id <= 0)
        return fail(msg, REG_ESTORE, "schema ids are exhausted");
    c[n++] = (reg_change){.kind = REGC_VERSION, .subject = subject, .version = version, .sch = x,
                          .id = id, .type = p->type, .text = p->canonical, .len = p->len,
                          .refs = in->refs, .nrefs = in->nrefs};
    if (!x) {
        /* A new id: the parse passes to the registry; the counter goes with it. */
        c[0].parsed = p->s;
        p->s = NULL;
        if (id > r->max_id)
            c[n++] = (reg_change){.kind = REGC_COUNTER, .id = id};
    }
    registry_schema res = {.subject = subject, .version = version, .id = id};
    int rc = reg_commit(r, c, n, end);
    if (c[0].parsed) /* not taken (a failed commit) */
        schema_free(c[0].parsed);
    if (rc)
        return fail(msg, rc, fmt_msg("Error while registering the schema: %s", td_last_error()));
    out->schemas = calloc(1, sizeof(*out->schemas));
    if (!out->schemas)
        return fail(msg, REG_ESTORE, "out of memory");
    out->nschemas = 1;
    out->schemas[0] = res;
    out->schemas[0].subject = reg_strdup(out, subject);
    out->schemas[0].type = schema_type_name(p->type);
    return 0;
}

int registry_register(td_engine *e, const char *subject, const registry_input *in,
                      registry_result *out, const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    if (!subject_valid(subject))
        return fail(msg, REG_EINVALID_SUBJECT,
                    fmt_msg("The specified subject '%.900s' is not a valid.", subject ? subject : ""));
    pthread_mutex_lock(&r->write_mu);
    parsed_input p;
    int64_t end = -1;
    int rc = parse_input(r, in, &p, msg);
    if (rc == 0)
        rc = do_register(r, subject, in, &p, out, msg, &end);
    pthread_mutex_unlock(&r->write_mu);
    schema_free(p.s);
    /* Found registered: the version's record may be another request's, not durable yet. */
    if (rc == 0 && end < 0)
        end = reg_log_end(r);
    if (rc == 0 && end >= 0 && (rc = reg_wait(r, end)) != 0)
        *msg = "Error while registering the schema: it is not durable";
    return rc;
}

int registry_lookup(td_engine *e, const char *subject, const registry_input *in, bool deleted,
                    registry_result *out, const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    parsed_input p;
    pthread_rwlock_rdlock(&r->lock);
    int rc = parse_input(r, in, &p, msg);
    reg_subject *s = reg_find_subject(r, subject);
    if (rc == 0 && (!s || (!deleted && !reg_subject_live(s))))
        rc = SUBJECT_NOT_FOUND(msg, subject);
    for (size_t i = s ? s->n : 0; rc == 0 && i > 0; i--) {
        reg_version *v = &s->v[i - 1];
        if ((deleted || !v->deleted) && holds(v, &p, in)) {
            if (!(out->schemas = calloc(1, sizeof(*out->schemas)))) {
                rc = fail(msg, REG_ESTORE, "out of memory");
                break;
            }
            out->nschemas = 1;
            reg_fill(out, out->schemas, subject, v, v->sch);
            break;
        }
    }
    if (rc == 0 && !out->nschemas)
        rc = fail(msg, REG_ESCHEMA_NOT_FOUND, "Schema not found");
    pthread_rwlock_unlock(&r->lock);
    schema_free(p.s);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Queries
 */
static int push_name(registry_result *out, const char *name, size_t *cap)
{
    if (out->nnames == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        char **n = realloc(out->names, c * sizeof(*n));
        if (!n)
            return -1;
        out->names = n;
        *cap = c;
    }
    char *d = reg_strdup(out, name);
    if (!d)
        return -1;
    out->names[out->nnames++] = d;
    return 0;
}

static int push_int(registry_result *out, int32_t v, size_t *cap)
{
    if (out->nints == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        int32_t *n = realloc(out->ints, c * sizeof(*n));
        if (!n)
            return -1;
        out->ints = n;
        *cap = c;
    }
    out->ints[out->nints++] = v;
    return 0;
}

static registry_schema *push_schema(registry_result *out, size_t *cap)
{
    if (out->nschemas == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        registry_schema *n = realloc(out->schemas, c * sizeof(*n));
        if (!n)
            return NULL;
        out->schemas = n;
        *cap = c;
    }
    return &out->schemas[out->nschemas++];
}

int registry_subjects(td_engine *e, const char *prefix, unsigned flags, registry_result *out)
{
    struct td_registry *r = reg(e, NULL);
    if (!r)
        return REG_ESTORE;
    size_t plen = prefix ? strlen(prefix) : 0, cap = 0;
    int rc = 0;
    pthread_rwlock_rdlock(&r->lock);
    for (size_t i = 0; i < r->nsubs && rc == 0; i++) {
        reg_subject *s = r->subs[i];
        if (!s->n || (plen && strncmp(s->name, prefix, plen)))
            continue;
        bool live = reg_subject_live(s);
        bool want = flags & REG_ONLY_DELETED ? !live : live || (flags & REG_WITH_DELETED);
        if (flags & REG_ONLY_DELETED) {
            /* deletedOnly: subjects with a soft-deleted version. */
            want = false;
            for (size_t j = 0; j < s->n && !want; j++)
                want = s->v[j].deleted;
        }
        if (want && push_name(out, s->name, &cap))
            rc = REG_ESTORE;
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

int registry_versions(td_engine *e, const char *subject, unsigned flags, registry_result *out,
                      const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    size_t cap = 0;
    int rc = 0;
    pthread_rwlock_rdlock(&r->lock);
    reg_subject *s = reg_find_subject(r, subject);
    bool with = flags & (REG_WITH_DELETED | REG_ONLY_DELETED);
    if (!s || !s->n || (!with && !reg_subject_live(s)))
        rc = SUBJECT_NOT_FOUND(msg, subject);
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        bool want = flags & REG_ONLY_DELETED ? s->v[i].deleted : with || !s->v[i].deleted;
        if (want && push_int(out, s->v[i].version, &cap))
            rc = fail(msg, REG_ESTORE, "out of memory");
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

/* The version of s (-1: latest), under lock. */
static int find_version(reg_subject *s, const char *subject, int32_t version, bool with_deleted,
                        reg_version **out, const char **msg)
{
    if (!s || !s->n || (!with_deleted && !reg_subject_live(s)))
        return SUBJECT_NOT_FOUND(msg, subject);
    reg_version *v = version == -1 ? reg_latest(s, with_deleted) : reg_find_version(s, version);
    if (!v || (v->deleted && !with_deleted)) {
        if (version == -1)
            return fail(msg, REG_EVERSION_NOT_FOUND, "Version latest not found.");
        return fail(msg, REG_EVERSION_NOT_FOUND, fmt_msg("Version %" PRId32 " not found.", version));
    }
    *out = v;
    return 0;
}

int registry_get_version(td_engine *e, const char *subject, int32_t version, unsigned flags,
                         registry_result *out, const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    pthread_rwlock_rdlock(&r->lock);
    reg_version *v = NULL;
    int rc = find_version(reg_find_subject(r, subject), subject, version,
                          flags & REG_WITH_DELETED, &v, msg);
    if (rc == 0 && !(out->schemas = calloc(1, sizeof(*out->schemas))))
        rc = fail(msg, REG_ESTORE, "out of memory");
    if (rc == 0) {
        out->nschemas = 1;
        reg_fill(out, out->schemas, subject, v, v->sch);
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

int registry_referenced_by(td_engine *e, const char *subject, int32_t version,
                           registry_result *out, const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    size_t cap = 0;
    pthread_rwlock_rdlock(&r->lock);
    reg_version *v = NULL;
    int rc = find_version(reg_find_subject(r, subject), subject, version, false, &v, msg);
    for (size_t i = 0; rc == 0 && i < r->nids; i++) {
        reg_id *x = r->ids[i];
        bool refers = false;
        for (size_t j = 0; j < x->nrefs && !refers; j++)
            refers = x->refs[j].version == v->version && !strcmp(x->refs[j].subject, subject);
        if (refers && push_int(out, x->id, &cap))
            rc = fail(msg, REG_ESTORE, "out of memory");
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

static int id_not_found(const char **msg, int32_t id)
{
    return fail(msg, REG_ESCHEMA_NOT_FOUND, fmt_msg("Schema %" PRId32 " not found", id));
}

int registry_get_id(td_engine *e, int32_t id, const char *subject, registry_result *out,
                    const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    pthread_rwlock_rdlock(&r->lock);
    reg_id *x = reg_find_id(r, id);
    int rc = x ? 0 : id_not_found(msg, id);
    if (rc == 0 && subject) {
        reg_subject *s = reg_find_subject(r, subject);
        bool has = false;
        for (size_t i = 0; s && i < s->n && !has; i++)
            has = s->v[i].sch == x;
        if (!has)
            rc = id_not_found(msg, id);
    }
    if (rc == 0 && !(out->schemas = calloc(1, sizeof(*out->schemas))))
        rc = fail(msg, REG_ESTORE, "out of memory");
    if (rc == 0) {
        out->nschemas = 1;
        reg_fill(out, out->schemas, NULL, NULL, x);
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

/* Every (subject, version) holding id: as names (subjects, once each) or as schemas. */
static int id_holders(td_engine *e, int32_t id, unsigned flags, bool as_names,
                      registry_result *out, const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    size_t cap = 0;
    pthread_rwlock_rdlock(&r->lock);
    reg_id *x = reg_find_id(r, id);
    int rc = x ? 0 : id_not_found(msg, id);
    for (size_t i = 0; rc == 0 && i < r->nsubs; i++) {
        reg_subject *s = r->subs[i];
        for (size_t j = 0; j < s->n && rc == 0; j++) {
            reg_version *v = &s->v[j];
            if (v->sch != x || (v->deleted && !(flags & REG_WITH_DELETED)))
                continue;
            if (as_names) {
                if (push_name(out, s->name, &cap))
                    rc = fail(msg, REG_ESTORE, "out of memory");
                break;
            }
            registry_schema *d = push_schema(out, &cap);
            if (!d) {
                rc = fail(msg, REG_ESTORE, "out of memory");
                break;
            }
            memset(d, 0, sizeof(*d));
            d->subject = reg_strdup(out, s->name);
            d->version = v->version;
            d->id = id;
            d->deleted = v->deleted;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

int registry_id_subjects(td_engine *e, int32_t id, unsigned flags, registry_result *out,
                         const char **msg)
{
    return id_holders(e, id, flags, true, out, msg);
}

int registry_id_versions(td_engine *e, int32_t id, unsigned flags, registry_result *out,
                         const char **msg)
{
    return id_holders(e, id, flags, false, out, msg);
}

int registry_schemas(td_engine *e, const char *prefix, bool latest_only, unsigned flags,
                     registry_result *out)
{
    struct td_registry *r = reg(e, NULL);
    if (!r)
        return REG_ESTORE;
    size_t plen = prefix ? strlen(prefix) : 0, cap = 0;
    int rc = 0;
    pthread_rwlock_rdlock(&r->lock);
    for (size_t i = 0; i < r->nsubs && rc == 0; i++) {
        reg_subject *s = r->subs[i];
        if (plen && strncmp(s->name, prefix, plen))
            continue;
        bool with = flags & REG_WITH_DELETED;
        reg_version *latest = reg_latest(s, with);
        for (size_t j = 0; j < s->n && rc == 0; j++) {
            reg_version *v = &s->v[j];
            if ((v->deleted && !with) || (latest_only && v != latest))
                continue;
            registry_schema *d = push_schema(out, &cap);
            if (!d)
                rc = REG_ESTORE;
            else
                reg_fill(out, d, s->name, v, v->sch);
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Deletes
 */
static int refused_by_reference(const char **msg, const char *subject, int32_t version)
{
    return fail(msg, REG_EREFERENCE_EXISTS,
                fmt_msg("One or more references exist to the schema "
                        "{magic=1,keytype=SCHEMA,subject=%.900s,version=%" PRId32 "}.",
                        subject, version));
}

static int commit_wait(struct td_registry *r, reg_change *c, size_t n, const char **msg)
{
    int64_t end;
    int rc = reg_commit(r, c, n, &end);
    pthread_mutex_unlock(&r->write_mu);
    if (rc == 0)
        rc = reg_wait(r, end);
    if (rc)
        *msg = fmt_msg("Error in the backend data store: %s", td_last_error());
    return rc;
}

int registry_delete_subject(td_engine *e, const char *subject, bool permanent,
                            registry_result *out, const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    pthread_mutex_lock(&r->write_mu);
    reg_subject *s = reg_find_subject(r, subject);
    int rc = 0;
    size_t cap = 0;
    if (!s || !s->n)
        rc = SUBJECT_NOT_FOUND(msg, subject);
    else if (mode_of(r, s) == REG_MODE_READONLY)
        rc = fail(msg, REG_EOPERATION_NOT_PERMITTED,
                  fmt_msg("Subject %.900s is in read-only mode", subject));
    else if (permanent && reg_subject_live(s))
        rc = fail(msg, REG_ESUBJECT_NOT_SOFT_DELETED,
                  fmt_msg("Subject '%.900s' was not deleted first before being permanently "
                          "deleted",
                          subject));
    else if (!permanent && !reg_subject_live(s))
        rc = fail(msg, REG_ESUBJECT_SOFT_DELETED,
                  fmt_msg("Subject '%.900s' was soft deleted.Set permanent=true to delete "
                          "permanently",
                          subject));
    for (size_t i = 0; rc == 0 && i < s->n; i++)
        if (reg_is_referenced(r, subject, s->v[i].version))
            rc = refused_by_reference(msg, subject, s->v[i].version);
    reg_change *c = rc == 0 ? calloc(s->n, sizeof(*c)) : NULL;
    if (rc == 0 && !c)
        rc = fail(msg, REG_ESTORE, "out of memory");
    if (rc) {
        pthread_mutex_unlock(&r->write_mu);
        return rc;
    }
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        reg_version *v = &s->v[i];
        if (!permanent && v->deleted)
            continue;
        c[n++] = (reg_change){.kind = permanent ? REGC_VERSION_DEL : REGC_VERSION,
                              .subject = s->name, .version = v->version, .deleted = true,
                              .sch = v->sch};
        if (push_int(out, v->version, &cap)) {
            free(c);
            pthread_mutex_unlock(&r->write_mu);
            return fail(msg, REG_ESTORE, "out of memory");
        }
    }
    /* The subject's name must outlive the commit, which may free it (a permanent delete). */
    char *name = strdup(subject);
    for (size_t i = 0; i < n; i++)
        c[i].subject = name;
    rc = name ? commit_wait(r, c, n, msg) : (pthread_mutex_unlock(&r->write_mu), REG_ESTORE);
    free(name);
    free(c);
    return rc;
}

int registry_delete_version(td_engine *e, const char *subject, int32_t version, bool permanent,
                            registry_result *out, const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    pthread_mutex_lock(&r->write_mu);
    reg_subject *s = reg_find_subject(r, subject);
    reg_version *v = NULL;
    /* A numbered version is found soft-deleted or not (a soft delete of a soft-deleted one is
     * 40406, as Confluent); "latest" is the latest not deleted, or for a permanent delete the
     * latest of all. */
    int rc = find_version(s, subject, version, permanent || version != -1, &v, msg);
    if (rc == 0 && mode_of(r, s) == REG_MODE_READONLY)
        rc = fail(msg, REG_EOPERATION_NOT_PERMITTED,
                  fmt_msg("Subject %.900s is in read-only mode", subject));
    else if (rc == 0 && permanent && !v->deleted)
        rc = fail(msg, REG_EVERSION_NOT_SOFT_DELETED,
                  fmt_msg("Subject '%.900s' Version %" PRId32
                          " was not deleted first before being permanently deleted",
                          subject, v->version));
    else if (rc == 0 && !permanent && v->deleted)
        rc = fail(msg, REG_EVERSION_SOFT_DELETED,
                  fmt_msg("Subject '%.900s' Version %" PRId32
                          " was soft deleted.Set permanent=true to delete permanently",
                          subject, v->version));
    else if (rc == 0 && reg_is_referenced(r, subject, v->version))
        rc = refused_by_reference(msg, subject, v->version);
    size_t cap = 0;
    if (rc == 0 && push_int(out, v->version, &cap))
        rc = fail(msg, REG_ESTORE, "out of memory");
    char *name = rc == 0 ? strdup(subject) : NULL;
    if (rc == 0 && !name)
        rc = fail(msg, REG_ESTORE, "out of memory");
    if (rc) {
        pthread_mutex_unlock(&r->write_mu);
        return rc;
    }
    reg_change c = {.kind = permanent ? REGC_VERSION_DEL : REGC_VERSION, .subject = name,
                    .version = v->version, .deleted = true, .sch = v->sch};
    rc = commit_wait(r, &c, 1, msg);
    free(name);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Compatibility checks
 */
int registry_check(td_engine *e, const char *subject, int32_t version, const registry_input *in,
                   bool *compatible, registry_result *out, const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    *compatible = false;
    parsed_input p;
    pthread_rwlock_rdlock(&r->lock);
    int rc = parse_input(r, in, &p, msg);
    reg_subject *s = reg_find_subject(r, subject);
    reg_version *only = NULL;
    if (rc == 0 && version != -2) {
        rc = find_version(s, subject, version, false, &only, msg);
    }
    if (rc == 0) {
        schema_msgs m = {0};
        registry_compat level = compat_of(r, s);
        if (version == -2) {
            /* Every version: as the level's transitive form. */
            registry_compat t = level == REG_COMPAT_BACKWARD  ? REG_COMPAT_BACKWARD_TRANSITIVE
                                : level == REG_COMPAT_FORWARD ? REG_COMPAT_FORWARD_TRANSITIVE
                                : level == REG_COMPAT_FULL    ? REG_COMPAT_FULL_TRANSITIVE
                                                              : level;
            *compatible = compat_check(t, s, NULL, p.s, &m);
        } else {
            *compatible = compat_check(level, s, only, p.s, &m);
        }
        out->messages = m.text;
    }
    pthread_rwlock_unlock(&r->lock);
    schema_free(p.s);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Config and mode
 */
int registry_config_get(td_engine *e, const char *subject, bool fallback, registry_compat *out,
                        const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    int rc = 0;
    pthread_rwlock_rdlock(&r->lock);
    reg_subject *s = subject ? reg_find_subject(r, subject) : NULL;
    if (subject && !(s && s->has_compat) && !fallback)
        rc = fail(msg, REG_ESUBJECT_LEVEL_COMPAT_NOT_CONFIGURED,
                  fmt_msg("Subject '%.900s' does not have subject-level compatibility "
                          "configured",
                          subject));
    else
        *out = compat_of(r, s);
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

static int set_level(td_engine *e, const char *subject, int kind, int value, bool clear,
                     int *old, bool need_old, const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    if (subject && !subject_valid(subject))
        return fail(msg, REG_EINVALID_SUBJECT,
                    fmt_msg("The specified subject '%.900s' is not a valid.", subject ? subject : ""));
    pthread_mutex_lock(&r->write_mu);
    reg_subject *s = subject ? reg_find_subject(r, subject) : NULL;
    int rc = 0;
    /* A subject known only by its level or mode takes memory too: bounded as versions are. */
    if (subject && !s && !clear && (int64_t)r->nsubs >= r->max_versions)
        rc = fail(msg, REG_EOPERATION_NOT_PERMITTED,
                  fmt_msg("the registry holds %zu subjects, its limit "
                          "(schema.registry.max.schemas)",
                          r->nsubs));
    if (rc == 0 && old) {
        if (kind == REGC_CONFIG)
            *old = (int)compat_of(r, s);
        else
            *old = (int)mode_of(r, s);
        bool has = !subject || (s && (kind == REGC_CONFIG ? s->has_compat : s->has_mode));
        if (need_old && !has)
            rc = subject && !s ? SUBJECT_NOT_FOUND(msg, subject)
                 : kind == REGC_CONFIG
                     ? fail(msg, REG_ESUBJECT_LEVEL_COMPAT_NOT_CONFIGURED,
                            fmt_msg("Subject '%.900s' does not have subject-level compatibility "
                                    "configured",
                                    subject))
                     : fail(msg, REG_ESUBJECT_LEVEL_MODE_NOT_CONFIGURED,
                            fmt_msg("Subject '%.900s' does not have subject-level mode "
                                    "configured",
                                    subject));
    }
    if (rc) {
        pthread_mutex_unlock(&r->write_mu);
        return rc;
    }
    reg_change c = {.kind = kind, .subject = subject, .value = value, .clear = clear};
    return commit_wait(r, &c, 1, msg);
}

int registry_config_set(td_engine *e, const char *subject, registry_compat c, const char **msg)
{
    if ((unsigned)c > REG_COMPAT_NONE)
        return fail(msg, REG_EINVALID_COMPAT, "Invalid compatibility level");
    return set_level(e, subject, REGC_CONFIG, (int)c, false, NULL, false, msg);
}

int registry_config_delete(td_engine *e, const char *subject, registry_compat *old,
                           const char **msg)
{
    int o = 0;
    int rc = set_level(e, subject, REGC_CONFIG, 0, true, &o, true, msg);
    if (old)
        *old = (registry_compat)o;
    return rc;
}

int registry_mode_get(td_engine *e, const char *subject, bool fallback, registry_mode *out,
                      const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    int rc = 0;
    pthread_rwlock_rdlock(&r->lock);
    reg_subject *s = subject ? reg_find_subject(r, subject) : NULL;
    if (subject && !(s && s->has_mode) && !fallback)
        rc = fail(msg, REG_ESUBJECT_LEVEL_MODE_NOT_CONFIGURED,
                  fmt_msg("Subject '%.900s' does not have subject-level mode configured",
                          subject));
    else
        *out = mode_of(r, s);
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

int registry_mode_set(td_engine *e, const char *subject, registry_mode m, bool force,
                      const char **msg)
{
    struct td_registry *r = reg(e, msg);
    if (!r)
        return REG_ESTORE;
    if ((unsigned)m > REG_MODE_IMPORT)
        return fail(msg, REG_EINVALID_MODE,
                    "Invalid mode. Valid values are READWRITE, READONLY, IMPORT");
    if (m == REG_MODE_IMPORT && !force) {
        /* Confluent: IMPORT only on an empty registry (or subject), unless forced. */
        pthread_rwlock_rdlock(&r->lock);
        bool empty = true;
        if (subject)
            empty = !reg_subject_live(reg_find_subject(r, subject));
        else
            for (size_t i = 0; i < r->nsubs && empty; i++)
                empty = !reg_subject_live(r->subs[i]);
        pthread_rwlock_unlock(&r->lock);
        if (!empty)
            return fail(msg, REG_EOPERATION_NOT_PERMITTED,
                        "Cannot import since found existing subjects");
    }
    return set_level(e, subject, REGC_MODE, (int)m, false, NULL, false, msg);
}

int registry_mode_delete(td_engine *e, const char *subject, registry_mode *old,
                         const char **msg)
{
    int o = 0;
    int rc = set_level(e, subject, REGC_MODE, 0, true, &o, true, msg);
    if (old)
        *old = (registry_mode)o;
    return rc;
}
