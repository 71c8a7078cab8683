/*
 * queue.c: queue groups on the log (queue.h has the model; docs/queues.md the behaviour).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delivery.h"
#include "broker/pattern.h"
#include "broker/queue_int.h"
#include "broker/state.h"

static void notify(td_queues *q)
{
    if (q->notify)
        q->notify(q->notify_arg);
}

/* ---------------------------------------------------------------------------------------------
 * Policy
 */
static const char *const policy_keys[] = {"ack.timeout.ms",
                                          "max.deliveries",
                                          "backoff.initial.ms",
                                          "backoff.multiplier",
                                          "backoff.max.ms",
                                          "backoff.jitter",
                                          "dead.letter.topic",
                                          "ordering",
                                          "max.in.flight",
                                          "max.in.flight.per.consumer",
                                          "start",
                                          NULL};

void td_queue_policy_init(td_queue_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->ack_timeout_ms = 30000;
    p->max_deliveries = 5;
    p->backoff_initial_ms = 1000;
    p->backoff_multiplier = 2.0;
    p->backoff_max_ms = 60000;
    p->backoff_jitter = 0.1;
    p->ordering = TD_QUEUE_UNORDERED;
    p->max_in_flight = 1000;
    p->max_in_flight_per_consumer = 100;
    p->start_latest = 0;
}

const char *const *td_queue_policy_keys(void)
{
    return policy_keys;
}

static bool parse_int(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = v && *v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || errno || *end || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

static bool parse_double(const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double x = v && *v ? strtod(v, &end) : 0;
    if (!v || !*v || errno || *end || !(x >= lo && x <= hi))
        return false;
    *out = x;
    return true;
}

static int apply_one(td_queue_policy *p, const char *k, const char *v)
{
    int64_t i;
    double d;
#define BAD(rule) td_fail(TD_ECONFIG, "queue setting %s=%s: %s", k, v ? v : "(none)", rule)
    if (!strcmp(k, "ack.timeout.ms")) {
        if (!parse_int(v, 1, 43200000, &i))
            return BAD("must be 1 to 43200000 (12 hours)");
        p->ack_timeout_ms = i;
    } else if (!strcmp(k, "max.deliveries")) {
        if (!parse_int(v, 1, 1000, &i))
            return BAD("must be 1 to 1000");
        p->max_deliveries = (int32_t)i;
    } else if (!strcmp(k, "backoff.initial.ms")) {
        if (!parse_int(v, 0, 86400000, &i))
            return BAD("must be 0 to 86400000 (a day)");
        p->backoff_initial_ms = i;
    } else if (!strcmp(k, "backoff.multiplier")) {
        if (!parse_double(v, 1, 100, &d))
            return BAD("must be 1 to 100");
        p->backoff_multiplier = d;
    } else if (!strcmp(k, "backoff.max.ms")) {
        if (!parse_int(v, 0, 86400000, &i))
            return BAD("must be 0 to 86400000 (a day)");
        p->backoff_max_ms = i;
    } else if (!strcmp(k, "backoff.jitter")) {
        if (!parse_double(v, 0, 1, &d))
            return BAD("must be 0 to 1");
        p->backoff_jitter = d;
    } else if (!strcmp(k, "dead.letter.topic")) {
        if (!v || (*v && td_topic_name_validate(v) != 0))
            return BAD("must be a topic name, or empty for <topic>.dlq");
        snprintf(p->dead_letter_topic, sizeof(p->dead_letter_topic), "%s", v);
    } else if (!strcmp(k, "ordering")) {
        if (!v || (strcmp(v, "none") && strcmp(v, "key")))
            return BAD("must be none or key");
        p->ordering = strcmp(v, "key") ? TD_QUEUE_UNORDERED : TD_QUEUE_BY_KEY;
    } else if (!strcmp(k, "max.in.flight")) {
        if (!parse_int(v, 1, 100000, &i))
            return BAD("must be 1 to 100000");
        p->max_in_flight = (int32_t)i;
    } else if (!strcmp(k, "max.in.flight.per.consumer")) {
        if (!parse_int(v, 1, 100000, &i))
            return BAD("must be 1 to 100000");
        p->max_in_flight_per_consumer = (int32_t)i;
    } else if (!strcmp(k, "start")) {
        if (!v || (strcmp(v, "earliest") && strcmp(v, "latest")))
            return BAD("must be earliest or latest");
        p->start_latest = !strcmp(v, "latest");
    } else {
        return td_fail(TD_ECONFIG, "unknown queue setting '%s'", k);
    }
#undef BAD
    return 0;
}

int td_queue_policy_apply(td_queue_policy *p, const td_config_entry *entries, size_t n)
{
    td_queue_policy c = *p;
    for (size_t i = 0; i < n; i++) {
        if (!entries[i].key)
            return td_fail(TD_ECONFIG, "queue setting %zu has no key", i);
        int rc = apply_one(&c, entries[i].key, entries[i].value);
        if (rc)
            return rc;
    }
    if (c.backoff_max_ms < c.backoff_initial_ms)
        return td_fail(TD_ECONFIG,
                       "backoff.max.ms (%" PRId64 ") is below backoff.initial.ms (%" PRId64 ")",
                       c.backoff_max_ms, c.backoff_initial_ms);
    *p = c;
    return 0;
}

int td_queue_policy_get(const td_queue_policy *p, const char *key, char *buf, size_t len)
{
    int n;
    if (!strcmp(key, "ack.timeout.ms"))
        n = snprintf(buf, len, "%" PRId64, p->ack_timeout_ms);
    else if (!strcmp(key, "max.deliveries"))
        n = snprintf(buf, len, "%" PRId32, p->max_deliveries);
    else if (!strcmp(key, "backoff.initial.ms"))
        n = snprintf(buf, len, "%" PRId64, p->backoff_initial_ms);
    else if (!strcmp(key, "backoff.multiplier"))
        n = snprintf(buf, len, "%g", p->backoff_multiplier);
    else if (!strcmp(key, "backoff.max.ms"))
        n = snprintf(buf, len, "%" PRId64, p->backoff_max_ms);
    else if (!strcmp(key, "backoff.jitter"))
        n = snprintf(buf, len, "%g", p->backoff_jitter);
    else if (!strcmp(key, "dead.letter.topic"))
        n = snprintf(buf, len, "%s", p->dead_letter_topic);
    else if (!strcmp(key, "ordering"))
        n = snprintf(buf, len, "%s", p->ordering == TD_QUEUE_BY_KEY ? "key" : "none");
    else if (!strcmp(key, "max.in.flight"))
        n = snprintf(buf, len, "%" PRId32, p->max_in_flight);
    else if (!strcmp(key, "max.in.flight.per.consumer"))
        n = snprintf(buf, len, "%" PRId32, p->max_in_flight_per_consumer);
    else if (!strcmp(key, "start"))
        n = snprintf(buf, len, "%s", p->start_latest ? "latest" : "earliest");
    else
        return td_fail(TD_ENOTFOUND, "unknown queue setting '%s'", key);
    return n < 0 || (size_t)n >= len ? TD_ETOOBIG : 0;
}

int queue_policy_format(const td_queue_policy *p, char *buf, size_t len)
{
    size_t at = 0;
    for (const char *const *k = policy_keys; *k; k++) {
        char v[TD_TOPIC_NAME_MAX + 1];
        if (td_queue_policy_get(p, *k, v, sizeof(v)) != 0)
            return TD_ETOOBIG;
        int n = snprintf(buf + at, len - at, "%s=%s\n", *k, v);
        if (n < 0 || (size_t)n >= len - at)
            return TD_ETOOBIG;
        at += (size_t)n;
    }
    return 0;
}

void queue_policy_parse(const char *text, td_queue_policy *p)
{
    td_queue_policy_init(p);
    char line[512];
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t n = nl ? (size_t)(nl - text) : strlen(text);
        if (n < sizeof(line)) {
            memcpy(line, text, n);
            line[n] = 0;
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = 0;
                if (apply_one(p, line, eq + 1) != 0)
                    td_error_clear();
            }
        }
        text += n + (nl ? 1 : 0);
    }
}

/* The dead-letter topic of the group's events from `topic`: false when <topic>.dlq is too long
 * a name (check_dlq refuses that for a group on one topic; a wildcard group can meet it). */
bool queue_dlq_name(const char *configured, const char *topic, char *buf, size_t len)
{
    if (configured[0])
        snprintf(buf, len, "%s", configured);
    else if (strlen(topic) + 4 <= TD_TOPIC_NAME_MAX)
        snprintf(buf, len, "%s.dlq", topic);
    else
        return false;
    return true;
}

/* Whether a wildcard group's pattern matches the topic and the topic is not one of the group's
 * own dead-letter topics: the configured one, or <T>.dlq for a topic T the pattern matches
 * (else "orders.#" would read back what it dead-letters). */
static bool group_reads(const qgroup *g, const char *topic)
{
    size_t n = strlen(topic), pl = strlen(g->topic);
    if (!td_pattern_match(g->topic, pl, topic, n))
        return false;
    if (g->pol.dead_letter_topic[0])
        return strcmp(topic, g->pol.dead_letter_topic) != 0;
    return !(n > 4 && !strcmp(topic + n - 4, ".dlq") &&
             td_pattern_match(g->topic, pl, topic, n - 4));
}

/* ---------------------------------------------------------------------------------------------
 * Ids
 */
static bool parse_part(const char **p, int64_t max, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (max - (*s - '0')) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    *p = s;
    return true;
}

bool queue_id_parse(const char *id, int64_t *topic_id, int32_t *partition, int64_t *offset,
                    int32_t *deliveries)
{
    const char *p = id;
    int64_t t, pa, o, d;
    if (!id || !parse_part(&p, INT64_MAX, &t) || *p++ != '.' || !parse_part(&p, INT32_MAX, &pa) ||
        *p++ != '.' || !parse_part(&p, INT64_MAX, &o) || *p++ != '.' ||
        !parse_part(&p, INT32_MAX, &d) || *p)
        return false;
    *topic_id = t;
    *partition = (int32_t)pa;
    *offset = o;
    *deliveries = (int32_t)d;
    return true;
}

/* Writes v in decimal at w; returns the end. */
static char *put_dec(char *w, uint64_t v)
{
    char t[20];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *w++ = t[--n];
    return w;
}

/* The id into buf: two int64 of at most 19 digits, two int32 of at most 10, three dots and
 * the NUL. Called per delivery: no snprintf. */
_Static_assert(19 + 10 + 19 + 10 + 3 + 1 <= TD_QUEUE_ID_MAX, "queue ids fit TD_QUEUE_ID_MAX");
static void id_format(const qtopic *t, const qpart *p, const qentry *en, char *buf)
{
    char *w = put_dec(buf, (uint64_t)t->id);
    *w++ = '.';
    w = put_dec(w, (uint32_t)p->partition);
    *w++ = '.';
    w = put_dec(w, (uint64_t)en->offset);
    *w++ = '.';
    w = put_dec(w, (uint32_t)en->deliveries);
    *w = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Entries
 */
qentry *queue_entry_find(qpart *p, int64_t offset, size_t *idx)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->v[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < p->n && p->v[lo].offset == offset) {
        if (idx)
            *idx = lo;
        return &p->v[lo];
    }
    return NULL;
}

/* Appends an entry above every other (new events come in offset order). */
qentry *queue_entry_append(qgroup *g, qpart *p, int64_t offset)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        qentry *v = realloc(p->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        p->v = v;
        p->cap = cap;
    }
    qentry *en = &p->v[p->n++];
    memset(en, 0, sizeof(*en));
    en->offset = offset;
    en->consumer = -1;
    g->pending++;
    return en;
}

static void consumer_release(qgroup *g, qentry *en)
{
    if (en->state == Q_INFLIGHT && en->consumer >= 0 && (size_t)en->consumer < g->ncons &&
        g->cons[en->consumer].inflight > 0)
        g->cons[en->consumer].inflight--;
    en->consumer = -1;
}

/* The entry is done: left as a gap (state 0) that part_compact removes once gaps are a quarter
 * of the entries, so that acks move the rest rarely, not once per ack; every loop over entries
 * skips gaps. Under ordering=key, the next held event of its key is released. */
static void entry_done(qgroup *g, qpart *p, size_t idx, int64_t now)
{
    qentry *en = &p->v[idx];
    consumer_release(g, en);
    if (g->pol.ordering == TD_QUEUE_BY_KEY && en->has_key) {
        for (size_t i = idx + 1; i < p->n; i++) {
            qentry *h = &p->v[i];
            if (h->state && h->has_key && h->key_hash == en->key_hash) {
                if (h->state == Q_HELD) {
                    h->state = Q_WAITING;
                    h->at = now;
                    g->next_due = now < g->next_due ? now : g->next_due;
                    qs_touch(g, p, h);
                }
                break;
            }
        }
    }
    qs_touch(g, p, en); /* before the state goes: a tombstone at the flush */
    free(en->error);
    en->error = NULL;
    en->state = 0;
    p->gone++;
    g->pending--;
}

/* Removes the gaps entry_done left, once they are a quarter of the entries: an ack costs
 * O(1) amortized, not a move of every entry above it, whatever the number pending. */
static void part_compact(qpart *p)
{
    if (!p->gone || p->gone * 4 < p->n)
        return;
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].state)
            p->v[k++] = p->v[i];
    p->n = k;
    p->gone = 0;
}

static double rnd(td_queues *q)
{
    /* xorshift64*: jitter needs spread, not secrecy. */
    q->rng ^= q->rng >> 12;
    q->rng ^= q->rng << 25;
    q->rng ^= q->rng >> 27;
    return (double)((q->rng * 2685821657736338717ull) >> 11) / (double)(1ull << 53);
}

int64_t queue_backoff(const td_queue_policy *pol, int32_t failures, double r)
{
    return delivery_backoff(pol, failures, r);
}

/* The delay before redelivery after the n-th failed delivery. */
static int64_t backoff(td_queues *q, const td_queue_policy *pol, int32_t failures)
{
    return queue_backoff(pol, failures, pol->backoff_jitter > 0 ? rnd(q) : 0);
}

/* An in-flight entry failed (nacked, or its deadline passed): waiting, or dead after the last
 * delivery allowed. delay_ms < 0: the backoff. */
static void entry_fail(td_queues *q, qgroup *g, qpart *p, qentry *en, int64_t now, int64_t delay_ms,
                       const char *error)
{
    consumer_release(g, en);
    if (!en->first_fail)
        en->first_fail = now;
    en->last_fail = now;
    if (error) {
        size_t n = strnlen(error, MAX_ERROR);
        char *e = malloc(n + 1);
        if (e) {
            memcpy(e, error, n);
            e[n] = 0;
            free(en->error);
            en->error = e;
        }
    }
    if (en->deliveries >= g->pol.max_deliveries) {
        en->state = Q_DEAD;
        en->at = 0;
        g->has_dead = true;
    } else {
        en->state = Q_WAITING;
        en->at = now + (delay_ms >= 0 ? delay_ms : backoff(q, &g->pol, en->deliveries));
        g->next_due = en->at < g->next_due ? en->at : g->next_due;
    }
    qs_touch(g, p, en);
}

/* Deadlines that passed become failures. Returns the earliest deadline still ahead (or
 * INT64_MAX), and sets *dead when an entry is dead. */
static int64_t sweep(td_queues *q, qgroup *g, int64_t now, bool *dead)
{
    *dead |= g->has_dead;
    if (now < g->next_deadline)
        return g->next_deadline;
    int64_t next = INT64_MAX;
    char msg[80];
    snprintf(msg, sizeof(msg), "not acknowledged within %" PRId64 " ms", g->pol.ack_timeout_ms);
    for (size_t i = 0; i < g->nall; i++) {
        qpart *p = g->all[i].p;
        for (size_t k = 0; k < p->n; k++) {
            qentry *en = &p->v[k];
            if (en->state == Q_INFLIGHT && en->at <= now) {
                entry_fail(q, g, p, en, now, -1, msg);
                notify(q);
            }
            if (en->state == Q_INFLIGHT)
                next = en->at < next ? en->at : next;
            if (en->state == Q_DEAD)
                *dead = true;
        }
    }
    g->next_deadline = next;
    return next;
}

/* ---------------------------------------------------------------------------------------------
 * Groups
 */
qgroup *queue_group_find(td_queues *q, const char *name, size_t *idx)
{
    for (size_t i = 0; i < q->n; i++) {
        int c = strcmp(q->g[i]->name, name);
        if (c >= 0) {
            if (idx)
                *idx = i;
            return c == 0 ? q->g[i] : NULL;
        }
    }
    if (idx)
        *idx = q->n;
    return NULL;
}

static void part_clear(qpart *p)
{
    for (size_t k = 0; k < p->n; k++)
        free(p->v[k].error);
    free(p->v);
    if (p->it)
        td_iter_close(p->it);
    memset(p, 0, sizeof(*p));
}

/* Drops a topic's state (in memory; and from the state topic at the next flush): its
 * deliveries are forgotten, their consumers' counts released. */
static void topic_drop(qgroup *g, qtopic *t)
{
    qs_topic_forget(g, t);
    for (int32_t i = 0; i < t->nparts; i++) {
        qpart *p = &t->parts[i];
        for (size_t k = 0; k < p->n; k++)
            consumer_release(g, &p->v[k]);
        g->pending -= (int64_t)(p->n - p->gone);
        part_clear(p);
    }
    free(t->parts);
    t->parts = NULL;
    t->nparts = 0;
}

qgroup *queue_group_new(const char *name, const char *topic, const td_queue_policy *pol,
                        int64_t created_ms)
{
    qgroup *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    snprintf(g->name, sizeof(g->name), "%s", name);
    snprintf(g->topic, sizeof(g->topic), "%s", topic);
    g->pol = *pol;
    g->created_ms = created_ms;
    g->wildcard = !td_pattern_is_literal(g->topic, strlen(g->topic));
    td_buf_init(&g->pending_recs);
    return g;
}

int queue_group_insert(td_queues *q, qgroup *g)
{
    size_t idx;
    if (queue_group_find(q, g->name, &idx))
        return td_fail(TD_EEXIST, "queue group '%s' already exists", g->name);
    if (td_grow(&q->g, &q->cap, q->n, sizeof(*q->g), 4) != 0)
        return -ENOMEM;
    memmove(&q->g[idx + 1], &q->g[idx], (q->n - idx) * sizeof(*q->g));
    q->g[idx] = g;
    q->n++;
    return 0;
}

void queue_group_free(qgroup *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->ntopics; i++) {
        for (int32_t k = 0; k < g->topics[i].nparts; k++)
            part_clear(&g->topics[i].parts[k]);
        free(g->topics[i].parts);
    }
    free(g->topics);
    free(g->all);
    free(g->cons);
    free(g->touched);
    td_buf_free(&g->pending_recs);
    free(g);
}

/* Grows the topic to nparts partitions. They start at the policy's start for the topics a group
 * finds when `created`; else their events are new to the group: at 0, the log start. */
static int topic_grow(td_engine *e, const qgroup *g, qtopic *t, int32_t nparts, bool created)
{
    if (nparts <= t->nparts)
        return 0;
    qpart *v = realloc(t->parts, (size_t)nparts * sizeof(*v));
    if (!v)
        return -ENOMEM;
    t->parts = v;
    for (int32_t i = t->nparts; i < nparts; i++) {
        memset(&v[i], 0, sizeof(v[i]));
        v[i].partition = i;
        v[i].topic_id = t->id;
        if (created)
            td_offset_for(e, t->name, i,
                          g->pol.start_latest ? TD_OFFSET_LATEST : TD_OFFSET_EARLIEST, &v[i].next);
        v[i].dirty = true;
    }
    t->nparts = nparts;
    return 0;
}

qtopic *queue_topic_find(qgroup *g, const char *name)
{
    for (size_t i = 0; i < g->ntopics; i++)
        if (!strcmp(g->topics[i].name, name))
            return &g->topics[i];
    return NULL;
}

qtopic *queue_topic_by_id(qgroup *g, int64_t id)
{
    for (size_t i = 0; i < g->ntopics; i++)
        if (g->topics[i].id == id)
            return &g->topics[i];
    return NULL;
}

static int topic_cmp(const void *a, const void *b)
{
    return strcmp(((const qtopic *)a)->name, ((const qtopic *)b)->name);
}

/* One topic the group should read now. */
typedef struct qwant {
    char name[TD_TOPIC_NAME_MAX + 1];
    int64_t id;
    int32_t nparts;
} qwant;

/* The topics the group reads now: its topic, or those its pattern matches. */
static int group_wants(td_engine *e, qgroup *g, qwant **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    td_topic_info *list = NULL;
    size_t nlist = 1;
    int rc = 0;
    if (g->wildcard && (rc = td_topic_list(e, &list, &nlist)) != 0)
        return rc;
    qwant *v = calloc(nlist ? nlist : 1, sizeof(*v));
    if (!v) {
        free(list);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nlist; i++) {
        const char *name = g->wildcard ? list[i].name : g->topic;
        td_topic_ref *ref;
        if ((g->wildcard && !group_reads(g, name)) || broker_topic_acquire(e, name, &ref) != 0)
            continue; /* not read, or deleted meanwhile */
        snprintf(v[*n].name, sizeof(v[*n].name), "%s", name);
        v[*n].id = broker_topic_id(ref);
        v[*n].nparts = broker_topic_partitions(ref);
        broker_topic_release(ref);
        (*n)++;
    }
    free(list);
    *out = v;
    return 0;
}

/*
 * Keeps the group in step with the topics: more partitions; topics created (a wildcard group
 * reads them from their start); topics deleted (their state goes), or deleted and created again
 * (the state restarts on the new topic, from its start). `created`: the group is new, and reads
 * the topics it finds from the policy's start. Cheap when no topic changed (the engine's topics
 * generation). TD_ENOTFOUND when a group on one topic finds it missing (its state stays, should
 * the topic come back). *changed is set when there is state to save. Under q->mu for a group
 * in q->g.
 */
int queue_group_sync(td_engine *e, qgroup *g, bool created, bool *changed_out)
{
    uint64_t gen = broker_topics_generation(e);
    if (g->synced && gen == g->gen)
        return 0;
    qwant *want;
    size_t nwant;
    int rc = group_wants(e, g, &want, &nwant);
    if (rc)
        return rc;
    if (!g->wildcard && nwant == 0) {
        free(want);
        return td_fail(TD_ENOTFOUND, "queue group '%s': topic '%s' does not exist", g->name,
                       g->topic);
    }
    bool changed = false;
    /* Gone, or created again: dropped. */
    for (size_t i = 0; i < g->ntopics;) {
        qtopic *t = &g->topics[i];
        size_t k = 0;
        while (k < nwant && strcmp(want[k].name, t->name))
            k++;
        if (k < nwant && want[k].id == t->id) {
            i++;
            continue;
        }
        if (k < nwant)
            TD_WARN("queue", "group %s: topic %s was created again; reading it from its start",
                    g->name, t->name);
        topic_drop(g, t);
        memmove(t, t + 1, (g->ntopics - i - 1) * sizeof(*t));
        g->ntopics--;
        changed = true;
    }
    for (size_t k = 0; k < nwant && rc == 0; k++) {
        qtopic *t = queue_topic_find(g, want[k].name);
        if (!t) {
            qtopic *v = realloc(g->topics, (g->ntopics + 1) * sizeof(*v));
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            g->topics = v;
            t = &g->topics[g->ntopics++];
            memset(t, 0, sizeof(*t));
            snprintf(t->name, sizeof(t->name), "%s", want[k].name);
            t->len = strlen(t->name);
            t->id = want[k].id;
            changed = true;
        }
        if (want[k].nparts > t->nparts) {
            rc = topic_grow(e, g, t, want[k].nparts, created);
            changed = true;
        }
    }
    free(want);
    if (changed) {
        qsort(g->topics, g->ntopics, sizeof(*g->topics), topic_cmp);
        size_t n = 0;
        for (size_t i = 0; i < g->ntopics; i++)
            n += (size_t)g->topics[i].nparts;
        qref *all = realloc(g->all, (n ? n : 1) * sizeof(*all));
        if (!all) {
            rc = -ENOMEM;
            g->nall = 0; /* no partition is read until a sync succeeds */
        } else {
            g->all = all;
            g->nall = 0;
            for (size_t i = 0; i < g->ntopics; i++)
                for (int32_t k = 0; k < g->topics[i].nparts; k++)
                    g->all[g->nall++] = (qref){&g->topics[i], &g->topics[i].parts[k]};
        }
        g->rr = 0;
        *changed_out = true;
    }
    g->synced = rc == 0;
    g->gen = gen;
    return rc;
}

static int consumer_slot(qgroup *g, const char *name, int64_t now, int64_t idle_ms)
{
    size_t free_slot = g->ncons;
    for (size_t i = 0; i < g->ncons; i++) {
        if (!strncmp(g->cons[i].name, name, CONSUMER_NAME_MAX - 1)) {
            g->cons[i].seen_ms = now;
            return (int)i;
        }
        if (free_slot == g->ncons && g->cons[i].inflight == 0 && now - g->cons[i].seen_ms > idle_ms)
            free_slot = i;
    }
    if (free_slot == g->ncons) {
        if (g->ncons == MAX_CONSUMERS)
            return -1;
        qconsumer *v = realloc(g->cons, (g->ncons + 1) * sizeof(*v));
        if (!v)
            return -1;
        g->cons = v;
        g->ncons++;
    }
    qconsumer *c = &g->cons[free_slot];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->seen_ms = now;
    return (int)free_slot;
}

/* ---------------------------------------------------------------------------------------------
 * The worker: deadlines, dead letters
 */
typedef struct dead_job {
    char group[TD_TOPIC_NAME_MAX + 1];
    char topic[TD_TOPIC_NAME_MAX + 1];
    char dlq[TD_TOPIC_NAME_MAX + 1]; /* "": <topic>.dlq is too long a name */
    int64_t topic_id;
    int32_t partition;
    int64_t offset, first_fail, last_fail;
    int32_t deliveries;
    char error[MAX_ERROR + 1];
} dead_job;

int queue_dead_letter(td_engine *e, const queue_dead *j)
{
    return delivery_dead_letter(e, j);
}

/* Copies a dead entry of a queue group out. */
static int dead_letter(td_engine *e, const dead_job *j)
{
    queue_dead d = {j->topic,
                    j->partition,
                    j->offset,
                    j->dlq,
                    td_slice_make(j->group, strlen(j->group)),
                    j->deliveries,
                    j->first_fail,
                    j->last_fail,
                    j->error};
    return queue_dead_letter(e, &d);
}

/* One dead entry of any group, copied out; false if none is ready. Under q->mu. */
static bool dead_take(td_queues *q, int64_t now, dead_job *j)
{
    for (size_t i = 0; i < q->n; i++) {
        qgroup *g = q->g[i];
        if (!g->has_dead || g->dead_retry_at > now)
            continue;
        for (size_t pi = 0; pi < g->nall; pi++) {
            const qtopic *t = g->all[pi].t;
            const qpart *p = g->all[pi].p;
            for (size_t k = 0; k < p->n; k++) {
                const qentry *en = &p->v[k];
                if (en->state != Q_DEAD)
                    continue;
                memset(j, 0, sizeof(*j));
                snprintf(j->group, sizeof(j->group), "%s", g->name);
                memcpy(j->topic, t->name, t->len + 1);
                j->topic_id = t->id;
                if (!queue_dlq_name(g->pol.dead_letter_topic, t->name, j->dlq, sizeof(j->dlq)))
                    j->dlq[0] = 0;
                j->partition = p->partition;
                j->offset = en->offset;
                j->first_fail = en->first_fail;
                j->last_fail = en->last_fail;
                j->deliveries = en->deliveries;
                snprintf(j->error, sizeof(j->error), "%s", en->error ? en->error : "");
                return true;
            }
        }
        g->has_dead = false; /* none left */
    }
    return false;
}

static void dead_done(td_queues *q, const dead_job *j, int rc, int64_t now)
{
    qgroup *g = queue_group_find(q, j->group, NULL);
    qtopic *t = g ? queue_topic_find(g, j->topic) : NULL;
    if (!t || t->id != j->topic_id || j->partition >= t->nparts)
        return;
    if (rc) {
        TD_WARN("queue",
                "group %s: cannot write %s/%" PRId32 "@%" PRId64
                " to dead-letter topic %s: %s; retrying",
                g->name, j->topic, j->partition, j->offset, j->dlq, td_last_error());
        g->dead_retry_at = now + DEAD_RETRY_MS;
        return;
    }
    qpart *p = &t->parts[j->partition];
    size_t idx;
    qentry *en = queue_entry_find(p, j->offset, &idx);
    if (en && en->state == Q_DEAD) {
        entry_done(g, p, idx, now);
        part_compact(p);
        g->dead_lettered++;
        qs_flush(q, g, NULL); /* copied: its tombstone (a crash before copies it again) */
        notify(q);
    }
}

static void *worker_main(void *arg)
{
    td_queues *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        int64_t now = td_wall_ms(), wake = now + IDLE_WAKE_MS;
        bool dead = false;
        for (size_t i = 0; i < q->n; i++) {
            int64_t t = sweep(q, q->g[i], now, &dead);
            qs_flush(q, q->g[i], NULL); /* deadlines that passed: waiting or dead entries */
            if (t < wake)
                wake = t;
            if (q->g[i]->dead_retry_at > now && q->g[i]->dead_retry_at < wake)
                wake = q->g[i]->dead_retry_at;
        }
        dead_job job;
        if (dead && !q->stopping && dead_take(q, now, &job)) {
            pthread_mutex_unlock(&q->mu);
            int rc = dead_letter(q->e, &job);
            pthread_mutex_lock(&q->mu);
            dead_done(q, &job, rc, td_wall_ms());
            continue;
        }
        if (q->stopping)
            break;
        struct timespec ts = td_deadline_ns(CLOCK_REALTIME, (wake - now) * 1000000);
        pthread_cond_timedwait(&q->work_cv, &q->mu, &ts);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Under q->mu. */
static int worker_start(td_queues *q)
{
    if (q->running)
        return 0;
    if (q->stopping)
        return td_fail(TD_ECLOSED, "the queues are shutting down");
    if (pthread_create(&q->worker, NULL, worker_main, q) != 0)
        return td_fail(-EAGAIN, "cannot start the queue worker thread");
    q->running = true;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Metrics, collected when scraped (docs/metrics.md)
 */
static void queues_collect(void *arg, td_metrics_out *out)
{
    td_queues *q = arg;
    td_queue_info *v;
    size_t n;
    if (td_queue_list(q->e, &v, &n) != 0) {
        out->err = out->err ? out->err : -ENOMEM;
        return;
    }
    static const struct {
        const char *name, *help;
        int type;
    } fams[] = {
        {"tidings_queue_depth", "Events of the group not done: unread, in flight, waiting, held.",
         TD_GAUGE},
        {"tidings_queue_in_flight", "Events delivered and not yet acked, nacked or timed out.",
         TD_GAUGE},
        {"tidings_queue_waiting", "Events that failed and wait for their redelivery.", TD_GAUGE},
        {"tidings_queue_held", "Events held back behind an earlier event of their key.", TD_GAUGE},
        {"tidings_queue_consumers", "Consumers that received within the ack timeout.", TD_GAUGE},
        {"tidings_queue_acked_total", "Events acked since the broker started.", TD_COUNTER},
        {"tidings_queue_redelivered_total", "Redeliveries since the broker started.", TD_COUNTER},
        {"tidings_queue_dead_lettered_total",
         "Events written to the dead-letter topic since the broker started.", TD_COUNTER},
        {"tidings_queue_oldest_unacked_age_seconds",
         "Age of the oldest event delivered and not done (0 when none).", TD_GAUGE},
    };
    static const char *const gl[] = {"group"};
    int64_t now = td_wall_ms();
    for (size_t f = 0; f < TD_ARRAY_LEN(fams); f++) {
        td_metrics_text_family(out, fams[f].name, fams[f].help, fams[f].type);
        for (size_t i = 0; i < n; i++) {
            const td_queue_info *x = &v[i];
            double val = f == 0                     ? (double)x->depth
                         : f == 1                   ? (double)x->in_flight
                         : f == 2                   ? (double)x->waiting
                         : f == 3                   ? (double)x->held
                         : f == 4                   ? (double)x->consumers
                         : f == 5                   ? (double)x->acked
                         : f == 6                   ? (double)x->redelivered
                         : f == 7                   ? (double)x->dead_lettered
                         : x->oldest_unacked_ms < 0 ? 0
                                                    : (double)(now - x->oldest_unacked_ms) / 1000.0;
            td_metrics_text_sample(out, fams[f].name, gl, (const char *const[]){x->group}, 1,
                                   val < 0 ? 0 : val);
        }
    }
    free(v);
}

/* ---------------------------------------------------------------------------------------------
 * Open and close
 */
int queues_open(td_engine *e, td_queues **out)
{
    td_queues *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->e = e;
    q->rng = (uint64_t)td_mono_ns() | 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work_cv, NULL);
    int rc = qs_load(q); /* the groups, from __queue_state (and an older catalog) */
    if (rc == 0)
        rc = td_metrics_add_collector(broker_metrics(e), queues_collect, q);
    if (rc == 0 && q->n) {
        pthread_mutex_lock(&q->mu);
        rc = worker_start(q);
        pthread_mutex_unlock(&q->mu);
    }
    if (rc) {
        queues_close(q);
        return rc;
    }
    *out = q;
    return 0;
}

/* Stops the worker, waits until every record appended is durable (so that the completions of
 * outcomes waiting for them run now, while the listeners' loops still do) and forgets the
 * notify function. Idempotent. */
static void stop_worker(td_queues *q)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->work_cv);
    bool running = q->running;
    pthread_mutex_unlock(&q->mu);
    if (running)
        pthread_join(q->worker, NULL);
    pthread_mutex_lock(&q->mu);
    q->running = false;
    q->notify = NULL;
    pthread_mutex_unlock(&q->mu);
    int32_t n = state_partitions(q->e, STATE_QUEUES);
    for (int32_t i = 0; i < n; i++) {
        int64_t end;
        if (state_append(q->e, STATE_QUEUES, i, NULL, 0, &end) != 0 || qs_wait(q, i, end) != 0)
            td_error_clear(); /* the partition went offline: the outcomes got the error */
    }
}

void queues_shutdown(td_engine *e)
{
    if (e && e->queues)
        stop_worker(e->queues);
}

void queues_close(td_queues *q)
{
    if (!q)
        return;
    td_metrics_remove_collector(broker_metrics(q->e), queues_collect, q);
    stop_worker(q);
    for (size_t i = 0; i < q->n; i++)
        queue_group_free(q->g[i]);
    free(q->g);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->work_cv);
    free(q);
}

/* ---------------------------------------------------------------------------------------------
 * Administration
 */
static td_queues *queues_of(td_engine *e)
{
    return e ? e->queues : NULL;
}

/* A group on one topic can be checked now; a wildcard group's topics come and go (group_reads
 * keeps its dead-letter topics out of it; dead_letter refuses a <topic>.dlq too long). */
static int check_dlq(const char *topic, const td_queue_policy *p)
{
    if (!td_pattern_is_literal(topic, strlen(topic)))
        return 0;
    if (p->dead_letter_topic[0])
        return strcmp(p->dead_letter_topic, topic)
                   ? 0
                   : td_fail(TD_ECONFIG, "dead.letter.topic cannot be the group's own topic");
    if (strlen(topic) + 4 > TD_TOPIC_NAME_MAX)
        return td_fail(TD_ECONFIG, "topic '%s' is too long to add .dlq: set dead.letter.topic",
                       topic);
    return 0;
}

/* Waits for the records up to end; with done, asks to have it called instead and returns 1. */
static int finish(td_queues *q, int32_t part, int64_t end, queue_done_fn done, void *arg)
{
    if (!done || end < 0)
        return qs_wait(q, part, end);
    int rc = state_when_durable(q->e, STATE_QUEUES, part, end, done, arg);
    return rc ? rc : 1;
}

static int create_group(td_engine *e, const char *group, const char *topic,
                        const td_queue_policy *policy, queue_done_fn done, void *arg)
{
    td_error_clear();
    td_queues *q = queues_of(e);
    if (!q || !group || !topic)
        return td_fail(TD_EINVAL, "td_queue_create needs an engine, a group and a topic");
    int rc = td_topic_name_validate(group);
    if (rc)
        return td_fail(TD_ENAME, "invalid queue group name: %s", td_last_error());
    td_queue_policy pol;
    if (policy)
        pol = *policy;
    else
        td_queue_policy_init(&pol);
    const char *why = NULL;
    if (td_pattern_validate(topic, strlen(topic), &why) != 0)
        return td_fail(TD_ENAME, "invalid topic or pattern '%s': %s", topic, why);
    if ((rc = check_dlq(topic, &pol)) != 0)
        return rc;
    char text[2048];
    if (queue_policy_format(&pol, text, sizeof(text)) != 0)
        return td_fail(TD_ECONFIG, "the policy does not fit");
    qgroup *g = queue_group_new(group, topic, &pol, td_wall_ms());
    if (!g)
        return -ENOMEM;
    bool changed = false;
    if ((rc = queue_group_sync(e, g, true, &changed)) != 0) {
        queue_group_free(g);
        return rc == TD_ENOTFOUND ? td_fail(TD_ENOTFOUND, "topic '%s' does not exist", topic) : rc;
    }
    int64_t end = -1;
    pthread_mutex_lock(&q->mu);
    if (q->stopping)
        rc = td_fail(TD_ECLOSED, "the queues are shutting down");
    if (rc == 0 && (rc = queue_group_insert(q, g)) == 0) {
        /* The definition and the starting positions, in the group's state partition. */
        if ((rc = qs_group_put(q, g, true, &end)) != 0) {
            size_t idx;
            queue_group_find(q, group, &idx);
            memmove(&q->g[idx], &q->g[idx + 1], (q->n - idx - 1) * sizeof(*q->g));
            q->n--;
        } else {
            g = NULL;
            rc = worker_start(q);
        }
    }
    int32_t part = rc == 0 ? qs_partition(q, queue_group_find(q, group, NULL)) : 0;
    pthread_mutex_unlock(&q->mu);
    queue_group_free(g);
    if (rc == 0)
        TD_INFO("queue", "created queue group %s on %s", group, topic);
    return rc ? rc : finish(q, part, end, done, arg);
}

static int configure_group(td_engine *e, const char *group, const td_queue_policy *policy,
                           queue_done_fn done, void *arg)
{
    td_error_clear();
    td_queues *q = queues_of(e);
    if (!q || !group || !policy)
        return td_fail(TD_EINVAL, "td_queue_configure needs an engine, a group and a policy");
    char text[2048];
    if (queue_policy_format(policy, text, sizeof(text)) != 0)
        return td_fail(TD_ECONFIG, "the policy does not fit");
    pthread_mutex_lock(&q->mu);
    qgroup *g = queue_group_find(q, group, NULL);
    int rc = g ? check_dlq(g->topic, policy)
               : td_fail(TD_ENOTFOUND, "queue group '%s' does not exist", group);
    int64_t end = -1;
    int32_t part = 0;
    if (rc == 0) {
        g->pol = *policy;
        /* Without per-key ordering nothing is held back any more. */
        for (size_t i = 0; policy->ordering != TD_QUEUE_BY_KEY && i < g->nall; i++) {
            qpart *p = g->all[i].p;
            for (size_t k = 0; k < p->n; k++)
                if (p->v[k].state == Q_HELD) {
                    p->v[k].state = Q_WAITING;
                    p->v[k].at = td_wall_ms();
                    qs_touch(g, p, &p->v[k]);
                    g->next_due = 0;
                }
        }
        g->synced = false; /* a new dead-letter topic may change what a pattern reads */
        part = qs_partition(q, g);
        rc = qs_group_put(q, g, false, &end);
        pthread_cond_signal(&q->work_cv);
    }
    pthread_mutex_unlock(&q->mu);
    return rc ? rc : finish(q, part, end, done, arg);
}

static int delete_group(td_engine *e, const char *group, queue_done_fn done, void *arg)
{
    td_error_clear();
    td_queues *q = queues_of(e);
    if (!q || !group)
        return td_fail(TD_EINVAL, "td_queue_delete needs an engine and a group");
    pthread_mutex_lock(&q->mu);
    size_t idx;
    qgroup *g = queue_group_find(q, group, &idx);
    int64_t end = -1;
    int32_t part = 0;
    int rc = 0;
    if (!g) {
        rc = td_fail(TD_ENOTFOUND, "queue group '%s' does not exist", group);
    } else if ((rc = qs_group_delete(q, g, &end)) == 0) {
        part = qs_partition(q, g);
        memmove(&q->g[idx], &q->g[idx + 1], (q->n - idx - 1) * sizeof(*q->g));
        q->n--;
    } else {
        g = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    if (rc == 0) {
        queue_group_free(g);
        TD_INFO("queue", "deleted queue group %s", group);
    }
    return rc ? rc : finish(q, part, end, done, arg);
}

int td_queue_create(td_engine *e, const char *group, const char *topic,
                    const td_queue_policy *policy)
{
    return create_group(e, group, topic, policy, NULL, NULL);
}

int td_queue_configure(td_engine *e, const char *group, const td_queue_policy *policy)
{
    return configure_group(e, group, policy, NULL, NULL);
}

int td_queue_delete(td_engine *e, const char *group)
{
    return delete_group(e, group, NULL, NULL);
}

int queue_admin_async(td_engine *e, int op, const char *group, const char *topic,
                      const td_queue_policy *policy, queue_done_fn done, void *arg)
{
    if (!done)
        return td_fail(TD_EINVAL, "queue_admin_async needs a completion");
    return op == QUEUE_CREATE      ? create_group(e, group, topic, policy, done, arg)
           : op == QUEUE_CONFIGURE ? configure_group(e, group, policy, done, arg)
                                   : delete_group(e, group, done, arg);
}

/* Under q->mu. */
static void describe(td_engine *e, qgroup *g, int64_t now, td_queue_info *out)
{
    bool changed = false;
    if (queue_group_sync(e, g, false, &changed) != 0)
        td_error_clear(); /* its topic is gone: described as it was */
    if (changed && qs_flush(e->queues, g, NULL) != 0)
        td_error_clear(); /* written with the group's next change */
    memset(out, 0, sizeof(*out));
    snprintf(out->group, sizeof(out->group), "%s", g->name);
    snprintf(out->topic, sizeof(out->topic), "%s", g->topic);
    out->policy = g->pol;
    if (!queue_dlq_name(g->pol.dead_letter_topic, g->topic, out->dead_letter_topic,
                        sizeof(out->dead_letter_topic)))
        out->dead_letter_topic[0] = 0;
    out->created_ms = g->created_ms;
    out->topics = (int32_t)g->ntopics;
    out->acked = g->acked;
    out->redelivered = g->redelivered;
    out->dead_lettered = g->dead_lettered;
    out->oldest_unacked_ms = -1;
    for (size_t i = 0; i < g->nall; i++) {
        const qtopic *t = g->all[i].t;
        const qpart *p = g->all[i].p;
        int64_t hwm = p->next;
        int64_t unread = 0;
        if (td_offset_for(e, t->name, p->partition, TD_OFFSET_LATEST, &hwm) == 0 && hwm > p->next &&
            engine_count_records(e, t->name, p->partition, p->next, hwm, &unread) == 0)
            out->depth += unread; /* records, not offsets: a compacted topic has gaps */
        out->depth += (int64_t)(p->n - p->gone);
        for (size_t k = 0; k < p->n; k++) {
            const qentry *en = &p->v[k];
            if (!en->state)
                continue;
            out->in_flight += en->state == Q_INFLIGHT;
            out->waiting += en->state == Q_WAITING || en->state == Q_DEAD;
            out->held += en->state == Q_HELD;
            if (en->deliveries > 0 && en->event_ms > 0 &&
                (out->oldest_unacked_ms < 0 || en->event_ms < out->oldest_unacked_ms))
                out->oldest_unacked_ms = en->event_ms;
        }
    }
    for (size_t i = 0; i < g->ncons; i++)
        out->consumers += g->cons[i].name[0] && now - g->cons[i].seen_ms <= g->pol.ack_timeout_ms;
}

int queue_group_topic(td_engine *e, const char *group, char *topic, size_t len)
{
    td_queues *q = queues_of(e);
    if (!q || !group || !topic || !len)
        return td_fail(TD_EINVAL, "queue_group_topic needs an engine, a group and a buffer");
    pthread_mutex_lock(&q->mu);
    qgroup *g = queue_group_find(q, group, NULL);
    if (g)
        snprintf(topic, len, "%s", g->topic);
    pthread_mutex_unlock(&q->mu);
    return g ? 0 : td_fail(TD_ENOTFOUND, "queue group '%s' does not exist", group);
}

int td_queue_describe(td_engine *e, const char *group, td_queue_info *out)
{
    td_error_clear();
    td_queues *q = queues_of(e);
    if (!q || !group || !out)
        return td_fail(TD_EINVAL, "td_queue_describe needs an engine, a group and an out pointer");
    pthread_mutex_lock(&q->mu);
    qgroup *g = queue_group_find(q, group, NULL);
    int rc = 0;
    if (!g)
        rc = td_fail(TD_ENOTFOUND, "queue group '%s' does not exist", group);
    else
        describe(e, g, td_wall_ms(), out);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int td_queue_list(td_engine *e, td_queue_info **out, size_t *count)
{
    td_error_clear();
    td_queues *q = queues_of(e);
    if (!q || !out || !count)
        return td_fail(TD_EINVAL, "td_queue_list needs an engine and out pointers");
    pthread_mutex_lock(&q->mu);
    td_queue_info *v = malloc((q->n ? q->n : 1) * sizeof(*v));
    if (v)
        for (size_t i = 0; i < q->n; i++)
            describe(e, q->g[i], td_wall_ms(), &v[i]);
    *count = v ? q->n : 0;
    pthread_mutex_unlock(&q->mu);
    *out = v;
    return v ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------------------------------------
 * Receiving
 */
typedef struct msgs {
    td_queue_msg *v;
    size_t n, cap;
} msgs;

/* Appends a copy of ev (its bytes in one block owned by the message). */
static int msg_add(msgs *m, const qtopic *t, const qpart *p, const qentry *en, const td_event *ev)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        td_queue_msg *v = realloc(m->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        m->v = v;
        m->cap = cap;
    }
    td_queue_msg *msg = &m->v[m->n];
    memset(msg, 0, sizeof(*msg));
    /* Freed through event.headers (td_queue_msgs_free). */
    if (!broker_event_copy(ev, NULL, &msg->event))
        return -ENOMEM;
    m->n++;
    id_format(t, p, en, msg->id);
    memcpy(msg->topic, t->name, t->len + 1);
    msg->deliveries = en->deliveries;
    return 0;
}

void td_queue_msgs_free(td_queue_msg *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free((void *)v[i].event.headers);
    free(v);
}

static void deliver(qgroup *g, qpart *p, qentry *en, int slot, int64_t now)
{
    qs_touch(g, p, en);
    en->state = Q_INFLIGHT;
    en->deliveries++;
    en->at = now + g->pol.ack_timeout_ms;
    g->next_deadline = en->at < g->next_deadline ? en->at : g->next_deadline;
    en->consumer = slot;
    if (slot >= 0)
        g->cons[slot].inflight++;
    if (en->deliveries > 1)
        g->redelivered++;
}

/* Redeliveries due now, lowest offsets first. */
static int take_due(td_queues *q, qgroup *g, int slot, size_t want, int64_t now, msgs *m)
{
    if (now < g->next_due)
        return 0;
    int64_t next_due = INT64_MAX;
    for (size_t pi = 0; pi < g->nall; pi++) {
        const qtopic *t = g->all[pi].t;
        qpart *p = g->all[pi].p;
        /* One iterator per partition, read forward from one due entry to the next. */
        td_iter *it = NULL;
        int64_t pos = -1; /* the offset the iterator returns next */
        int rc = 0;
        for (size_t k = 0; k < p->n && rc == 0; k++) {
            qentry *en = &p->v[k];
            if (en->state != Q_WAITING)
                continue;
            if (en->at > now || m->n >= want) {
                next_due = en->at < next_due ? en->at : next_due;
                continue;
            }
            if (it && (pos > en->offset || en->offset - pos > 256)) {
                td_iter_close(it);
                it = NULL;
            }
            if (!it && (rc = td_iter_open(q->e, t->name, p->partition, en->offset, &it)) != 0)
                it = NULL;
            td_event ev = {0};
            int r = 0;
            while (rc == 0 && (r = td_iter_next(it, &ev)) == 1 && ev.offset < en->offset)
                ;
            if (rc == 0 && r < 0)
                rc = r;
            pos = rc == 0 && r == 1 ? ev.offset + 1 : INT64_MAX;
            if (rc == 0 && r == 1 && ev.offset == en->offset) {
                deliver(g, p, en, slot, now);
                rc = msg_add(m, t, p, en, &ev);
            } else if (rc == 0 || rc == TD_ERANGE) {
                /* Deleted by retention (or records deleted): nothing to deliver. */
                entry_done(g, p, k, now);
                rc = 0;
            }
        }
        part_compact(p);
        if (it)
            td_iter_close(it);
        if (rc < 0)
            return rc;
    }
    g->next_due = next_due;
    return 0;
}

/* The partition's iterator at next, repositioned at the log start when retention passed it. */
static int part_iter(td_queues *q, qgroup *g, const qtopic *t, qpart *p, int64_t now)
{
    if (p->it)
        return 0;
    int rc = td_iter_open(q->e, t->name, p->partition, p->next, &p->it);
    if (rc != TD_ERANGE)
        return rc;
    int64_t start = 0, end = 0;
    td_offset_for(q->e, t->name, p->partition, TD_OFFSET_EARLIEST, &start);
    td_offset_for(q->e, t->name, p->partition, TD_OFFSET_LATEST, &end);
    int64_t to = p->next < start ? start : end;
    TD_WARN("queue", "group %s: %s/%" PRId32 " offset %" PRId64 " is gone; going on at %" PRId64,
            g->name, t->name, p->partition, p->next, to);
    for (size_t k = 0; k < p->n && p->v[k].offset < to && p->v[k].offset < start; k++)
        if (p->v[k].state)
            entry_done(g, p, k, now);
    part_compact(p);
    p->next = to;
    p->dirty = true;
    return td_iter_open(q->e, t->name, p->partition, p->next, &p->it);
}

/* New events, one per partition per round, while the limits allow. */
static int take_new(td_queues *q, qgroup *g, int slot, size_t want, int64_t now, msgs *m)
{
    bool progress = true;
    while (progress && m->n < want && g->pending < g->pol.max_in_flight) {
        progress = false;
        for (size_t r = 0; r < g->nall && m->n < want && g->pending < g->pol.max_in_flight; r++) {
            const qref *ref = &g->all[(g->rr + r) % g->nall];
            qpart *p = ref->p;
            int rc = part_iter(q, g, ref->t, p, now);
            if (rc)
                return rc;
            td_event ev;
            rc = td_iter_next(p->it, &ev);
            if (rc < 0)
                return rc;
            if (rc == 0)
                continue;
            progress = true;
            p->next = ev.offset + 1;
            p->dirty = true;
            qentry *en = queue_entry_append(g, p, ev.offset);
            if (!en)
                return -ENOMEM;
            en->event_ms = ev.timestamp_ms;
            if (ev.key) {
                en->has_key = true;
                en->key_hash = td_hash64(ev.key, ev.key_len);
            }
            bool held = false;
            if (g->pol.ordering == TD_QUEUE_BY_KEY && en->has_key)
                for (size_t k = 0; k + 1 < p->n && !held; k++)
                    held = p->v[k].state && p->v[k].has_key && p->v[k].key_hash == en->key_hash;
            if (held) {
                en->state = Q_HELD;
                qs_touch(g, p, en);
                continue;
            }
            deliver(g, p, en, slot, now);
            if ((rc = msg_add(m, ref->t, p, en, &ev)) != 0)
                return rc;
        }
        g->rr = g->nall ? (g->rr + 1) % g->nall : 0;
    }
    return 0;
}

int td_queue_receive(td_engine *e, const char *group, const char *consumer, size_t max,
                     td_queue_msg **out, size_t *n)
{
    td_error_clear();
    td_queues *q = queues_of(e);
    if (!q || !group || !out || !n)
        return td_fail(TD_EINVAL, "td_queue_receive needs an engine, a group and out pointers");
    *out = NULL;
    *n = 0;
    msgs m = {0};
    pthread_mutex_lock(&q->mu);
    qgroup *g = queue_group_find(q, group, NULL);
    bool changed = false;
    int rc = g ? queue_group_sync(e, g, false, &changed)
               : td_fail(TD_ENOTFOUND, "queue group '%s' does not exist", group);
    if (rc == 0) {
        int64_t now = td_wall_ms();
        bool dead = false;
        sweep(q, g, now, &dead);
        if (dead)
            pthread_cond_signal(&q->work_cv);
        int slot = consumer_slot(g, consumer && *consumer ? consumer : "-", now,
                                 g->pol.ack_timeout_ms * 10);
        int64_t room = slot >= 0 ? g->pol.max_in_flight_per_consumer - g->cons[slot].inflight : 0;
        size_t want = room <= 0 ? 0 : (size_t)room < max ? (size_t)room : max;
        if (slot < 0)
            rc = td_fail(TD_EFULL, "queue group '%s' has %d consumers", group, MAX_CONSUMERS);
        if (rc == 0 && want)
            rc = take_due(q, g, slot, want, now, &m);
        if (rc == 0 && m.n < want)
            rc = take_new(q, g, slot, want, now, &m);
    }
    /* Deliveries are not waited for: a crash before their records are durable delivers the
     * events again (at least once); an ack waits for them, being after them in the log. */
    int frc = g ? qs_flush(q, g, NULL) : 0;
    if (frc && m.n == 0 && rc == 0)
        rc = frc;
    pthread_mutex_unlock(&q->mu);
    if (rc && m.n == 0) {
        td_queue_msgs_free(m.v, m.n);
        return rc;
    }
    *out = m.v;
    *n = m.n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Outcomes
 */
enum { OP_ACK = QUEUE_ACK, OP_NACK = QUEUE_NACK, OP_EXTEND = QUEUE_EXTEND };

/* The in-flight entry an id names, or NULL with *rc set. */
static qentry *entry_of(qgroup *g, const char *id, qpart **pp, size_t *idx, int *rc)
{
    int64_t topic_id, offset;
    int32_t partition, deliveries;
    qtopic *t = NULL;
    if (!queue_id_parse(id, &topic_id, &partition, &offset, &deliveries) ||
        !(t = queue_topic_by_id(g, topic_id)) || partition >= t->nparts) {
        *rc = TD_EINVAL;
        return NULL;
    }
    qpart *p = &t->parts[partition];
    qentry *en = queue_entry_find(p, offset, idx);
    if (!en || en->state != Q_INFLIGHT || en->deliveries != deliveries) {
        *rc = en || offset < p->next ? TD_ESTALE : TD_EINVAL;
        return NULL;
    }
    *pp = p;
    *rc = 0;
    return en;
}

/* Applies the outcome and appends its records; then, when something changed: with done,
 * asks to have it called once they are durable and returns 1; without, waits for them. */
static int outcome(td_engine *e, const char *group, const char *const *ids, size_t n, int op,
                   int64_t ms, const char *error, int *results, queue_done_fn done, void *arg)
{
    td_error_clear();
    td_queues *q = queues_of(e);
    if (!q || !group || (n && !ids))
        return td_fail(TD_EINVAL, "queue outcome calls need an engine, a group and ids");
    pthread_mutex_lock(&q->mu);
    qgroup *g = queue_group_find(q, group, NULL);
    if (!g || q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return g ? td_fail(TD_ECLOSED, "the queues are shutting down")
                 : td_fail(TD_ENOTFOUND, "queue group '%s' does not exist", group);
    }
    int64_t now = td_wall_ms();
    bool dead = false;
    sweep(q, g, now, &dead); /* a deadline that passed is a failure, whatever comes now */
    size_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        qpart *p = NULL;
        size_t idx = 0;
        int rc;
        qentry *en = ids[i] ? entry_of(g, ids[i], &p, &idx, &rc) : (rc = TD_EINVAL, NULL);
        if (en) {
            changed++;
            if (op == OP_ACK) {
                entry_done(g, p, idx, now);
                g->acked++;
            } else if (op == OP_NACK) {
                entry_fail(q, g, p, en, now, ms, error);
                dead |= en->state == Q_DEAD;
            } else {
                en->at = now + (ms >= 0 ? ms : g->pol.ack_timeout_ms);
                qs_touch(g, p, en);
            }
        }
        if (results)
            results[i] = rc;
    }
    for (size_t i = 0; op == OP_ACK && i < g->nall; i++)
        part_compact(g->all[i].p);
    int64_t end = -1;
    int32_t part = qs_partition(q, g);
    int rc = qs_flush(q, g, &end);
    if (changed)
        notify(q);
    if (dead)
        pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->mu);
    if (rc || !changed || end < 0)
        return rc;
    if (!done)
        return qs_wait(q, part, end);
    rc = state_when_durable(e, STATE_QUEUES, part, end, done, arg);
    return rc ? rc : 1;
}

int queue_outcome_async(td_engine *e, const char *group, const char *const *ids, size_t n, int op,
                        int64_t ms, const char *error, int *results, queue_done_fn done, void *arg)
{
    if (!done)
        return td_fail(TD_EINVAL, "queue_outcome_async needs a completion");
    return outcome(e, group, ids, n, op, ms, error, results, done, arg);
}

void queue_set_notify(td_engine *e, void (*fn)(void *arg), void *arg)
{
    td_queues *q = queues_of(e);
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->notify = fn;
    q->notify_arg = arg;
    pthread_mutex_unlock(&q->mu);
}

int td_queue_ack(td_engine *e, const char *group, const char *const *ids, size_t n, int *results)
{
    return outcome(e, group, ids, n, OP_ACK, 0, NULL, results, NULL, NULL);
}

int td_queue_nack(td_engine *e, const char *group, const char *const *ids, size_t n,
                  int64_t delay_ms, const char *error, int *results)
{
    return outcome(e, group, ids, n, OP_NACK, delay_ms < 0 ? -1 : delay_ms, error, results, NULL,
                   NULL);
}

int td_queue_extend(td_engine *e, const char *group, const char *const *ids, size_t n, int64_t ms,
                    int *results)
{
    return outcome(e, group, ids, n, OP_EXTEND, ms < 0 ? -1 : ms, NULL, results, NULL, NULL);
}
