/*
 * catalog_tokens.c: the catalog's API tokens (schema version 6, table `tokens`, described at
 * the top of catalog.c): one row per token with the SHA-256 of its secret, its owner, its
 * description, its creation time and its expiry (0: never). catalog_user_remove (catalog.c)
 * deletes a user's tokens in the user's transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/catalog_int.h"
#include "storage/storage.h"

static int db_fail(td_catalog *c, const char *what)
{
    int code = sqlite3_errcode(c->db) == SQLITE_FULL ? -ENOSPC : -EIO;
    return td_fail(code, "catalog: %s: %s", what, sqlite3_errmsg(c->db));
}

static int exec(td_catalog *c, const char *sql)
{
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(c, sql);
    return 0;
}

int catalog_token_add(td_catalog *c, const td_token_info *t,
                      const uint8_t hash[CATALOG_TOKEN_HASH_LEN])
{
    int rc = exec(c, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM users WHERE name=? LIMIT 1", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(c, "looking up a user");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, t->user, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (step == SQLITE_DONE) {
        rc = td_fail(TD_ENOTFOUND, "user '%s' does not exist", t->user);
        goto rollback;
    }
    if (step != SQLITE_ROW) {
        rc = db_fail(c, "looking up a user");
        goto rollback;
    }
    if (sqlite3_prepare_v2(c->db, "INSERT INTO tokens VALUES(?,?,?,?,?,?)", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(c, "storing a token");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->user, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, hash, CATALOG_TOKEN_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->description, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, t->created_ms);
    sqlite3_bind_int64(st, 6, t->expires_ms);
    step = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (step == SQLITE_CONSTRAINT) {
        rc = td_fail(TD_EEXIST, "token id %s is in use", t->id);
        goto rollback;
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(c, "storing a token");
        goto rollback;
    }
    if ((rc = exec(c, "COMMIT")))
        goto rollback;
    return 0;
rollback:
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* A row of SELECT id, user, description, created_ms, expires_ms into *t. */
static void token_row(sqlite3_stmt *st, td_token_info *t)
{
    memset(t, 0, sizeof(*t));
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *user = (const char *)sqlite3_column_text(st, 1);
    const char *d = (const char *)sqlite3_column_text(st, 2);
    snprintf(t->id, sizeof(t->id), "%s", id ? id : "");
    snprintf(t->user, sizeof(t->user), "%s", user ? user : "");
    snprintf(t->description, sizeof(t->description), "%s", d ? d : "");
    t->created_ms = sqlite3_column_int64(st, 3);
    t->expires_ms = sqlite3_column_int64(st, 4);
}

int catalog_token_get(td_catalog *c, const char *id, td_token_info *t,
                      uint8_t hash[CATALOG_TOKEN_HASH_LEN])
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT id, user, description, created_ms, expires_ms, hash FROM "
                           "tokens WHERE id=?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, "reading a token");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = 0, step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = td_fail(TD_ENOTFOUND, "no such token");
    } else if (step != SQLITE_ROW) {
        rc = db_fail(c, "reading a token");
    } else {
        td_slice h = td_slice_make(sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st, 5));
        if (h.n != CATALOG_TOKEN_HASH_LEN) {
            rc = td_fail(TD_ECORRUPT, "catalog: token %s: malformed hash", id);
        } else {
            token_row(st, t);
            memcpy(hash, h.p, h.n);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int catalog_token_list(td_catalog *c, const char *user, td_token_info **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st;
    const char *sql = user ? "SELECT id, user, description, created_ms, expires_ms FROM tokens "
                             "WHERE user=? ORDER BY user, created_ms, id"
                           : "SELECT id, user, description, created_ms, expires_ms FROM tokens "
                             "ORDER BY user, created_ms, id";
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, "listing tokens");
    if (user)
        sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    td_token_info *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (td_grow(&v, &cap, n, sizeof(*v), 16) != 0) {
            rc = -ENOMEM;
            break;
        }
        token_row(st, &v[n++]);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(c, "listing tokens");
    sqlite3_finalize(st);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return 0;
}

int catalog_token_remove(td_catalog *c, const char *id, const char *user)
{
    sqlite3_stmt *st;
    const char *sql =
        user ? "DELETE FROM tokens WHERE id=? AND user=?" : "DELETE FROM tokens WHERE id=?";
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, "revoking a token");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (user)
        sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return db_fail(c, "revoking a token");
    if (sqlite3_changes(c->db) == 0)
        return td_fail(TD_ENOTFOUND, "no such token");
    return 0;
}
