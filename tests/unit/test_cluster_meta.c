/* Unit tests for cluster/meta_json.c and cluster/config.c: the values brokers keep in etcd
 * (round trips, what a decoder refuses, every truncation), broker ids in keys,
 * cluster.properties, and the cluster.* settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "test.h"

static td_cluster_broker sample(void)
{
    td_cluster_broker b = {.id = 7, .nkafka = 2};
    snprintf(b.rack, sizeof(b.rack), "rack-a");
    snprintf(b.kafka[0].protocol, sizeof(b.kafka[0].protocol), "PLAINTEXT");
    snprintf(b.kafka[0].host, sizeof(b.kafka[0].host), "10.0.0.7");
    b.kafka[0].port = 9092;
    snprintf(b.kafka[1].protocol, sizeof(b.kafka[1].protocol), "SASL_SSL");
    snprintf(b.kafka[1].host, sizeof(b.kafka[1].host), "broker7.internal");
    b.kafka[1].port = 9093;
    snprintf(b.http, sizeof(b.http), "10.0.0.7:8080");
    return b;
}

static void test_broker_round_trip(void)
{
    td_cluster_broker b = sample(), d;
    td_buf out;
    td_buf_init(&out);
    ASSERT_EQ(cluster_broker_encode(&out, &b), 0);
    ASSERT_EQ(cluster_broker_decode((const char *)out.p, out.len, &d), 0);
    ASSERT_EQ(d.id, 7);
    ASSERT_STR_EQ(d.rack, "rack-a");
    ASSERT_EQ(d.nkafka, 2);
    ASSERT_STR_EQ(d.kafka[1].protocol, "SASL_SSL");
    ASSERT_STR_EQ(d.kafka[1].host, "broker7.internal");
    ASSERT_EQ(d.kafka[1].port, 9093);
    ASSERT_STR_EQ(d.http, "10.0.0.7:8080");
    ASSERT_STR_EQ(d.redis, ""); /* null */
    ASSERT_EQ(d.epoch, 0);      /* the key's create_revision, not the value's */
    /* Every truncation is refused whole, never half-filled. */
    for (size_t n = 0; n < out.len; n++) {
        memset(&d, 0x5a, sizeof(d));
        ASSERT_EQ(cluster_broker_decode((const char *)out.p, n, &d), TD_EPROTO);
        ASSERT_EQ(d.id, 0);
        ASSERT_EQ(d.nkafka, 0);
    }
    td_buf_free(&out);
}

static void test_broker_refused(void)
{
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"id\":-1}",
        "{\"id\":2147483648}",
        "{\"id\":\"1\"}",
        "{\"id\":1,\"rack\":5}",
        "{\"id\":1,\"listeners\":{}}",
        "{\"id\":1,\"listeners\":[{\"protocol\":\"PLAINTEXT\",\"host\":\"h\",\"port\":70000}]}",
        "{\"id\":1,\"listeners\":[{\"protocol\":\"PLAINTEXT\",\"host\":\"h\"}]}",
        "{\"id\":1,\"listeners\":[1]}",
        "{\"id\":1,\"id\":2}",
        "{\"id\":1,\"http\":\"a\\u0000b\"}",
        ("{\"id\":1,\"listeners\":[{\"port\":1},{\"port\":1},{\"port\":1},{\"port\":1},"
         "{\"port\":1},{\"port\":1},{\"port\":1},{\"port\":1},{\"port\":1}]}")};
    td_cluster_broker d;
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++)
        ASSERT_EQ(cluster_broker_decode(bad[i], strlen(bad[i]), &d), TD_EPROTO);
    /* A rack as long as the field holds is refused, one byte shorter taken. */
    char big[200];
    int n = snprintf(big, sizeof(big), "{\"id\":1,\"rack\":\"%0*d\"}", TD_CLUSTER_RACK_MAX, 0);
    ASSERT_EQ(cluster_broker_decode(big, (size_t)n, &d), TD_EPROTO);
    n = snprintf(big, sizeof(big), "{\"id\":1,\"rack\":\"%0*d\"}", TD_CLUSTER_RACK_MAX - 1, 0);
    ASSERT_EQ(cluster_broker_decode(big, (size_t)n, &d), 0);
    ASSERT_EQ(strlen(d.rack), (size_t)TD_CLUSTER_RACK_MAX - 1);
    /* Unknown fields (a newer broker's) are ignored. */
    const char *newer = "{\"id\":3,\"future\":{\"x\":[1]},\"listeners\":[]}";
    ASSERT_EQ(cluster_broker_decode(newer, strlen(newer), &d), 0);
    ASSERT_EQ(d.id, 3);
}

static void test_controller(void)
{
    td_buf out;
    td_buf_init(&out);
    ASSERT_EQ(cluster_controller_encode(&out, 42), 0);
    int32_t id = -1;
    ASSERT_EQ(cluster_controller_decode((const char *)out.p, out.len, &id), 0);
    ASSERT_EQ(id, 42);
    for (size_t n = 0; n < out.len; n++)
        ASSERT_EQ(cluster_controller_decode((const char *)out.p, n, &id), TD_EPROTO);
    ASSERT_EQ(cluster_controller_decode("{\"broker_id\":-3}", 16, &id), TD_EPROTO);
    td_buf_free(&out);
}

static void test_key_ids(void)
{
    int32_t id;
    ASSERT_EQ(cluster_broker_key_id("0", 1, &id), 0);
    ASSERT_EQ(id, 0);
    ASSERT_EQ(cluster_broker_key_id("2147483647", 10, &id), 0);
    ASSERT_EQ(id, 2147483647);
    static const char *const bad[] = {"",   "01", "2147483648", "9999999999",
                                      "-1", "1a", "1/x",        "12345678901"};
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++)
        ASSERT_EQ(cluster_broker_key_id(bad[i], strlen(bad[i]), &id), TD_EPROTO);
}

static void test_props(void)
{
    char *dir = test_tmpdir("cluster-props");
    cluster_props p;
    ASSERT_EQ(cluster_props_read(dir, &p), 0); /* absent: empty */
    ASSERT_STR_EQ(p.cluster_id, "");
    ASSERT_EQ(p.broker_id, -1);
    ASSERT_EQ(p.lease, 0);
    cluster_props w = {.broker_id = 3, .lease = 2324035881370683917};
    snprintf(w.cluster_id, sizeof(w.cluster_id), "euA7UnqUlfxlUASjlv5pbw");
    ASSERT_EQ(cluster_props_write(dir, &w), 0);
    ASSERT_EQ(cluster_props_read(dir, &p), 0);
    ASSERT_STR_EQ(p.cluster_id, "euA7UnqUlfxlUASjlv5pbw");
    ASSERT_EQ(p.broker_id, 3);
    ASSERT_EQ(p.lease, 2324035881370683917);
    /* A damaged file is refused, naming it. */
    char path[600];
    snprintf(path, sizeof(path), "%s/cluster.properties", dir);
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs("cluster.id=x\nbroker.id=banana\n", f);
    fclose(f);
    ASSERT_EQ(cluster_props_read(dir, &p), TD_ECORRUPT);
    ASSERT(strstr(td_last_error(), "line 2") != NULL);
    test_rmrf(dir);
}

static void test_config(void)
{
    td_cluster_config c;
    cluster_config_defaults(&c);
    ASSERT_EQ(c.broker_id, -1);
    ASSERT_EQ(c.session_timeout_ms, 6000);
    ASSERT_EQ(cluster_config_set(&c, "kafka", "x"), 1); /* not ours */
    ASSERT_EQ(cluster_config_set(&c, "cluster.coordinator", "zk://h:1"), TD_ECONFIG);
    ASSERT_EQ(cluster_config_set(&c, "cluster.session.timeout.ms", "1999"), TD_ECONFIG);
    ASSERT_EQ(cluster_config_set(&c, "broker.id", "-1"), TD_ECONFIG);
    ASSERT_EQ(cluster_config_set(&c, "cluster.coordinator", "etcd://127.0.0.1:2379"), 0);
    ASSERT_EQ(cluster_config_check(&c), TD_ECONFIG); /* broker.id unset */
    ASSERT(strstr(td_last_error(), "broker.id") != NULL);
    ASSERT_EQ(cluster_config_set(&c, "broker.id", "0"), 0);
    ASSERT_EQ(cluster_config_check(&c), 0);
    ASSERT_EQ(cluster_config_set(&c, "cluster.coordinator", "etcd:///prefix"), 0);
    ASSERT_EQ(cluster_config_check(&c), TD_ECONFIG); /* no host */
    ASSERT_EQ(cluster_config_set(&c, "cluster.coordinator", "etcd://h:1,h:2/"), 0);
    ASSERT_EQ(cluster_config_check(&c), TD_ECONFIG); /* a prefix of '/' */
    ASSERT_EQ(cluster_config_set(&c, "cluster.coordinator", "etcd://h:1,h:2/t/x/"), 0);
    ASSERT_EQ(cluster_config_check(&c), 0);
    for (size_t i = 0; cluster_config_keys[i]; i++) /* every key named is taken */
        ASSERT(cluster_config_set(&c, cluster_config_keys[i], "bad value") != 1);
}

TEST_MAIN(TEST(test_broker_round_trip), TEST(test_broker_refused), TEST(test_controller),
          TEST(test_key_ids), TEST(test_props), TEST(test_config))
