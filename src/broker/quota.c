/*
 * quota.c: client quotas (quota.h, and td_quota_* of include/tidings.h).
 *
 * The configuration is a small array (one entry per entity that has a quota), changed under
 * the engine's admin_mu after the catalog has it, read under a rwlock. The measurements
 * (sensors) are a hash table with an LRU list, under one mutex: a record is a lookup, an add to
 * the current sample and a sum of QUOTA_SAMPLES doubles. Nothing is measured for a key that no
 * quota has (one atomic load).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/metrics.h"
#include "broker/engine_int.h"
#include "broker/quota.h"
#include "storage/storage.h"

#define BUCKETS 4096 /* QUOTA_SENSORS_MAX / 4 */

typedef struct sensor {
    struct sensor *hnext;      /* the bucket's chain */
    struct sensor *prev, *next; /* LRU: head most recently used */
    uint64_t hash;
    int key;
    char *user, *client; /* the tags: "" for a level the quota entity does not have */
    double val[QUOTA_SAMPLES];
    int64_t start[QUOTA_SAMPLES]; /* a sample's first ms; INT64_MIN: unused */
    int cur;
    int64_t last_ms;
    /* The token bucket that decides throttling: up to QUOTA_BURST_MS of the quota, refilled at
     * the quota's rate; a record takes its amount, and a negative balance is the debt the
     * client waits out. tokens_ms: when tokens was last brought up to date. */
    double tokens;
    int64_t tokens_ms;
    bool bucket;
    double limit;            /* the quota last applied */
    double throttle_ms_total; /* throttle handed out, for the metrics */
} sensor;

struct td_quotas {
    pthread_rwlock_t cfg_lock;
    td_quota_info *cfg;
    size_t ncfg, capcfg;
    int any[TD_QUOTA_KEYS]; /* atomic: entities having each key */
    pthread_mutex_t mu;
    sensor **buckets; /* BUCKETS chains, allocated with the first sensor */
    sensor *lru_head, *lru_tail;
    size_t nsensors;
};

static const char *const key_names[TD_QUOTA_KEYS] = {"producer_byte_rate", "consumer_byte_rate",
                                                      "request_percentage"};

const char *td_quota_key_name(int key)
{
    return key >= 0 && key < TD_QUOTA_KEYS ? key_names[key] : NULL;
}

int td_quota_key_parse(const char *name)
{
    for (int k = 0; name && k < TD_QUOTA_KEYS; k++)
        if (!strcmp(name, key_names[k]))
            return k;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Configuration
 */

static int entity_cmp(const td_quota_entity *a, const td_quota_entity *b)
{
    if (a->user_level != b->user_level)
        return (int)a->user_level - (int)b->user_level;
    int c = strcmp(a->user, b->user);
    if (c)
        return c;
    if (a->client_level != b->client_level)
        return (int)a->client_level - (int)b->client_level;
    return strcmp(a->client_id, b->client_id);
}

static int check_client_id(const char *s)
{
    size_t n = strnlen(s, TD_QUOTA_CLIENT_ID_MAX + 1);
    if (n == 0 || n > TD_QUOTA_CLIENT_ID_MAX)
        return td_fail(TD_ENAME, "client id: 1 to %d bytes", TD_QUOTA_CLIENT_ID_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return td_fail(TD_ENAME, "client id: no control characters");
    return 0;
}

static int check_entity(const td_quota_entity *en)
{
    if ((unsigned)en->user_level > TD_QUOTA_NAMED || (unsigned)en->client_level > TD_QUOTA_NAMED)
        return td_fail(TD_EINVAL, "quota entity: unknown level");
    if (en->user_level == TD_QUOTA_ABSENT && en->client_level == TD_QUOTA_ABSENT)
        return td_fail(TD_EINVAL, "quota entity: a user, a client id, or both are needed");
    if (en->user_level == TD_QUOTA_NAMED && td_user_name_validate(en->user) != 0)
        return TD_ENAME;
    if (en->client_level == TD_QUOTA_NAMED)
        return check_client_id(en->client_id);
    return 0;
}

static int check_op(const td_quota_op *op)
{
    const char *name = td_quota_key_name(op->key);
    if (!name)
        return td_fail(TD_EINVAL, "unknown quota key %d", op->key);
    if (op->remove)
        return 0;
    /* Kafka takes byte rates as longs and request_percentage as a double; all must be > 0. */
    if (!isfinite(op->value) || op->value <= 0 || op->value > 1e15)
        return td_fail(TD_EINVAL, "%s: a value above 0 is needed", name);
    if (op->key != TD_QUOTA_REQUEST_PERCENTAGE && op->value != floor(op->value))
        return td_fail(TD_EINVAL, "%s: a whole number of bytes per second is needed", name);
    return 0;
}

/* The entity's entry in a sorted configuration, or where it would go (*found false). */
static size_t cfg_find(const td_quota_info *v, size_t n, const td_quota_entity *en, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = entity_cmp(&v[mid].entity, en);
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

/* A normalized copy: names only for named levels, zeroed elsewhere. */
static void entity_norm(const td_quota_entity *in, td_quota_entity *out)
{
    memset(out, 0, sizeof(*out));
    out->user_level = in->user_level;
    out->client_level = in->client_level;
    if (in->user_level == TD_QUOTA_NAMED)
        snprintf(out->user, sizeof(out->user), "%s", in->user);
    if (in->client_level == TD_QUOTA_NAMED)
        snprintf(out->client_id, sizeof(out->client_id), "%s", in->client_id);
}

static void count_keys(struct td_quotas *q)
{
    for (int k = 0; k < TD_QUOTA_KEYS; k++) {
        int n = 0;
        for (size_t i = 0; i < q->ncfg; i++)
            n += (q->cfg[i].has >> k) & 1;
        __atomic_store_n(&q->any[k], n, __ATOMIC_RELEASE);
    }
}

/* Puts the entity's new values into the configuration in force (under admin_mu). */
static int cfg_apply(struct td_quotas *q, const td_quota_info *nq)
{
    pthread_rwlock_wrlock(&q->cfg_lock);
    bool found;
    size_t i = cfg_find(q->cfg, q->ncfg, &nq->entity, &found);
    int rc = 0;
    if (found && nq->has == 0) {
        memmove(&q->cfg[i], &q->cfg[i + 1], (q->ncfg - i - 1) * sizeof(*q->cfg));
        q->ncfg--;
    } else if (found) {
        q->cfg[i] = *nq;
    } else if (nq->has) {
        if (td_grow(&q->cfg, &q->capcfg, q->ncfg, sizeof(*q->cfg), 8) != 0) {
            rc = -ENOMEM;
        } else {
            memmove(&q->cfg[i + 1], &q->cfg[i], (q->ncfg - i) * sizeof(*q->cfg));
            q->cfg[i] = *nq;
            q->ncfg++;
        }
    }
    count_keys(q);
    pthread_rwlock_unlock(&q->cfg_lock);
    return rc;
}

int td_quota_alter(td_engine *e, const td_quota_entity *entity, const td_quota_op *ops, size_t n,
                   int validate_only)
{
    td_error_clear();
    int rc = check_entity(entity);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = check_op(&ops[i]);
    if (rc || validate_only)
        return rc;
    struct td_quotas *q = e->quotas;
    td_quota_info nq;
    memset(&nq, 0, sizeof(nq));
    entity_norm(entity, &nq.entity);
    pthread_mutex_lock(&e->admin_mu);
    pthread_rwlock_rdlock(&q->cfg_lock);
    bool found;
    size_t at = cfg_find(q->cfg, q->ncfg, &nq.entity, &found);
    if (found)
        nq = q->cfg[at];
    pthread_rwlock_unlock(&q->cfg_lock);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].remove) {
            nq.has &= ~(1 << ops[i].key);
            nq.values[ops[i].key] = 0;
        } else {
            nq.has |= 1 << ops[i].key;
            nq.values[ops[i].key] = ops[i].value;
        }
    }
    rc = catalog_quota_set(e->cat, &nq);
    if (rc == 0)
        rc = cfg_apply(q, &nq);
    pthread_mutex_unlock(&e->admin_mu);
    return rc;
}

int td_quota_list(td_engine *e, td_quota_info **out, size_t *count)
{
    struct td_quotas *q = e->quotas;
    *out = NULL;
    *count = 0;
    pthread_rwlock_rdlock(&q->cfg_lock);
    int rc = 0;
    if (q->ncfg) {
        td_quota_info *v = malloc(q->ncfg * sizeof(*v));
        if (!v) {
            rc = -ENOMEM;
        } else {
            memcpy(v, q->cfg, q->ncfg * sizeof(*v));
            *out = v;
            *count = q->ncfg;
        }
    }
    pthread_rwlock_unlock(&q->cfg_lock);
    return rc;
}

/*
 * The quota in force for a client and a key, by Kafka's precedence (rank 1 best): the limit,
 * and whether the matched entity has a user level and a client level (which decide who shares
 * the measurement). false when none applies.
 */
static bool resolve(struct td_quotas *q, const char *user, const char *client, int key,
                    double *limit, bool *by_user, bool *by_client)
{
    int best = 9;
    pthread_rwlock_rdlock(&q->cfg_lock);
    for (size_t i = 0; i < q->ncfg && best > 1; i++) {
        const td_quota_info *c = &q->cfg[i];
        if (!(c->has & (1 << key)))
            continue;
        const td_quota_entity *en = &c->entity;
        int u = en->user_level, cl = en->client_level;
        if ((u == TD_QUOTA_NAMED && strcmp(en->user, user) != 0) ||
            (cl == TD_QUOTA_NAMED && (!*client || strcmp(en->client_id, client) != 0)))
            continue;
        /* Ranks: user named 1-3, default 4-6, absent 7-8; within, client named, default,
         * absent. */
        int rank = u == TD_QUOTA_NAMED ? 1 : u == TD_QUOTA_DEFAULT ? 4 : 7;
        rank += cl == TD_QUOTA_NAMED ? 0 : cl == TD_QUOTA_DEFAULT ? 1 : 2;
        if (rank == 9)
            continue; /* no level at all: check_entity refuses it */
        if (rank < best) {
            best = rank;
            *limit = c->values[key];
            *by_user = u != TD_QUOTA_ABSENT;
            *by_client = cl != TD_QUOTA_ABSENT;
        }
    }
    pthread_rwlock_unlock(&q->cfg_lock);
    return best < 9;
}

/* ---------------------------------------------------------------------------------------------
 * Measurements
 */

static uint64_t tag_hash(int key, const char *user, const char *client)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)key;
    for (const char *s = user; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL; /* a separator that no name byte equals in place */
    for (const char *s = client; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void lru_unlink(struct td_quotas *q, sensor *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        q->lru_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        q->lru_tail = s->prev;
    s->prev = s->next = NULL;
}

static void lru_push(struct td_quotas *q, sensor *s)
{
    s->next = q->lru_head;
    s->prev = NULL;
    if (q->lru_head)
        q->lru_head->prev = s;
    q->lru_head = s;
    if (!q->lru_tail)
        q->lru_tail = s;
}

static void sensor_free(sensor *s)
{
    if (!s)
        return;
    free(s->user);
    free(s->client);
    free(s);
}

static void sensor_drop(struct td_quotas *q, sensor *s)
{
    sensor **pp = &q->buckets[s->hash % BUCKETS];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    lru_unlink(q, s);
    q->nsensors--;
    sensor_free(s);
}

/* The sensor for the tags, made if needed (under mu); NULL without memory. */
static sensor *sensor_get(struct td_quotas *q, int key, const char *user, const char *client,
                          int64_t now)
{
    if (!q->buckets && !(q->buckets = calloc(BUCKETS, sizeof(*q->buckets))))
        return NULL;
    uint64_t h = tag_hash(key, user, client);
    for (sensor *s = q->buckets[h % BUCKETS]; s; s = s->hnext)
        if (s->hash == h && s->key == key && !strcmp(s->user, user) && !strcmp(s->client, client)) {
            lru_unlink(q, s);
            lru_push(q, s);
            return s;
        }
    /* Idle sensors go first; past the bound, the least recently used. */
    while (q->lru_tail && (now - q->lru_tail->last_ms >= QUOTA_SENSOR_IDLE_MS ||
                           q->nsensors >= QUOTA_SENSORS_MAX))
        sensor_drop(q, q->lru_tail);
    sensor *s = calloc(1, sizeof(*s));
    if (!s || !(s->user = strdup(user)) || !(s->client = strdup(client))) {
        sensor_free(s);
        return NULL;
    }
    s->hash = h;
    s->key = key;
    for (int i = 0; i < QUOTA_SAMPLES; i++)
        s->start[i] = INT64_MIN;
    s->hnext = q->buckets[h % BUCKETS];
    q->buckets[h % BUCKETS] = s;
    lru_push(q, s);
    q->nsensors++;
    return s;
}

/* Adds amount to the current sample, starting a new one each QUOTA_WINDOW_MS and forgetting
 * samples older than all of them together. */
static void sensor_add(sensor *s, double amount, int64_t now)
{
    for (int i = 0; i < QUOTA_SAMPLES; i++)
        if (s->start[i] != INT64_MIN && now - s->start[i] >= (int64_t)QUOTA_SAMPLES * QUOTA_WINDOW_MS) {
            s->start[i] = INT64_MIN;
            s->val[i] = 0;
        }
    if (s->start[s->cur] == INT64_MIN) {
        s->start[s->cur] = now;
    } else if (now >= s->start[s->cur] + QUOTA_WINDOW_MS) {
        s->cur = (s->cur + 1) % QUOTA_SAMPLES;
        s->start[s->cur] = now;
        s->val[s->cur] = 0;
    }
    s->val[s->cur] += amount;
    s->last_ms = now;
}

/* The rate per second, and the elapsed time it is over (Kafka's Rate.windowSize). */
static double sensor_rate(const sensor *s, int64_t now, int64_t *elapsed_ms)
{
    double total = 0;
    int64_t oldest = now;
    for (int i = 0; i < QUOTA_SAMPLES; i++)
        if (s->start[i] != INT64_MIN) {
            total += s->val[i];
            if (s->start[i] < oldest)
                oldest = s->start[i];
        }
    int64_t elapsed = now - oldest;
    int64_t full = elapsed / QUOTA_WINDOW_MS;
    if (full < QUOTA_SAMPLES - 1)
        elapsed += (QUOTA_SAMPLES - 1 - full) * QUOTA_WINDOW_MS;
    *elapsed_ms = elapsed;
    return total * 1000.0 / (double)elapsed;
}

bool broker_quota_any(td_engine *e, td_quota_key key)
{
    return e->quotas && (unsigned)key < TD_QUOTA_KEYS &&
           __atomic_load_n(&e->quotas->any[key], __ATOMIC_ACQUIRE) > 0;
}

int64_t broker_quota_record(td_engine *e, const char *user, const char *client_id, td_quota_key key,
                            double amount, int64_t now_ms)
{
    if (!broker_quota_any(e, key))
        return 0;
    struct td_quotas *q = e->quotas;
    const char *u = user ? user : QUOTA_ANONYMOUS, *c = client_id ? client_id : "";
    double limit = 0;
    bool by_user = false, by_client = false;
    if (!resolve(q, u, c, key, &limit, &by_user, &by_client))
        return 0;
    pthread_mutex_lock(&q->mu);
    sensor *s = sensor_get(q, key, by_user ? u : "", by_client ? c : "", now_ms);
    int64_t throttle = 0;
    if (s) {
        sensor_add(s, amount, now_ms);
        s->limit = limit;
        double burst = limit * QUOTA_BURST_MS / 1000.0;
        if (!s->bucket) {
            s->bucket = true;
            s->tokens = burst;
        } else if (now_ms > s->tokens_ms) {
            s->tokens += limit * (double)(now_ms - s->tokens_ms) / 1000.0;
        }
        if (s->tokens > burst)
            s->tokens = burst;
        s->tokens_ms = now_ms;
        s->tokens -= amount;
        /* The debt is at most what the longest throttle pays back: one huge request is not
         * held against the client for longer than that. */
        double floor_tokens = -limit * QUOTA_SAMPLES * QUOTA_WINDOW_MS / 1000.0;
        if (s->tokens < floor_tokens)
            s->tokens = floor_tokens;
        if (s->tokens < 0) {
            double t = -s->tokens / limit * 1000.0;
            double cap = (double)QUOTA_SAMPLES * QUOTA_WINDOW_MS;
            throttle = (int64_t)ceil(t < cap ? t : cap);
            s->throttle_ms_total += (double)throttle;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return throttle;
}

/* ---------------------------------------------------------------------------------------------
 * Metrics: per measured entity, its rate, its quota and the throttle time handed out.
 */
static void quota_collect(void *arg, td_metrics_out *out)
{
    struct td_quotas *q = arg;
    static const char *const names[] = {"type", "user", "client_id"};
    static const struct {
        const char *name, *help;
        td_metric_type type;
    } fam[] = {
        {"tidings_quota_rate", "Measured rate per quota entity: bytes/s, or percent of one loop",
         TD_GAUGE},
        {"tidings_quota_limit", "The quota in force for the entity", TD_GAUGE},
        {"tidings_quota_throttle_seconds_total",
         "Time clients of the entity were throttled for", TD_COUNTER},
    };
    int64_t now = td_mono_ms();
    pthread_mutex_lock(&q->mu);
    for (size_t f = 0; f < TD_ARRAY_LEN(fam); f++) {
        if (!q->lru_head)
            break;
        td_metrics_text_family(out, fam[f].name, fam[f].help, fam[f].type);
        for (const sensor *s = q->lru_head; s; s = s->next) {
            const char *vals[] = {key_names[s->key], s->user, s->client};
            int64_t elapsed;
            double v = f == 0   ? sensor_rate(s, now, &elapsed)
                       : f == 1 ? s->limit
                                : s->throttle_ms_total / 1000.0;
            td_metrics_text_sample(out, fam[f].name, names, vals, 3, v);
        }
    }
    pthread_mutex_unlock(&q->mu);
}

int quotas_open(td_engine *e)
{
    struct td_quotas *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    pthread_rwlock_init(&q->cfg_lock, NULL);
    pthread_mutex_init(&q->mu, NULL);
    e->quotas = q;
    int rc = catalog_quota_list(e->cat, &q->cfg, &q->ncfg);
    if (rc == 0) {
        count_keys(q);
        rc = td_metrics_add_collector(e->metrics, quota_collect, q);
    }
    return rc;
}

void quotas_close(td_engine *e)
{
    struct td_quotas *q = e->quotas;
    if (!q)
        return;
    if (e->metrics)
        td_metrics_remove_collector(e->metrics, quota_collect, q);
    while (q->lru_head)
        sensor_drop(q, q->lru_head);
    free(q->buckets);
    free(q->cfg);
    pthread_rwlock_destroy(&q->cfg_lock);
    pthread_mutex_destroy(&q->mu);
    free(q);
    e->quotas = NULL;
}

int64_t broker_quota_debt_ms(td_engine *e, const char *user, const char *client_id, int64_t now_ms)
{
    struct td_quotas *q = e->quotas;
    if (!q)
        return 0;
    const char *u = user ? user : QUOTA_ANONYMOUS, *c = client_id ? client_id : "";
    int64_t worst = 0;
    for (int key = 0; key < TD_QUOTA_KEYS; key++) {
        double limit = 0;
        bool by_user = false, by_client = false;
        if (!broker_quota_any(e, (td_quota_key)key) ||
            !resolve(q, u, c, key, &limit, &by_user, &by_client))
            continue;
        const char *tu = by_user ? u : "", *tc = by_client ? c : "";
        uint64_t h = tag_hash(key, tu, tc);
        pthread_mutex_lock(&q->mu);
        for (sensor *s = q->buckets ? q->buckets[h % BUCKETS] : NULL; s; s = s->hnext) {
            if (s->hash != h || s->key != key || strcmp(s->user, tu) || strcmp(s->client, tc))
                continue;
            double tokens = s->tokens + limit * (double)(now_ms - s->tokens_ms) / 1000.0;
            if (s->bucket && tokens < 0) {
                int64_t t = (int64_t)ceil(-tokens / limit * 1000.0);
                worst = TD_MAX(worst, t);
            }
            break;
        }
        pthread_mutex_unlock(&q->mu);
    }
    return TD_MIN(worst, (int64_t)QUOTA_SAMPLES * QUOTA_WINDOW_MS);
}
