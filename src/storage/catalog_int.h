/*
 * catalog_int.h: what the catalog's files share (catalog.c: the schema and most tables;
 * catalog_tokens.c: API tokens; catalog_quota.c: client quotas). The catalog is one SQLite
 * connection; its callers serialize their calls (the engine's admin_mu).
 */
#ifndef TD_STORAGE_CATALOG_INT_H
#define TD_STORAGE_CATALOG_INT_H

#include <sqlite3.h>

#include "storage/storage.h"

struct td_catalog {
    sqlite3 *db;
};

/* td_fail with the database's message ("catalog: <what>: <message>"): -ENOSPC when the disk is
 * full, -EIO otherwise. */
int catalog_fail(td_catalog *c, const char *what);
/* Runs SQL without results: 0 or catalog_fail's codes. */
int catalog_exec(td_catalog *c, const char *sql);

#endif /* TD_STORAGE_CATALOG_INT_H */
