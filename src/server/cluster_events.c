/*
 * cluster_events.c: what a broker sees of its cluster, told as health events on $sys.cluster
 * (docs/health.md): brokers joining and leaving, the controller changing, this broker losing
 * its lease, etcd becoming unreachable and reachable again. Each broker tells what it sees
 * (observer is its own id); the events come from the difference of two views.
 */
#include <inttypes.h>
#include <stdio.h>

#include "broker/health.h"
#include "server/server_int.h"
#include "tidings.h"

static void broker_event(td_engine *e, health_type t, const td_cluster_broker *b, int32_t self)
{
    char key[16], kafka[300] = "";
    snprintf(key, sizeof(key), "%" PRId32, b->id);
    if (b->nkafka)
        snprintf(kafka, sizeof(kafka), "%s:%d", b->kafka[0].host, (int)b->kafka[0].port);
    health_field f[] = {HF_INT("broker_id", b->id), HF_INT("epoch", b->epoch),
                        HF_INT("observer", self), HF_STR("rack", b->rack[0] ? b->rack : NULL),
                        HF_STR("kafka", kafka[0] ? kafka : NULL)};
    /* A broker that left is named by its id and epoch; one that joined also by its addresses. */
    health_emit(e, t, key, f, t == HEALTH_CLUSTER_BROKER_LEFT ? 3 : TD_ARRAY_LEN(f));
}

/* The brokers of a that are not in b with the same epoch. */
static void brokers_gone(td_engine *e, health_type t, const td_cluster_view *a,
                         const td_cluster_view *b)
{
    for (size_t i = 0; i < a->nbrokers; i++) {
        const td_cluster_broker *x = &a->brokers[i], *y = cluster_view_broker(b, x->id);
        if (!y || y->epoch != x->epoch)
            broker_event(e, t, x, a->self_id);
    }
}

void server_cluster_observe(void *arg, const td_cluster_view *before, const td_cluster_view *after)
{
    td_engine *e = arg;
    char self[16];
    snprintf(self, sizeof(self), "%" PRId32, after->self_id);
    brokers_gone(e, HEALTH_CLUSTER_BROKER_LEFT, before, after);
    brokers_gone(e, HEALTH_CLUSTER_BROKER_JOINED, after, before);
    if (before->controller_id != after->controller_id ||
        before->controller_epoch != after->controller_epoch) {
        health_field f[] = {HF_INT("controller_id", after->controller_id),
                            HF_INT("epoch", after->controller_epoch),
                            HF_INT("previous_controller_id", before->controller_id),
                            HF_INT("observer", after->self_id)};
        health_emit(e, HEALTH_CLUSTER_CONTROLLER_CHANGED, "controller", f, TD_ARRAY_LEN(f));
    }
    if (before->self_epoch > 0 && after->self_epoch == 0) {
        health_field f[] = {HF_INT("broker_id", after->self_id),
                            HF_INT("epoch", before->self_epoch)};
        health_emit(e, HEALTH_CLUSTER_LEASE_LOST, self, f, TD_ARRAY_LEN(f));
    }
    if (before->etcd_up != after->etcd_up) {
        health_field f[] = {HF_INT("broker_id", after->self_id)};
        health_emit(
            e, after->etcd_up ? HEALTH_CLUSTER_ETCD_REACHABLE : HEALTH_CLUSTER_ETCD_UNREACHABLE,
            self, f, TD_ARRAY_LEN(f));
    }
}
