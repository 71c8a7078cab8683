/*
 * catalog_quota.c: the rows of the quotas table, one per entity and key (docs/security.md#quotas).
 * An entity's levels are stored as (level, name) pairs, the name '' when the level is absent or
 * the default, so that the primary key has no NULL in it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/catalog_int.h"

static void bind_entity(sqlite3_stmt *st, const td_quota_entity *en)
{
    sqlite3_bind_int(st, 1, (int)en->user_level);
    sqlite3_bind_text(st, 2, en->user_level == TD_QUOTA_NAMED ? en->user : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)en->client_level);
    sqlite3_bind_text(st, 4, en->client_level == TD_QUOTA_NAMED ? en->client_id : "", -1,
                      SQLITE_STATIC);
}

int catalog_quota_set(td_catalog *c, const td_quota_info *q)
{
    int rc = catalog_exec(c, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db,
                           "DELETE FROM quotas WHERE user_level=? AND user=? AND client_level=? "
                           "AND client=?",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    bind_entity(st, &q->entity);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(c->db, "INSERT INTO quotas VALUES(?,?,?,?,?,?)", -1, &st, NULL) !=
        SQLITE_OK)
        goto fail;
    for (int k = 0; k < TD_QUOTA_KEYS; k++) {
        if (!(q->has & (1 << k)))
            continue;
        sqlite3_reset(st);
        bind_entity(st, &q->entity);
        sqlite3_bind_text(st, 5, td_quota_key_name(k), -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 6, q->values[k]);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = catalog_exec(c, "COMMIT")) == 0)
        return 0;
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
fail:
    rc = catalog_fail(c, "storing a quota");
    sqlite3_finalize(st);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static bool same_entity(const td_quota_entity *a, int ul, const char *u, int cl, const char *ci)
{
    return (int)a->user_level == ul && (int)a->client_level == cl && !strcmp(a->user, u) &&
           !strcmp(a->client_id, ci);
}

int catalog_quota_list(td_catalog *c, td_quota_info **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT user_level, user, client_level, client, key, value FROM quotas "
                           "ORDER BY user_level, user, client_level, client",
                           -1, &st, NULL) != SQLITE_OK)
        return catalog_fail(c, "listing quotas");
    td_quota_info *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int ul = sqlite3_column_int(st, 0), cl = sqlite3_column_int(st, 2);
        const char *u = (const char *)sqlite3_column_text(st, 1);
        const char *ci = (const char *)sqlite3_column_text(st, 3);
        int key = td_quota_key_parse((const char *)sqlite3_column_text(st, 4));
        /* A row this build cannot use (a newer key, a damaged level) is skipped. */
        if (!u || !ci || key < 0 || ul < TD_QUOTA_ABSENT || ul > TD_QUOTA_NAMED ||
            cl < TD_QUOTA_ABSENT || cl > TD_QUOTA_NAMED || strlen(u) > TD_USER_NAME_MAX ||
            strlen(ci) > TD_QUOTA_CLIENT_ID_MAX)
            continue;
        if (n == 0 || !same_entity(&v[n - 1].entity, ul, u, cl, ci)) {
            if (td_grow(&v, &cap, n, sizeof(*v), 16) != 0) {
                rc = -ENOMEM;
                goto out;
            }
            memset(&v[n], 0, sizeof(v[n]));
            v[n].entity.user_level = (td_quota_level)ul;
            v[n].entity.client_level = (td_quota_level)cl;
            snprintf(v[n].entity.user, sizeof(v[n].entity.user), "%s", u);
            snprintf(v[n].entity.client_id, sizeof(v[n].entity.client_id), "%s", ci);
            n++;
        }
        v[n - 1].has |= 1 << key;
        v[n - 1].values[key] = sqlite3_column_double(st, 5);
    }
    if (step != SQLITE_DONE)
        rc = catalog_fail(c, "listing quotas");
out:
    sqlite3_finalize(st);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return 0;
}
