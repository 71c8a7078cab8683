/*
 * test_queue_json.c: a queue group's description as the HTTP API's JSON (td_queue_info_json,
 * broker/queue_json.c), the one text the HTTP routes and the command's local mode both show:
 * every field in the documented order, null for no unacked event, reals as their shortest
 * text, and names escaped.
 */
#include <jansson.h>

#include "test.h"

static td_queue_info sample(void)
{
    td_queue_info q;
    memset(&q, 0, sizeof(q));
    snprintf(q.group, sizeof(q.group), "workers");
    snprintf(q.topic, sizeof(q.topic), "orders.*");
    td_queue_policy_init(&q.policy);
    q.policy.backoff_multiplier = 1.5;
    q.policy.backoff_jitter = 0.1;
    q.policy.ordering = TD_QUEUE_BY_KEY;
    q.policy.start_latest = 1;
    snprintf(q.dead_letter_topic, sizeof(q.dead_letter_topic), "orders.*.dlq");
    q.created_ms = 1796564990792;
    q.topics = 3;
    q.depth = 10;
    q.in_flight = 4;
    q.waiting = 3;
    q.held = 2;
    q.consumers = 1;
    q.acked = 100;
    q.redelivered = 7;
    q.dead_lettered = 1;
    q.oldest_unacked_ms = -1;
    q.policy.circuit_failure_rate = 50;
    q.circuit_state = TD_CIRCUIT_CLOSED;
    q.circuit_calls = 12;
    q.circuit_failures = 5;
    q.circuit_opened = 2;
    q.circuit_since_ms = -1;
    q.circuit_open_until_ms = -1;
    q.scheduled = 6;
    q.next_scheduled_ms = 1796564999000;
    return q;
}

static void test_text(void)
{
    td_queue_info q = sample();
    char *t = td_queue_info_json(&q);
    ASSERT(t != NULL);
    ASSERT_STR_EQ(
        t, "{\"group\":\"workers\",\"topic\":\"orders.*\",\"created_ms\":1796564990792,"
           "\"depth\":10,\"in_flight\":4,\"waiting\":3,\"held\":2,\"scheduled\":6,\"consumers\":1,"
           "\"acked\":100,\"redelivered\":7,\"dead_lettered\":1,"
           "\"next_scheduled_ms\":1796564999000,\"oldest_unacked_ms\":null,\"topic_count\":3,"
           "\"policy\":{\"ack_timeout_ms\":30000,\"max_deliveries\":5,\"backoff\":{"
           "\"initial_ms\":1000,\"multiplier\":1.5,\"max_ms\":60000,\"jitter\":0.1},"
           "\"dead_letter_topic\":\"orders.*.dlq\",\"ordering\":\"key\",\"max_in_flight\":1000,"
           "\"max_in_flight_per_consumer\":100,\"start\":\"latest\",\"forward_to\":null,"
           "\"circuit_breaker\":{\"failure_rate\":50,\"window_ms\":60000,\"min_calls\":20,"
           "\"open_ms\":30000,\"half_open_trials\":3}},"
           "\"circuit\":{\"state\":\"closed\",\"calls\":12,\"failures\":5,\"opened\":2,"
           "\"since_ms\":null,\"open_until_ms\":null}}");
    free(t);
    /* An unacked event's time is a number; a whole multiplier is still a real. */
    q.oldest_unacked_ms = 1796564990000;
    q.policy.backoff_multiplier = 2;
    q.policy.backoff_jitter = 0;
    t = td_queue_info_json(&q);
    ASSERT(t != NULL);
    ASSERT(strstr(t, "\"oldest_unacked_ms\":1796564990000,") != NULL);
    ASSERT(strstr(t, "\"multiplier\":2.0,") != NULL);
    ASSERT(strstr(t, "\"jitter\":0.0}") != NULL);
    free(t);
    /* Nothing scheduled: no next time. */
    q.scheduled = 0;
    q.next_scheduled_ms = -1;
    t = td_queue_info_json(&q);
    ASSERT(t != NULL);
    ASSERT(strstr(t, "\"scheduled\":0,") != NULL);
    ASSERT(strstr(t, "\"next_scheduled_ms\":null,") != NULL);
    free(t);
    /* An open circuit: its times are numbers. */
    q.circuit_state = TD_CIRCUIT_OPEN;
    q.circuit_since_ms = 1796564990100;
    q.circuit_open_until_ms = 1796565020100;
    t = td_queue_info_json(&q);
    ASSERT(t != NULL);
    ASSERT(strstr(t, "\"circuit\":{\"state\":\"open\",") != NULL);
    ASSERT(strstr(t, "\"since_ms\":1796564990100,\"open_until_ms\":1796565020100}}") != NULL);
    json_error_t err;
    json_t *j = json_loads(t, 0, &err);
    ASSERT(j != NULL);
    ASSERT(json_is_real(json_object_get(json_object_get(json_object_get(j, "policy"), "backoff"),
                                        "multiplier")));
    json_decref(j);
    free(t);
}

static void test_escapes(void)
{
    td_queue_info q = sample();
    snprintf(q.group, sizeof(q.group), "a\"b\\c\x01");
    q.dead_letter_topic[0] = 0; /* too long a name for <topic>.dlq */
    char *t = td_queue_info_json(&q);
    ASSERT(t != NULL);
    ASSERT(strstr(t, "{\"group\":\"a\\\"b\\\\c\\u0001\",") == t);
    ASSERT(strstr(t, "\"dead_letter_topic\":\"\",") != NULL);
    json_t *j = json_loads(t, 0, NULL);
    ASSERT(j != NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "group")), q.group);
    json_decref(j);
    free(t);
}

TEST_MAIN(TEST(test_text), TEST(test_escapes))
