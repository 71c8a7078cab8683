/* Unit tests for proto/kafka/client.c: a blocking client connection against an in-process
 * broker (engine, Kafka server, event loop): the versions learned, a follower's Fetch at
 * v15 with its replica state, the batches as the log holds them, and the failures: a refused
 * connection, a peer that never answers, an answer too large. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "proto/kafka/client.h"
#include "proto/kafka/kafka.h"
#include "storage/batch.h"
#include "test.h"

static char *g_dir;
static td_engine *g_e;
static kafka_server *g_ks;
static net_group *g_g;
static int g_port;

static void setup(void)
{
    g_dir = test_tmpdir("kclient");
    g_e = test_engine_open(g_dir);
    kafka_server_config kc = {.advertised_host = "127.0.0.1",
                              .node_id = 1,
                              .auto_create_topics = true,
                              .default_partitions = 1,
                              .cluster_id = "test-cluster",
                              .data_dir = g_dir};
    ASSERT_OK(kafka_server_create(g_e, &kc, &g_ks));
    net_config nc = {.loops = 1, .shutdown_grace_ms = 200};
    ASSERT_OK(net_group_create(&nc, &g_g));
    ASSERT_OK(net_group_listen(g_g, "127.0.0.1", 0, kafka_server_proto(), g_ks, NULL, &g_port));
    kafka_server_set_port(g_ks, g_port);
    ASSERT_OK(kafka_server_attach(g_ks, g_g));
    ASSERT_OK(net_group_start(g_g));
}

static void teardown(void)
{
    net_group_stop(g_g);
    kafka_server_detach(g_ks);
    ASSERT_OK(td_engine_flush(g_e));
    net_group_destroy(g_g);
    kafka_server_destroy(g_ks);
    ASSERT_OK(td_engine_close(g_e));
    test_rmrf(g_dir);
}

static void test_versions(void)
{
    setup();
    kafka_client *c;
    ASSERT_OK(kafka_client_connect("127.0.0.1", g_port, "test", 5000, 0, &c));
    ASSERT_EQ(kafka_client_version(c, KAFKA_FETCH, 4, 15), 15);
    ASSERT_EQ(kafka_client_version(c, KAFKA_FETCH, 4, 99), 17); /* the broker's highest */
    ASSERT_EQ(kafka_client_version(c, KAFKA_FETCH, 18, 20), -1);
    ASSERT_EQ(kafka_client_version(c, KAFKA_API_VERSIONS, 0, 3), 3);
    ASSERT_EQ(kafka_client_version(c, KAFKA_OFFSET_FOR_LEADER_EPOCH, 0, 4), -1); /* not served */
    ASSERT_EQ(kafka_client_version(c, 127, 0, 4), -1);
    kafka_client_close(c);
    teardown();
}

typedef struct fetch_arg {
    kafka_fetch_req q;
    kafka_fetch_topic t;
    kafka_fetch_part p;
} fetch_arg;

static void fetch_body(kafka_out *o, int16_t v, const void *arg)
{
    kafka_encode_fetch_req(o, v, &((const fetch_arg *)arg)->q);
}

static void fetch_arg_init(fetch_arg *a, const char *topic, int64_t offset)
{
    memset(a, 0, sizeof(*a));
    a->p = (kafka_fetch_part){.partition = 0,
                              .current_leader_epoch = -1,
                              .fetch_offset = offset,
                              .last_fetched_epoch = -1,
                              .log_start_offset = -1,
                              .max_bytes = 1 << 20};
    a->t = (kafka_fetch_topic){.name = topic, .nparts = 1, .parts = &a->p};
    a->q = (kafka_fetch_req){.replica_id = 2,
                             .replica_epoch = 7,
                             .max_wait_ms = 0,
                             .min_bytes = 1,
                             .max_bytes = 1 << 20,
                             .isolation_level = 0,
                             .session_epoch = -1,
                             .ntopics = 1,
                             .topics = &a->t};
}

static void test_fetch_as_a_follower(void)
{
    setup();
    ASSERT_OK(td_topic_create(g_e, "t", 1, NULL, 0));
    td_event ev[3];
    const char *vals[] = {"a", "bb", "ccc"};
    for (int i = 0; i < 3; i++)
        ev[i] = (td_event){.value = vals[i], .value_len = strlen(vals[i]), .partition = 0};
    ASSERT_OK(td_produce(g_e, "t", ev, 3, NULL));
    ASSERT_OK(td_produce(g_e, "t", ev, 1, NULL));
    kafka_client *c;
    ASSERT_OK(kafka_client_connect("localhost", g_port, "follower-2", 5000, 0, &c));
    int16_t v = kafka_client_version(c, KAFKA_FETCH, 12, 15);
    ASSERT_EQ(v, 15);
    fetch_arg a;
    fetch_arg_init(&a, "t", 0);
    /* v13+ names topics by id: learn it the way a follower would, from Metadata. Here the
     * follower fetches at v12, by name. */
    kafka_reader r;
    ASSERT_OK(kafka_client_call(c, KAFKA_FETCH, 12, fetch_body, &a, 5000, &r));
    kafka_fetch_resp resp;
    ASSERT_OK(kafka_decode_fetch_resp(&r, 12, &resp));
    ASSERT_EQ(resp.error_code, 0);
    ASSERT_EQ(resp.ntopics, 1);
    ASSERT_EQ(resp.topics[0].nparts, 1);
    const kafka_fetch_part_resp *p = &resp.topics[0].parts[0];
    ASSERT_EQ(p->error_code, 0);
    ASSERT_EQ(p->high_watermark, 4);
    ASSERT_EQ(p->log_start_offset, 0);
    ASSERT_EQ(p->diverging_epoch, -1);
    /* Two batches, as the log holds them: offsets 0-2, then 3. */
    size_t off = 0, nbatches = 0;
    int64_t next = 0;
    while (off < (size_t)p->len) {
        td_batch_header h;
        ASSERT_OK(batch_validate(p->mem + off, (size_t)p->len - off, true, 1 << 20, &h));
        ASSERT_EQ(h.base_offset, next);
        next = batch_last_offset(&h) + 1;
        off += batch_total_size(&h);
        nbatches++;
    }
    ASSERT_EQ(nbatches, 2);
    ASSERT_EQ(next, 4);
    /* From the end: nothing, at once (max_wait_ms 0). */
    fetch_arg_init(&a, "t", 4);
    ASSERT_OK(kafka_client_call(c, KAFKA_FETCH, 12, fetch_body, &a, 5000, &r));
    ASSERT_OK(kafka_decode_fetch_resp(&r, 12, &resp));
    ASSERT_EQ(resp.topics[0].parts[0].error_code, 0);
    ASSERT_EQ(resp.topics[0].parts[0].len, 0);
    /* An unknown topic is the partition's error, and the connection serves on. */
    fetch_arg_init(&a, "nope", 0);
    ASSERT_OK(kafka_client_call(c, KAFKA_FETCH, 12, fetch_body, &a, 5000, &r));
    ASSERT_OK(kafka_decode_fetch_resp(&r, 12, &resp));
    ASSERT_NE(resp.topics[0].parts[0].error_code, 0);
    kafka_client_close(c);
    teardown();
}

static void test_failures(void)
{
    /* Nobody listens. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ASSERT_OK(bind(s, (struct sockaddr *)&a, sizeof(a)));
    ASSERT_OK(getsockname(s, (struct sockaddr *)&a, &len));
    int port = ntohs(a.sin_port);
    kafka_client *c = NULL;
    ASSERT_EQ(kafka_client_connect("127.0.0.1", port, "x", 2000, 0, &c), -ECONNREFUSED);
    ASSERT(c == NULL);
    /* A peer that takes the connection and never answers: the deadline. */
    ASSERT_OK(listen(s, 4));
    int64_t t0 = td_mono_ms();
    ASSERT_EQ(kafka_client_connect("127.0.0.1", port, "x", 300, 0, &c), -ETIMEDOUT);
    ASSERT(td_mono_ms() - t0 >= 300);
    close(s);
    /* An answer larger than max_frame. */
    setup();
    ASSERT_EQ(kafka_client_connect("127.0.0.1", g_port, "x", 2000, 16, &c), TD_ETOOBIG);
    teardown();
    /* A name that does not resolve. */
    ASSERT(kafka_client_connect("no-such-host.invalid", 9092, "x", 2000, 0, &c) < 0);
}

TEST_MAIN(TEST(test_versions), TEST(test_fetch_as_a_follower), TEST(test_failures))
