/*
 * quota.c: client quotas on the Redis listener (docs/security.md#quotas). A Redis client is
 * the quotas' user by its authenticated principal and their client id by its name (CLIENT
 * SETNAME, HELLO SETNAME), so the quotas a Kafka client of the same user has hold it too:
 *   - producer_byte_rate counts the bytes of XADD and PUBLISH commands;
 *   - consumer_byte_rate the bytes of the replies that carry stream entries (XREAD,
 *     XREADGROUP, XRANGE, XREVRANGE, XCLAIM, XAUTOCLAIM), blocked reads when they are answered;
 *   - request_percentage the time commands take on the loop.
 * Past a quota the reply still goes out, and the connection is then not read for the throttle
 * time, as a Kafka connection is muted: a pipelining client's next commands wait in the socket.
 */
#include <string.h>

#include "broker/quota.h"
#include "proto/resp/resp_int.h"

static bool name_in(td_slice name, const char *const *list)
{
    for (; *list; list++)
        if (resp_arg_is(name, *list))
            return true;
    return false;
}

static void throttle_done(void *arg)
{
    rconn *rc = arg;
    rc->throttled = false;
    if (!rc->waits && !rc->blk && !rc->closing)
        net_conn_resume(rc->c);
}

static void record(rconn *rc, td_quota_key key, double amount)
{
    td_engine *e = rc->s->e;
    if (amount <= 0 || !broker_quota_any(e, key))
        return;
    int64_t t = broker_quota_record(e, net_conn_principal(rc->c), rc->name[0] ? rc->name : NULL,
                                    key, amount, td_mono_ms());
    if (t <= 0)
        return;
    net_loop *l = net_conn_loop(rc->c);
    int64_t now = net_loop_now(l);
    if (rc->throttled && rc->throttle_timer.due_ms >= now + t)
        return; /* already muted for longer */
    if (rc->throttled)
        net_timer_stop(l, &rc->throttle_timer);
    else
        rc->throttle_timer = (net_timer)NET_TIMER_INIT;
    rc->throttled = true;
    net_conn_pause(rc->c);
    net_timer_start(l, &rc->throttle_timer, t, throttle_done, rc);
}

void resp_quota_command(rconn *rc, td_slice cmd, size_t in_bytes, size_t out_bytes, int64_t ns)
{
    static const char *const produce[] = {"xadd", "publish", "spublish", NULL};
    static const char *const consume[] = {"xread", "xreadgroup", "xrange", "xrevrange",
                                          "xclaim", "xautoclaim", NULL};
    if (!rc->authed)
        return; /* refused before authentication: nobody to count it for */
    if (name_in(cmd, produce))
        record(rc, TD_QUOTA_PRODUCER_BYTE_RATE, (double)in_bytes);
    else if (name_in(cmd, consume))
        record(rc, TD_QUOTA_CONSUMER_BYTE_RATE, (double)out_bytes);
    record(rc, TD_QUOTA_REQUEST_PERCENTAGE, (double)ns * 1e-7);
}

void resp_quota_unblocked(rconn *rc, size_t out_bytes)
{
    record(rc, TD_QUOTA_CONSUMER_BYTE_RATE, (double)out_bytes);
}

void resp_quota_close(rconn *rc)
{
    if (rc->throttled) {
        net_timer_stop(net_conn_loop(rc->c), &rc->throttle_timer);
        rc->throttled = false;
    }
}
