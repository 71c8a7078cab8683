/*
 * queue_group.c: queue groups as a whole (queue.h has the model): the groups and the topics
 * they read, kept in step with the engine's topics; consumers; creation, configuration and
 * deletion; descriptions and metrics; open and close. queue.c has the entries and their
 * deliveries, queue_state.c their records.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delivery.h"
#include "broker/pattern.h"
#include "broker/queue_int.h"
#include "broker/state.h"

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
    free(p->sv);
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
            queue_consumer_release(g, &p->v[k]);
        g->pending -= (int64_t)(p->n - p->gone);
        qsched_part_free(g, p);
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
    drecs_init(&g->recs);
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
    drecs_free(&g->recs);
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
        qsched_part_init(&v[i]);
        if (created)
            td_offset_for(e, t->name, i,
                          g->pol.start_latest ? TD_OFFSET_LAST_STABLE : TD_OFFSET_EARLIEST,
                          &v[i].next); /* latest: an open transaction's events come if it commits */
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
    if (g->wildcard && (rc = td_topic_list_all(e, &list, &nlist)) != 0)
        return rc;
    qwant *v = calloc(nlist ? nlist : 1, sizeof(*v));
    if (!v) {
        free(list);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nlist; i++) {
        const char *name = g->wildcard ? list[i].name : g->topic;
        td_topic_ref *ref;
        /* The system topics too ("$sys.#"), never the internal ones. */
        if ((g->wildcard && (list[i].internal || !group_reads(g, name))) ||
            broker_topic_acquire(e, name, &ref) != 0)
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
            if (td_grow(&g->topics, &g->captopics, g->ntopics, sizeof(*g->topics), 4) != 0) {
                rc = -ENOMEM;
                break;
            }
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

int queue_group_restore(td_queues *q, const char *name, const char *topic, const char *policy,
                        int64_t created_ms, qgroup **out)
{
    td_queue_policy pol;
    queue_policy_parse(policy, &pol);
    qgroup *g = queue_group_new(name, topic, &pol, created_ms);
    int rc = g ? queue_group_insert(q, g) : -ENOMEM;
    if (rc) {
        queue_group_free(g);
        return rc;
    }
    bool changed = false;
    if ((rc = queue_group_sync(q->e, g, false, &changed)) == TD_ENOTFOUND) {
        TD_WARN("queue", "group %s: topic %s does not exist", g->name, g->topic);
        td_error_clear();
        rc = 0;
    }
    if (out)
        *out = g;
    return rc;
}

int queue_consumer_slot(qgroup *g, const char *name, int64_t now, int64_t idle_ms)
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
        if (td_grow(&g->cons, &g->capcons, g->ncons, sizeof(*g->cons), 4) != 0)
            return -1;
        g->ncons++;
    }
    qconsumer *c = &g->cons[free_slot];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->seen_ms = now;
    return (int)free_slot;
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
    static const delivery_family fams[] = {
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
        {"tidings_queue_circuit_state",
         "The group's circuit breaker: 0 closed, 1 open (deliveries paused), 2 half-open.",
         TD_GAUGE},
        {"tidings_queue_circuit_opened_total",
         "Times the group's circuit breaker opened since the broker started.", TD_COUNTER},
        {"tidings_queue_scheduled",
         "Delayed events read and kept in memory until their delivery time.", TD_GAUGE},
    };
    enum { NF = TD_ARRAY_LEN(fams) };
    static const char *const gl[] = {"group"};
    const char **names = malloc((n ? n : 1) * sizeof(*names));
    double *vals = malloc((n ? n : 1) * NF * sizeof(*vals));
    if (!names || !vals) {
        out->err = out->err ? out->err : -ENOMEM;
        n = 0;
    }
    int64_t now = td_wall_ms();
    for (size_t i = 0; i < n; i++) {
        const td_queue_info *x = &v[i];
        double *r = &vals[i * NF];
        names[i] = x->group;
        r[0] = (double)x->depth;
        r[1] = (double)x->in_flight;
        r[2] = (double)x->waiting;
        r[3] = (double)x->held;
        r[4] = (double)x->consumers;
        r[5] = (double)x->acked;
        r[6] = (double)x->redelivered;
        r[7] = (double)x->dead_lettered;
        r[8] = x->oldest_unacked_ms < 0 ? 0 : (double)(now - x->oldest_unacked_ms) / 1000.0;
        r[9] = (double)x->circuit_state;
        r[10] = (double)x->circuit_opened;
        r[11] = (double)x->scheduled;
        for (size_t f = 0; f < NF; f++)
            r[f] = r[f] < 0 ? 0 : r[f];
    }
    if (names && vals)
        delivery_metrics_write(out, fams, NF, gl, 1, names, vals, n);
    free(names);
    free(vals);
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
    int rc = qs_load(q); /* the groups, from __queue_state (and an older catalog) */
    if (rc == 0)
        rc = td_metrics_add_collector(broker_metrics(e), queues_collect, q);
    if (rc == 0)
        rc = delivery_attach(e, "queues", queue_work, q, &q->dc);
    if (rc == 0 && q->n) {
        pthread_mutex_lock(&q->mu);
        rc = delivery_wake(q->dc, 0); /* replayed deadlines and dead entries */
        pthread_mutex_unlock(&q->mu);
    }
    if (rc) {
        queues_close(q);
        return rc;
    }
    *out = q;
    return 0;
}

/* Leaves the delivery service (a dead letter being written is finished first, and none is
 * written after), waits until every record appended is durable (so that the completions of
 * outcomes waiting for them run now, while the listeners' loops still do) and forgets the
 * notify function. Idempotent. */
static void stop_delivery(td_queues *q)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    delivery_client *dc = q->dc;
    q->dc = NULL; /* queue_wake does nothing from now on */
    pthread_mutex_unlock(&q->mu);
    delivery_detach(dc);
    pthread_mutex_lock(&q->mu);
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
        stop_delivery(e->queues);
}

void queues_close(td_queues *q)
{
    if (!q)
        return;
    td_metrics_remove_collector(broker_metrics(q->e), queues_collect, q);
    stop_delivery(q);
    for (size_t i = 0; i < q->n; i++)
        queue_group_free(q->g[i]);
    free(q->g);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* ---------------------------------------------------------------------------------------------
 * Administration
 */
/* A group on one topic can be checked now; a wildcard group's topics come and go (group_reads
 * keeps its dead-letter topics out of it; dead_letter refuses a <topic>.dlq too long). */
static int check_dlq(const char *topic, const td_queue_policy *p)
{
    const char *f = p->forward_to;
    if (*f && td_pattern_match(topic, strlen(topic), f, strlen(f)))
        return td_fail(TD_ECONFIG, "forward.to '%s' is a topic the group reads", f);
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
            rc = delivery_wake(q->dc, 0);
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
                if (p->v[k].d.state == DELIVERY_HELD) {
                    delivery_release(&p->v[k].d, td_wall_ms());
                    qs_touch(g, p, &p->v[k]);
                    g->next_due = 0;
                }
        }
        g->synced = false; /* a new dead-letter topic may change what a pattern reads */
        part = qs_partition(q, g);
        rc = qs_group_put(q, g, false, &end);
        queue_wake(q, 0);
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
    out->scheduled = g->scheduled;
    out->next_scheduled_ms = -1;
    for (size_t i = 0; i < g->nall; i++) {
        const qtopic *t = g->all[i].t;
        const qpart *p = g->all[i].p;
        if (p->sn && (out->next_scheduled_ms < 0 || p->sv[0].due < out->next_scheduled_ms))
            out->next_scheduled_ms = p->sv[0].due;
        int64_t hwm = p->next;
        int64_t unread = 0;
        if (td_offset_for(e, t->name, p->partition, TD_OFFSET_LATEST, &hwm) == 0 && hwm > p->next &&
            engine_count_records(e, t->name, p->partition, p->next, hwm, &unread) == 0)
            out->depth += unread; /* records, not offsets: a compacted topic has gaps */
        out->depth += (int64_t)(p->n - p->gone);
        for (size_t k = 0; k < p->n; k++) {
            const qentry *en = &p->v[k];
            if (!en->d.state)
                continue;
            out->in_flight += en->d.state == DELIVERY_INFLIGHT;
            out->waiting += en->d.state == DELIVERY_WAITING || en->d.state == DELIVERY_DEAD;
            out->held += en->d.state == DELIVERY_HELD;
            if (en->d.deliveries > 0 && en->event_ms > 0 &&
                (out->oldest_unacked_ms < 0 || en->event_ms < out->oldest_unacked_ms))
                out->oldest_unacked_ms = en->event_ms;
        }
    }
    for (size_t i = 0; i < g->ncons; i++)
        out->consumers += g->cons[i].name[0] && now - g->cons[i].seen_ms <= g->pol.ack_timeout_ms;
    qc_describe(g, now, out);
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
