/*
 * registry_int.h: what the registry (registry*.c) offers the broker's other files, chiefly the
 * enforcement of schemas on produce (registry_check.c): parsed schemas by ID and by subject,
 * without copying them.
 */
#ifndef TD_BROKER_REGISTRY_INT_H
#define TD_BROKER_REGISTRY_INT_H

#include "broker/registry.h"
#include "schema/schema.h"

/* The parsed schema of an ID, with a reference that keeps it alive (*ref, released with
 * registry_put), or NULL when no version (deleted or not) holds the ID. Cheap: a read lock
 * and a hash lookup, so that it can run once per produced record. */
const schema *registry_get_schema(td_engine *e, int32_t id, void **ref);
/* The pool that validates the records of large batches beside their producer's thread
 * (td_options.schema_validation_threads); NULL when there is none. */
td_pool *registry_pool(td_engine *e);
void registry_put(void *ref);
/* Whether a version of subject that is not deleted holds id. */
bool registry_subject_has_id(td_engine *e, const char *subject, int32_t id);
/* The latest version of subject that is not deleted (*id its ID), with a reference, or NULL. */
const schema *registry_latest_schema(td_engine *e, const char *subject, int32_t *id, void **ref);

#endif /* TD_BROKER_REGISTRY_INT_H */
