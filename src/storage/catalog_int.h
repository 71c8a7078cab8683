/*
 * catalog_int.h: what the catalog's files share (catalog.c: the schema and most tables;
 * catalog_tokens.c: API tokens). The catalog is one SQLite connection; its callers serialize
 * their calls (the engine's admin_mu).
 */
#ifndef TD_STORAGE_CATALOG_INT_H
#define TD_STORAGE_CATALOG_INT_H

#include <sqlite3.h>

struct td_catalog {
    sqlite3 *db;
};

#endif /* TD_STORAGE_CATALOG_INT_H */
