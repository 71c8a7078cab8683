/*
 * placement.c: replica placement (placement.h), the rule of Kafka's
 * AdminUtils.assignReplicasToBrokers (rack-unaware, and rack-aware after KIP-36) written again
 * in C; docs/clustering.md#placement says it in prose.
 *
 * Without racks the brokers, sorted by id, form a ring of n. Partition p's leader is the broker
 * at (p + start) mod n, so leaders go round the ring; its j-th follower is 1 + (shift + j) mod
 * (n - 1) places further on, which never comes back to the leader. The shift grows by one each
 * time the partition number reaches a multiple of n, so that the partitions one broker leads do
 * not all have the same followers.
 *
 * With racks the ring is the rack-alternated list instead: the racks sorted by name, the first
 * broker (by id) of each, then the second of each, and so on, so that neighbours on the ring
 * are on different racks while every rack has brokers left. Leaders go round it as before. A
 * follower is looked for from the leader by the same steps (the shift scaled by the number of
 * racks), passing over a broker whose rack already holds a replica of the partition while some
 * rack holds none, and a broker that already holds one; each search goes on from where the last
 * one stopped. With at least as many racks as replicas, every replica is on its own rack.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cluster/placement.h"
#include "tidings.h"

/* A broker on the ring: its id, its rack's name and number (racks numbered in name order). */
typedef struct slot {
    int32_t id;
    int32_t rack;
    const char *name;
} slot;

static bool has_rack(const cluster_placement_broker *b)
{
    return b->rack && b->rack[0];
}

static int by_id(const void *a, const void *b)
{
    int32_t x = ((const slot *)a)->id, y = ((const slot *)b)->id;
    return (x > y) - (x < y);
}

/* Racks by name, bytewise (Kafka sorts Java strings: the same order short of characters past
 * U+FFFF), and a rack's brokers by id. */
static int by_rack_then_id(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : by_id(a, b);
}

/* Kafka's replicaIndex: the ring position step + 1 places after first, step taken mod n - 1
 * (n >= 2: a ring of one has no followers). */
static int64_t follower_at(int64_t first, int64_t step, int64_t n)
{
    return (first + 1 + step % (n - 1)) % n;
}

/* The knob's value, or for a negative one a draw in [0, n) (Kafka's RAND.nextInt(n)). */
static int64_t knob(int32_t v, size_t n)
{
    if (v >= 0)
        return v;
    uint64_t r;
    td_random_id((uint8_t *)&r, sizeof(r));
    return (int64_t)(r % n);
}

static int check_args(const cluster_placement_broker *brokers, size_t nbrokers, int32_t nparts,
                      int32_t first_partition, int16_t rf, const int32_t *out)
{
    /* The first three messages are Kafka's, word for word. */
    if (nparts < 1)
        return td_fail(TD_EINVAL, "Number of partitions must be larger than 0.");
    if (rf < 1)
        return td_fail(TD_EINVAL, "Replication factor must be larger than 0.");
    if ((size_t)rf > nbrokers)
        return td_fail(TD_EINVAL, "Replication factor: %d larger than available brokers: %zu.", rf,
                       nbrokers);
    if (first_partition < 0 || nparts - 1 > INT32_MAX - first_partition)
        return td_fail(TD_EINVAL, "partitions %d to %lld are out of range", first_partition,
                       (long long)first_partition + nparts - 1);
    if (nbrokers > INT32_MAX)
        return td_fail(TD_EINVAL, "%zu brokers are too many to place replicas on", nbrokers);
    if (!brokers || !out)
        return td_fail(TD_EINVAL, "no broker list or no output for the placement");
    return 0;
}

/* Numbers the racks and makes s[0..n) the rack-alternated ring, built in ring[0..n); rack_first
 * receives where each rack begins in s sorted by rack. Returns the number of racks. */
static int32_t alternate_racks(slot *s, int32_t n, int32_t *rack_first, slot *ring)
{
    qsort(s, (size_t)n, sizeof(*s), by_rack_then_id);
    int32_t nracks = 0, largest = 0;
    for (int32_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(s[i].name, s[i - 1].name) != 0)
            rack_first[nracks++] = i;
        s[i].rack = nracks - 1;
    }
    for (int32_t r = 0; r < nracks; r++) {
        int32_t end = r + 1 < nracks ? rack_first[r + 1] : n;
        if (end - rack_first[r] > largest)
            largest = end - rack_first[r];
    }
    int32_t len = 0;
    for (int32_t round = 0; round < largest; round++)
        for (int32_t r = 0; r < nracks; r++) {
            int32_t end = r + 1 < nracks ? rack_first[r + 1] : n;
            if (rack_first[r] + round < end)
                ring[len++] = s[rack_first[r] + round];
        }
    memcpy(s, ring, (size_t)n * sizeof(*s));
    return nracks;
}

static void place_unaware(const slot *ring, int64_t n, int32_t nparts, int64_t part, int16_t rf,
                          int64_t start, int64_t shift, int32_t *out)
{
    for (int32_t i = 0; i < nparts; i++, part++) {
        if (part > 0 && part % n == 0)
            shift++;
        int64_t first = (part + start) % n;
        int32_t *o = out + (size_t)i * (size_t)rf;
        o[0] = ring[first].id;
        for (int16_t j = 1; j < rf; j++)
            o[j] = ring[follower_at(first, shift + j - 1, n)].id;
    }
}

/* broker_mark[0..n) and rack_mark[0..nracks) are zeroed scratch: a position or rack holds a
 * replica of the partition being placed when its mark is that partition's. */
static void place_aware(const slot *ring, int64_t n, int64_t nracks, int32_t nparts, int64_t part,
                        int16_t rf, int64_t start, int64_t shift, uint32_t *broker_mark,
                        uint32_t *rack_mark, int32_t *out)
{
    for (int32_t i = 0; i < nparts; i++, part++) {
        if (part > 0 && part % n == 0)
            shift++;
        int64_t first = (part + start) % n;
        int32_t *o = out + (size_t)i * (size_t)rf;
        uint32_t mark = (uint32_t)i + 1;
        o[0] = ring[first].id;
        broker_mark[first] = mark;
        rack_mark[ring[first].rack] = mark;
        if (rf == 1)
            continue;
        /* Kafka steps by shift * nracks + k; taken mod n - 1 first, it cannot overflow. */
        int64_t base = (shift % (n - 1)) * (nracks % (n - 1)) % (n - 1), k = 0;
        int64_t racks_used = 1;
        for (int16_t j = 1; j < rf; j++) {
            /* Ends within n - 1 steps, which visit every other broker: fewer than rf <= n
             * brokers hold a replica, and while a rack holds none, its brokers are free. (Kafka
             * also takes a broker that holds one when all do, which rf <= n never needs.) */
            for (;; k++) {
                int64_t at = follower_at(first, base + k, n);
                int32_t r = ring[at].rack;
                if (broker_mark[at] == mark || (rack_mark[r] == mark && racks_used < nracks))
                    continue;
                o[j] = ring[at].id;
                broker_mark[at] = mark;
                racks_used += rack_mark[r] != mark;
                rack_mark[r] = mark;
                k++;
                break;
            }
        }
    }
}

int cluster_assign_replicas(const cluster_placement_broker *brokers, size_t nbrokers,
                            int32_t nparts, int32_t first_partition, int16_t rf,
                            int32_t start_index, int32_t start_shift, bool ignore_racks,
                            int32_t *out)
{
    int rc = check_args(brokers, nbrokers, nparts, first_partition, rf, out);
    if (rc)
        return rc;
    int32_t n = (int32_t)nbrokers, with_rack = 0;
    for (int32_t i = 0; i < n; i++)
        with_rack += has_rack(&brokers[i]);
    bool aware = with_rack > 0 && !ignore_racks;
    if (aware && with_rack < n)
        return td_fail(TD_EINVAL, "Not all brokers have rack information for replica rack aware "
                                  "assignment.");

    /* The brokers and a second ring to build into; where each rack begins; the two marks. */
    slot *s = calloc(2 * nbrokers, sizeof(*s));
    int32_t *rack_first = calloc(nbrokers, sizeof(*rack_first));
    uint32_t *marks = calloc(2 * nbrokers, sizeof(*marks));
    if (!s || !rack_first || !marks) {
        rc = -ENOMEM;
        goto done;
    }
    for (int32_t i = 0; i < n; i++)
        s[i] = (slot){.id = brokers[i].id, .name = aware ? brokers[i].rack : ""};
    qsort(s, nbrokers, sizeof(*s), by_id);
    for (int32_t i = 1; i < n; i++)
        if (s[i].id == s[i - 1].id) {
            rc = td_fail(TD_EINVAL, "broker %d is listed twice", s[i].id);
            goto done;
        }

    /* Kafka draws the start before the shift; both are taken mod n where they are used. */
    int64_t start = knob(start_index, nbrokers), shift = knob(start_shift, nbrokers);
    if (aware) {
        int32_t nracks = alternate_racks(s, n, rack_first, s + n);
        place_aware(s, n, nracks, nparts, first_partition, rf, start, shift, marks, marks + n, out);
    } else {
        place_unaware(s, n, nparts, first_partition, rf, start, shift, out);
    }
done:
    free(s);
    free(rack_first);
    free(marks);
    return rc;
}
