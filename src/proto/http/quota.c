/*
 * quota.c: client quotas on the HTTP listener (docs/security.md#quotas). An HTTP client is the
 * quotas' user by the request's principal; HTTP has no client id, so only quotas of users (and
 * of the default client id) apply:
 *   - producer_byte_rate counts the bodies of POST /v1/topics/{topic}/events;
 *   - consumer_byte_rate the bodies of event reads (GET .../events, queue receives) and the
 *     bytes live subscriptions stream;
 *   - request_percentage the time requests take on the loop.
 * HTTP clients often open a connection per request, so muting a connection, as Kafka does,
 * would not hold them: a request of a principal that still owes under its quotas waits
 * instead, before it is served, for as long as it owes (at most 11 s). A live subscription
 * past its quota stops sending until it is back within it.
 */
#include <string.h>

#include "broker/authz.h"
#include "broker/quota.h"
#include "proto/http/http_int.h"

static void resume(void *arg)
{
    hconn *hc = arg;
    net_conn *c = hc->c;
    hc->quota_passed = true;
    hc->async = false;
    http_route(hc);
    hc->quota_passed = false;
    if (net_conn_closed(c) || hc->async)
        return;
    http_finish_async(hc);
}

bool http_quota_delay(hconn *hc)
{
    if (hc->quota_passed)
        return false;
    td_principal p;
    http_principal(hc, &p);
    int64_t t = broker_quota_debt_ms(hc->s->e, p.user, NULL, td_mono_ms());
    if (t <= 0)
        return false;
    http_begin_async(hc);
    hc->quota_timer = (net_timer)NET_TIMER_INIT;
    net_timer_start(net_conn_loop(hc->c), &hc->quota_timer, t, resume, hc);
    return true;
}

void http_quota_record(hconn *hc)
{
    td_engine *e = hc->s->e;
    const char *route = hc->route;
    if (!route || !hc->t0)
        return;
    td_principal p;
    http_principal(hc, &p);
    int64_t now = td_mono_ms();
    bool events = !strcmp(route, "/v1/topics/{topic}/events");
    if (events && http_method_is(hc, "POST"))
        broker_quota_record(e, p.user, NULL, TD_QUOTA_PRODUCER_BYTE_RATE, (double)hc->body.len,
                            now);
    else if ((events && http_method_is(hc, "GET")) || !strcmp(route, "/v1/queues/{group}/receive"))
        broker_quota_record(e, p.user, NULL, TD_QUOTA_CONSUMER_BYTE_RATE,
                            (double)hc->resp_bytes, now);
    if (broker_quota_any(e, TD_QUOTA_REQUEST_PERCENTAGE))
        broker_quota_record(e, p.user, NULL, TD_QUOTA_REQUEST_PERCENTAGE,
                            (double)(td_mono_ns() - hc->t0) * 1e-7, now);
}

int64_t http_quota_stream(http_server *s, const char *user, size_t bytes)
{
    return broker_quota_record(s->e, user, NULL, TD_QUOTA_CONSUMER_BYTE_RATE, (double)bytes,
                               td_mono_ms());
}

void http_quota_close(hconn *hc)
{
    net_timer_stop(net_conn_loop(hc->c), &hc->quota_timer);
}
