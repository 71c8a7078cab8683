/*
 * placement.h: where a topic's replicas go (docs/clustering.md#placement), as Kafka's
 * AdminUtils.assignReplicasToBrokers places them, so that an operator who knows Kafka's
 * placement finds the same one here. A pure function of its arguments, apart from the random
 * start it draws when asked to.
 */
#ifndef TD_CLUSTER_PLACEMENT_H
#define TD_CLUSTER_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A live broker as placement sees it. */
typedef struct cluster_placement_broker {
    int32_t id;
    const char *rack; /* NULL or "": none */
} cluster_placement_broker;

/*
 * Assigns nparts partitions (numbered from first_partition, for CreatePartitions adding to a
 * topic) of replication factor rf over the brokers: out[p * rf + r] is replica r of partition
 * first_partition + p (r == 0: the preferred leader).
 *
 * The brokers may come in any order (they are taken sorted by id, as Kafka's callers sort
 * them); an id listed twice is TD_EINVAL. start_index is Kafka's startIndex, partition 0's
 * leader's position on the ring (the brokers sorted by id, or with racks the rack-alternated
 * list), and start_shift its first nextReplicaShift (without racks, the gap from a leader to its
 * second replica, less one). Kafka's fixedStartIndex sets both to one value, or when negative
 * draws both at random; here a negative knob is drawn at random in [0, nbrokers), each on its
 * own. Tests pass fixed values; CreatePartitions passes for both, as Kafka, the position among
 * the brokers sorted by id of the first whose id is at least partition 0's leader's.
 *
 * Rack-aware (KIP-36) when every broker has a rack; when only some do, TD_EINVAL (Kafka's "Not
 * all brokers have rack information") unless ignore_racks, which places as if no broker had
 * one (Kafka's --disable-rack-aware). TD_EINVAL with td_last_error() for nparts < 1, rf < 1,
 * rf > nbrokers (Kafka's INVALID_REPLICATION_FACTOR message; no brokers is that case), a
 * negative first_partition or one that the partitions would carry past INT32_MAX; -ENOMEM.
 * Allocates O(nbrokers) for the call.
 */
int cluster_assign_replicas(const cluster_placement_broker *brokers, size_t nbrokers,
                            int32_t nparts, int32_t first_partition, int16_t rf,
                            int32_t start_index, int32_t start_shift, bool ignore_racks,
                            int32_t *out);

#endif
