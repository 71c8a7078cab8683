/* Unit tests for cluster/placement.c: the placements Kafka's own tests expect where they fix the
 * start (AdminRackAwareTest, AddPartitionsTest), the placements Kafka's
 * AdminUtils.assignReplicasToBrokers (apache/kafka 1eb7644349cb, server-common) returns for its
 * other fixed-start tests and for a few more cases, run on Kafka's code for these expectations;
 * Kafka's distribution checks (RackAwareTest.checkReplicaDistribution) over random starts;
 * properties over many random sizes and starts; and the errors. */
#include <stdlib.h>

#include "base/base.h"
#include "cluster/placement.h"
#include "test.h"

#define MAXB 16  /* brokers in any one case here */
#define MAXP 128 /* partitions */
#define MAXR 8   /* replicas per partition */

typedef cluster_placement_broker broker;

/* Kafka's broker lists in these tests: ids 0..n-1 with these racks (NULL: none). */
static size_t brokers_of(broker *b, const char *const *racks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (broker){.id = (int32_t)i, .rack = racks ? racks[i] : NULL};
    return n;
}

static void assign(const broker *b, size_t n, int32_t np, int32_t first, int16_t rf, int32_t start,
                   int32_t shift, int32_t *out)
{
    ASSERT_OK(cluster_assign_replicas(b, n, np, first, rf, start, shift, false, out));
}

static void expect_placement(const int32_t *out, const int32_t *want, int32_t np, int16_t rf)
{
    for (int32_t i = 0; i < np * rf; i++)
        if (out[i] != want[i])
            TEST_FAIL_("partition %d replica %d: broker %d, expected %d", i / rf, i % rf, out[i],
                       want[i]);
}

static const char *rack_of(const broker *b, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (b[i].id == id)
            return b[i].rack ? b[i].rack : "";
    TEST_FAIL_("broker %d was placed but is not in the list", id);
}

/* How many distinct racks partition p's replicas are on. */
static int racks_of_partition(const broker *b, size_t n, const int32_t *o, int16_t rf)
{
    int distinct = 0;
    for (int16_t r = 0; r < rf; r++) {
        bool seen = false;
        for (int16_t q = 0; q < r; q++)
            seen |= strcmp(rack_of(b, n, o[q]), rack_of(b, n, o[r])) == 0;
        distinct += !seen;
    }
    return distinct;
}

enum { VERIFY_RACKS = 1, VERIFY_LEADERS = 2, VERIFY_REPLICAS = 4, VERIFY_ALL = 7 };

/* Kafka's RackAwareTest.checkReplicaDistribution: no broker twice in a partition; with
 * VERIFY_RACKS, each partition on rf racks; with VERIFY_LEADERS, each broker leads np / n; with
 * VERIFY_REPLICAS, each holds np * rf / n. */
static void check_distribution(const broker *b, size_t n, const int32_t *out, int32_t np,
                               int16_t rf, int verify)
{
    int leaders[MAXB] = {0}, replicas[MAXB] = {0};
    for (int32_t p = 0; p < np; p++) {
        const int32_t *o = out + p * rf;
        for (int16_t r = 0; r < rf; r++) {
            size_t at = 0;
            while (at < n && b[at].id != o[r])
                at++;
            ASSERT(at < n);
            for (int16_t q = 0; q < r; q++)
                ASSERT_NE(o[q], o[r]);
            replicas[at]++;
            leaders[at] += r == 0;
        }
        if (verify & VERIFY_RACKS)
            ASSERT_EQ(racks_of_partition(b, n, o, rf), rf);
    }
    for (size_t i = 0; i < n; i++) {
        if (verify & VERIFY_LEADERS)
            ASSERT_EQ(leaders[i], np / (int32_t)n);
        if (verify & VERIFY_REPLICAS)
            ASSERT_EQ(replicas[i], np * rf / (int32_t)n);
    }
}

/* AdminRackAwareTest.testGetRackAlternatedBrokerListAndAssignReplicasToBrokers, and the example
 * in AdminUtils' comment: the rack-alternated list is what one replica per partition walks. */
static void test_kafka_rack_alternated(void)
{
    static const char *const racks[] = {"rack1", "rack3", "rack3", "rack2", "rack2", "rack1"};
    broker b[6];
    int32_t out[7 * 3];
    size_t n = brokers_of(b, racks, 6);
    assign(b, n, 6, 0, 1, 0, 0, out);
    expect_placement(out, (const int32_t[]){0, 3, 1, 5, 4, 2}, 6, 1);
    assign(b, n - 1, 5, 0, 1, 0, 0, out); /* without broker 5 */
    expect_placement(out, (const int32_t[]){0, 3, 1, 4, 2}, 5, 1);

    static const int32_t want[7 * 3] = {0, 3, 1, 3, 1, 5, 1, 5, 4, 5, 4,
                                        2, 4, 2, 0, 2, 0, 3, 0, 4, 2};
    assign(b, n, 7, 0, 3, 0, 0, out);
    expect_placement(out, want, 7, 3);
}

/* AdminRackAwareTest.testReplicaAssignment, which is also the table in AdminUtils' comment. */
static void test_kafka_replica_assignment(void)
{
    broker b[5];
    int32_t out[10 * 3];
    size_t n = brokers_of(b, NULL, 5);
    static const int32_t want[10 * 3] = {0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 0, 4, 0, 1,
                                         0, 2, 3, 1, 3, 4, 2, 4, 0, 3, 0, 1, 4, 1, 2};
    assign(b, n, 10, 0, 3, 0, 0, out); /* Kafka's fixedStartIndex 0, startPartitionId -1 */
    expect_placement(out, want, 10, 3);
    ASSERT_EQ(cluster_assign_replicas(b, n, 10, 0, 0, 0, 0, false, out), TD_EINVAL);
    ASSERT_EQ(cluster_assign_replicas(b, n, 10, 0, 6, 0, 0, false, out), TD_EINVAL);
}

/* AddPartitionsTest.testReplicaPlacementAllServers and testReplicaPlacementPartialServers:
 * four brokers without racks; CreatePartitions starts at the position of the first broker whose
 * id is at least partition 0's leader's (AdminZkClient.createNewPartitionsAssignment). Kafka
 * checks leaders and replica sets; these are its exact lists. */
static void test_kafka_add_partitions(void)
{
    broker b[4];
    int32_t out[6 * 4];
    size_t n = brokers_of(b, NULL, 4);
    /* new-topic3: partition 0 on 2,3,0,1, grown to 7. */
    static const int32_t all[6 * 4] = {3, 2, 0, 1, 0, 3, 1, 2, 1, 0, 2, 3,
                                       2, 3, 0, 1, 3, 0, 1, 2, 0, 1, 2, 3};
    assign(b, n, 6, 1, 4, 2, 2, out);
    expect_placement(out, all, 6, 4);
    /* new-topic2: partition 0 on 1,2, grown to 3: leaders 2 and 3, on {0,2} and {1,3}. */
    assign(b, n, 2, 1, 2, 1, 1, out);
    expect_placement(out, (const int32_t[]){2, 0, 3, 1}, 2, 2);
}

/* The AdminRackAwareTest cases with a fixed start that check only the distribution: Kafka's
 * checks, and the exact lists Kafka's AdminUtils returns for them. */
static void test_kafka_fixed_start_distribution(void)
{
    static const char *const racks[] = {"rack1", "rack2", "rack2", "rack3", "rack3", "rack1"};
    broker b[6];
    int32_t out[13 * 4];
    size_t n = brokers_of(b, racks, 6);

    /* testAssignmentWithRackAware: fixedStartIndex 2, startPartitionId 0. */
    static const int32_t even[6 * 3] = {3, 2, 0, 5, 4, 1, 2, 0, 3, 4, 1, 5, 0, 3, 2, 1, 5, 4};
    assign(b, n, 6, 0, 3, 2, 2, out);
    check_distribution(b, n, out, 6, 3, VERIFY_ALL);
    expect_placement(out, even, 6, 3);

    /* testAssignmentWithRackAwareWithUnevenReplicas: 13 partitions, fixedStartIndex 0. */
    static const int32_t uneven[13 * 3] = {0, 1, 3, 1, 3, 5, 3, 5, 2, 5, 2, 4, 2,
                                           4, 0, 4, 0, 1, 0, 2, 4, 1, 4, 0, 3, 0,
                                           1, 5, 1, 3, 2, 3, 5, 4, 5, 2, 0, 3, 2};
    assign(b, n, 13, 0, 3, 0, 0, out);
    check_distribution(b, n, out, 13, 3, VERIFY_RACKS);
    expect_placement(out, uneven, 13, 3);

    /* testSkipBrokerWithReplicaAlreadyAssigned: racks a, b, c, a, a; rf 4 over three racks;
     * fixedStartIndex 2, startPartitionId -1. */
    static const char *const abcaa[] = {"a", "b", "c", "a", "a"};
    static const int32_t skip[6 * 4] = {2, 0, 1, 3, 3, 1, 2, 4, 4, 2, 1, 3,
                                        0, 1, 2, 3, 1, 4, 2, 3, 2, 4, 1, 3};
    n = brokers_of(b, abcaa, 5);
    assign(b, n, 6, 0, 4, 2, 2, out);
    check_distribution(b, n, out, 6, 4, 0);
    expect_placement(out, skip, 6, 4);
}

/* Kafka's AdminUtils on cases its tests do not cover: ids neither dense nor in order, racks of
 * unequal sizes, more replicas than racks, a CreatePartitions start past a multiple of n. */
static void test_kafka_more_cases(void)
{
    static const broker zones[] = {{101, "us-east-1b"}, {7, "us-east-1a"},  {55, "us-east-1c"},
                                   {3, "us-east-1a"},   {12, "us-east-1b"}, {9, "us-east-1a"},
                                   {40, "us-east-1c"}};
    int32_t out[15 * 5];
    /* 9 partitions from 5, rf 3, fixedStartIndex 4 */
    static const int32_t grow[9 * 3] = {40, 7, 101, 7,  101, 55, 101, 40, 7, 55, 7, 101, 9, 101,
                                        55, 3, 101, 55, 12,  55, 9,   40, 9, 12, 7, 12,  40};
    assign(zones, 7, 9, 5, 3, 4, 4, out);
    expect_placement(out, grow, 9, 3);
    /* 8 partitions, rf 5 over three racks, fixedStartIndex 1 */
    static const int32_t five[8 * 5] = {
        12, 55, 9,   3, 40, 40, 9,   12, 7, 101, 7, 12,  40, 101, 55, 101, 40, 7, 55,  9,
        55, 7,  101, 9, 3,  9,  101, 55, 3, 12,  3, 101, 55, 9,   12, 12,  40, 7, 101, 55};
    assign(zones, 7, 8, 0, 5, 1, 1, out);
    expect_placement(out, five, 8, 5);
    /* No racks: 15 partitions from 4, rf 3, fixedStartIndex 3 */
    static const broker tens[] = {{70, NULL}, {10, NULL}, {30, ""},  {20, NULL},
                                  {50, NULL}, {40, ""},   {60, NULL}};
    static const int32_t plain[15 * 3] = {
        10, 50, 60, 20, 60, 70, 30, 70, 10, 40, 20, 30, 50, 30, 40, 60, 40, 50, 70, 50, 60, 10, 60,
        70, 20, 70, 10, 30, 10, 20, 40, 30, 50, 50, 40, 60, 60, 50, 70, 70, 60, 10, 10, 70, 20};
    assign(tens, 7, 15, 4, 3, 3, 3, out);
    expect_placement(out, plain, 15, 3);
}

/* The example in docs/clustering.md#placement. */
static void test_doc_example(void)
{
    static const broker abc[] = {{1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}, {5, "c"}, {6, "c"}};
    static const int32_t want[8 * 3] = {1, 3, 5, 3, 5, 2, 5, 2, 4, 2, 4, 6,
                                        4, 6, 1, 6, 1, 3, 1, 4, 6, 3, 6, 1};
    int32_t out[8 * 3];
    assign(abc, 6, 8, 0, 3, 0, 0, out);
    expect_placement(out, want, 8, 3);
    check_distribution(abc, 6, out, 6, 3, VERIFY_ALL);
}

/* The AdminRackAwareTest cases with a random start, each over many draws. */
static void test_kafka_random_start(void)
{
    static const char *const r122331[] = {"rack1", "rack2", "rack2", "rack3", "rack3", "rack1"};
    static const char *const r113331[] = {"rack1", "rack1", "rack2", "rack3", "rack3", "rack1"};
    static const char *const r122332[] = {"rack1", "rack2", "rack2", "rack3", "rack3", "rack2"};
    static const char *const r111111[] = {"rack1", "rack1", "rack1", "rack1", "rack1", "rack1"};
    static const char *const large[] = {"rack1", "rack2", "rack2", "rack3", "rack3", "rack1",
                                        "rack1", "rack2", "rack2", "rack3", "rack1", "rack3"};
    static const broker three[] = {{0, "rack1"}, {1, "rack2"}, {4, "rack3"}};
    static const broker expansion[] = {{6, "rack1"}, {7, "rack2"},  {8, "rack2"},
                                       {9, "rack3"}, {10, "rack3"}, {11, "rack1"}};
    broker b[12];
    int32_t out[96 * 5];
    for (int draw = 0; draw < 200; draw++) {
        size_t n = brokers_of(b, r122331, 6);
        /* testAssignmentWithRackAwareWithRandomStartIndex */
        assign(b, n, 6, 0, 3, -1, -1, out);
        check_distribution(b, n, out, 6, 3, VERIFY_ALL);
        /* testAssignmentWith2ReplicasRackAware, ...With6Partitions */
        assign(b, n, 12, 0, 2, -1, -1, out);
        check_distribution(b, n, out, 12, 2, VERIFY_ALL);
        assign(b, n, 6, 0, 2, -1, -1, out);
        check_distribution(b, n, out, 6, 2, VERIFY_ALL);
        /* testRackAwareExpansion: partitions 12 to 23 of a topic on brokers 6 to 11 */
        assign(expansion, 6, 12, 12, 2, -1, -1, out);
        check_distribution(expansion, 6, out, 12, 2, VERIFY_ALL);
        /* testAssignmentWith2ReplicasRackAwareWith6PartitionsAnd3Brokers */
        assign(three, 3, 3, 0, 2, -1, -1, out);
        check_distribution(three, 3, out, 3, 2, VERIFY_ALL);
        /* testAssignmentWithRackAwareWithUnevenRacks */
        n = brokers_of(b, r113331, 6);
        assign(b, n, 12, 0, 3, -1, -1, out);
        check_distribution(b, n, out, 12, 3, VERIFY_RACKS | VERIFY_LEADERS);
        /* testLargeNumberPartitionsAssignment */
        n = brokers_of(b, large, 12);
        assign(b, n, 96, 0, 3, -1, -1, out);
        check_distribution(b, n, out, 96, 3, VERIFY_ALL);
        /* testMoreReplicasThanRacks, testLessReplicasThanRacks: every partition on all three
         * racks with rf 5, on two with rf 2 */
        n = brokers_of(b, r122332, 6);
        assign(b, n, 6, 0, 5, -1, -1, out);
        check_distribution(b, n, out, 6, 5, 0);
        for (int32_t p = 0; p < 6; p++)
            ASSERT_EQ(racks_of_partition(b, n, out + p * 5, 5), 3);
        assign(b, n, 6, 0, 2, -1, -1, out);
        check_distribution(b, n, out, 6, 2, VERIFY_RACKS);
        /* testSingleRack: one rack per partition, one partition led by each broker */
        n = brokers_of(b, r111111, 6);
        assign(b, n, 6, 0, 3, -1, -1, out);
        check_distribution(b, n, out, 6, 3, VERIFY_LEADERS);
        for (int32_t p = 0; p < 6; p++)
            ASSERT_EQ(racks_of_partition(b, n, out + p * 3, 3), 1);
    }
}

static int32_t draw(unsigned *seed, int32_t lo, int32_t hi)
{
    return lo + (int32_t)(rand_r(seed) % (unsigned)(hi - lo + 1));
}

/* One random case: 1..12 brokers with random distinct ids given in random order, no racks or
 * 1..4 racks (sometimes of equal sizes), rf 1..min(n, 5), 1..60 partitions from a random first
 * (often a multiple of n), a drawn start or fixed random knobs. */
static void one_property_case(unsigned *seed)
{
    static const char *const names[] = {"r-a", "r-b", "r-c", "r-d"};
    broker b[MAXB];
    int32_t out[MAXP * MAXR], again[MAXP * MAXR];
    int32_t n = draw(seed, 1, 12), nracks = draw(seed, 0, 4) > 0 ? draw(seed, 1, n < 4 ? n : 4) : 0;
    bool equal_racks = nracks > 0 && n % nracks == 0 && draw(seed, 0, 1);
    for (int32_t i = 0; i < n; i++) {
        bool fresh;
        do { /* distinct ids */
            b[i].id = draw(seed, 0, 999);
            fresh = true;
            for (int32_t j = 0; j < i; j++)
                fresh &= b[j].id != b[i].id;
        } while (!fresh);
        /* every rack gets a broker: the first nracks do, in turn */
        b[i].rack = NULL;
        if (nracks)
            b[i].rack = names[equal_racks || i < nracks ? i % nracks : draw(seed, 0, nracks - 1)];
    }
    int16_t rf = (int16_t)draw(seed, 1, n < 5 ? n : 5);
    int32_t np = draw(seed, 1, 60),
            first = draw(seed, 0, 2) ? n * draw(seed, 0, 3) : draw(seed, 0, 50);
    bool fixed = draw(seed, 0, 1);
    int32_t start = fixed ? draw(seed, 0, 3 * n) : -1, shift = fixed ? draw(seed, 0, 3 * n) : -1;
    assign(b, (size_t)n, np, first, rf, start, shift, out);

    int leaders[MAXB] = {0}, replicas[MAXB] = {0};
    check_distribution(b, (size_t)n, out, np, rf, 0); /* rf distinct brokers of the list */
    for (int32_t p = 0; p < np; p++)
        for (int16_t r = 0; r < rf; r++)
            for (int32_t i = 0; i < n; i++)
                if (b[i].id == out[p * rf + r]) {
                    replicas[i]++;
                    leaders[i] += r == 0;
                }
    int lmin = np, lmax = 0;
    for (int32_t i = 0; i < n; i++) {
        lmin = leaders[i] < lmin ? leaders[i] : lmin;
        lmax = leaders[i] > lmax ? leaders[i] : lmax;
    }
    ASSERT_LE(lmax - lmin, 1); /* leaders go round the ring: always within one */
    if (np % n == 0)
        ASSERT_EQ(lmax, lmin);
    for (int32_t p = 0; p < np && nracks; p++) /* rf racks, or all of them */
        ASSERT_EQ(racks_of_partition(b, (size_t)n, out + p * rf, rf), rf < nracks ? rf : nracks);
    /* Whole rounds of the ring, from a multiple of n, on racks of one size: every broker holds
     * the same number of replicas (with racks, AdminUtils' "perfect situation", which holds past
     * rf == nracks too). */
    if ((nracks == 0 || equal_racks) && np % n == 0 && first % n == 0)
        for (int32_t i = 0; i < n; i++)
            ASSERT_EQ(replicas[i], np * rf / n);
    /* Fixed knobs: the same placement again, from the brokers in another order. */
    if (fixed) {
        broker shuffled[MAXB];
        memcpy(shuffled, b, (size_t)n * sizeof(*b));
        for (int32_t i = n - 1; i > 0; i--) {
            int32_t j = draw(seed, 0, i);
            broker t = shuffled[i];
            shuffled[i] = shuffled[j];
            shuffled[j] = t;
        }
        assign(shuffled, (size_t)n, np, first, rf, start, shift, again);
        expect_placement(again, out, np, rf);
    }
}

static void test_properties(void)
{
    unsigned seed = 12345; /* the sizes; a drawn start comes from td_random_id */
    for (int i = 0; i < 50000; i++)
        one_property_case(&seed);
}

/* A start past n wraps, as in Kafka; the two knobs are independent. */
static void test_knobs(void)
{
    broker b[5];
    int32_t out[10 * 3], wrapped[10 * 3];
    size_t n = brokers_of(b, NULL, 5);
    assign(b, n, 10, 0, 3, 1, 3, out);
    assign(b, n, 10, 0, 3, 6, 7, wrapped); /* 6 = 1 mod 5; 7 = 3 mod 4, the gaps' modulus */
    expect_placement(wrapped, out, 10, 3);
    ASSERT_EQ(out[0], 1);                           /* the start: partition 0's leader */
    ASSERT_EQ(out[1], (1 + 1 + 3) % 5);             /* the shift: the gap to the second, less one */
    ASSERT_EQ(out[5 * 3], 1);                       /* partition 5 */
    ASSERT_EQ(out[5 * 3 + 1], (1 + 1 + 4 % 4) % 5); /* past n: the shift is 4 */
}

/* ignore_racks places as if no broker had a rack; "" is no rack. */
static void test_ignore_racks(void)
{
    static const char *const mixed[] = {"rack1", "rack3", "rack3", "rack2", NULL};
    static const char *const empty[] = {"", NULL, "", NULL, ""};
    broker b[5], plain[5];
    int32_t out[10 * 3], want[10 * 3];
    size_t n = brokers_of(b, mixed, 5);
    brokers_of(plain, NULL, 5);
    assign(plain, n, 10, 0, 3, 2, 1, want);
    ASSERT_OK(cluster_assign_replicas(b, n, 10, 0, 3, 2, 1, true, out));
    expect_placement(out, want, 10, 3);
    b[4].rack = "rack1"; /* all racked: ignored still */
    ASSERT_OK(cluster_assign_replicas(b, n, 10, 0, 3, 2, 1, true, out));
    expect_placement(out, want, 10, 3);
    brokers_of(b, empty, 5);
    assign(b, n, 10, 0, 3, 2, 1, out);
    expect_placement(out, want, 10, 3);
}

/* AdminRackAwareTest.testAssignReplicasToBrokersWithInvalidParameters and the rest of the
 * refusals, with Kafka's messages where Kafka has one. */
static void test_errors(void)
{
    static const char *const mixed[] = {"rack1", "rack3", "rack3", "rack2", NULL};
    broker b[5];
    int32_t out[10 * 5];
    size_t n = brokers_of(b, mixed, 5);
    ASSERT_EQ(cluster_assign_replicas(b, n, 0, 0, 1, -1, -1, false, out), TD_EINVAL);
    ASSERT_STR_EQ(td_last_error(), "Number of partitions must be larger than 0.");
    ASSERT_EQ(cluster_assign_replicas(b, n, 10, 0, 0, -1, -1, false, out), TD_EINVAL);
    ASSERT_STR_EQ(td_last_error(), "Replication factor must be larger than 0.");
    ASSERT_EQ(cluster_assign_replicas(b, n, 10, 0, -3, -1, -1, false, out), TD_EINVAL);
    ASSERT_EQ(cluster_assign_replicas(b, n, 10, 0, 6, -1, -1, false, out), TD_EINVAL);
    ASSERT_STR_EQ(td_last_error(), "Replication factor: 6 larger than available brokers: 5.");
    ASSERT_EQ(cluster_assign_replicas(b, n, 10, 0, 5, -1, -1, false, out), TD_EINVAL);
    ASSERT_STR_EQ(td_last_error(),
                  "Not all brokers have rack information for replica rack aware assignment.");
    ASSERT_EQ(cluster_assign_replicas(b, 0, 10, 0, 1, -1, -1, false, out), TD_EINVAL);
    ASSERT_STR_EQ(td_last_error(), "Replication factor: 1 larger than available brokers: 0.");
    ASSERT_EQ(cluster_assign_replicas(NULL, 0, 10, 0, 1, -1, -1, true, out), TD_EINVAL);

    brokers_of(b, NULL, 5);
    b[3].id = 1;
    ASSERT_EQ(cluster_assign_replicas(b, n, 10, 0, 2, -1, -1, false, out), TD_EINVAL);
    ASSERT_CONTAINS(td_last_error(), "broker 1 is listed twice");
    b[3].id = 3;
    ASSERT_EQ(cluster_assign_replicas(b, n, 10, -1, 2, -1, -1, false, out), TD_EINVAL);
    ASSERT_EQ(cluster_assign_replicas(b, n, 10, INT32_MAX - 8, 2, -1, -1, false, out), TD_EINVAL);
    ASSERT_OK(cluster_assign_replicas(b, n, 10, INT32_MAX - 9, 2, -1, -1, false, out));
    ASSERT_EQ(cluster_assign_replicas(b, n, 10, 0, 2, -1, -1, false, NULL), TD_EINVAL);
}

TEST_MAIN(TEST(test_kafka_rack_alternated), TEST(test_kafka_replica_assignment),
          TEST(test_kafka_add_partitions), TEST(test_kafka_fixed_start_distribution),
          TEST(test_kafka_more_cases), TEST(test_doc_example), TEST(test_kafka_random_start),
          TEST(test_properties), TEST(test_knobs), TEST(test_ignore_racks), TEST(test_errors))
