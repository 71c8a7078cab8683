/*
 * changes.c: the change hook (broker_set_change_hook): one function the engine calls after
 * events are appended, records are trimmed from a partition's start, or a topic is created or
 * deleted, whichever protocol (or the library) made the change. The Redis listener turns these
 * into keyspace notifications, so that an event produced through Kafka or HTTP is an `xadd`
 * like one added with XADD.
 *
 * Cost: with no hook set (the broker without a Redis listener, or embedded) a change costs one
 * atomic load. With one, the hook decides (the Redis listener returns after an atomic load of
 * its notify-keyspace-events flags when they are off). The hook runs on the appending thread,
 * so it must not block: it copies and posts.
 */
#include "broker/engine_int.h"
#include "broker/state.h"

void broker_set_change_hook(td_engine *e, broker_change_fn fn, void *arg)
{
    if (fn)
        __atomic_store_n(&e->change_hook.arg, arg, __ATOMIC_RELAXED);
    __atomic_store_n(&e->change_hook.fn, fn, __ATOMIC_RELEASE);
}

void engine_note_change(td_engine *e, int kind, const td_topic *t, int32_t partition, int64_t count,
                        int64_t end)
{
    broker_change_fn fn = __atomic_load_n(&e->change_hook.fn, __ATOMIC_ACQUIRE);
    if (!fn || state_topic_internal(t->name))
        return;
    broker_change c = {kind,  t->name, partition, __atomic_load_n(&t->nparts, __ATOMIC_RELAXED),
                       count, end};
    fn(__atomic_load_n(&e->change_hook.arg, __ATOMIC_RELAXED), &c);
}
