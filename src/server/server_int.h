/*
 * server_int.h: what the files of src/server/ share.
 */
#ifndef TD_SERVER_INT_H
#define TD_SERVER_INT_H

#include "cluster/cluster.h"

struct td_engine;

/* cluster_events.c: the cluster observer (cluster_set_observer) of a broker whose engine is
 * arg: tells what changed between two views as health events on $sys.cluster. */
void server_cluster_observe(void *arg, const td_cluster_view *before, const td_cluster_view *after);

#endif /* TD_SERVER_INT_H */
