/*
 * catalog.c: the topic catalog in SQLite (WAL mode, synchronous=FULL), in the data directory
 * as catalog.db.
 *
 * Schema (version 8, in PRAGMA user_version):
 *   topics(name TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE, partitions INTEGER NOT NULL,
 *          created_ms INTEGER NOT NULL, config TEXT NOT NULL)
 *   meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)   -- 'next_topic_id',
 *                                   'next_producer_id' (added when first needed)
 *   offsets(grp TEXT, topic TEXT, partition INTEGER, offset INTEGER NOT NULL,
 *           leader_epoch INTEGER NOT NULL, metadata TEXT, commit_ms INTEGER NOT NULL,
 *           PRIMARY KEY(grp, topic, partition))        -- version 2: committed offsets
 *   queues(name TEXT PRIMARY KEY, topic TEXT NOT NULL, policy TEXT NOT NULL,
 *          created_ms INTEGER NOT NULL)                -- version 3: queue groups
 *   queue_parts(grp TEXT, topic TEXT, partition INTEGER, topic_id INTEGER NOT NULL,
 *          floor INTEGER NOT NULL, next INTEGER NOT NULL, pending BLOB NOT NULL,
 *          PRIMARY KEY(grp, topic, partition))         -- a queue group's state per partition;
 *          both read once and emptied when migrated to __queue_state (broker/queue_migrate.c)
 *   xgroups(topic_id INTEGER, partition INTEGER, name BLOB, last_ms INTEGER NOT NULL,
 *          last_seq INTEGER NOT NULL, created_ms INTEGER NOT NULL, policy TEXT NOT NULL,
 *          PRIMARY KEY(topic_id, partition, name))     -- version 4: Redis consumer groups
 *                                   (xgroups, xconsumers, xpending: read only to be migrated
 *                                   to the state topic __xgroup_state, then emptied)
 *   xconsumers(topic_id, partition, grp BLOB, name BLOB, seen_ms INTEGER NOT NULL,
 *          PRIMARY KEY(topic_id, partition, grp, name))
 *   xpending(topic_id, partition, grp BLOB, id_ms INTEGER, id_seq INTEGER, consumer BLOB NOT
 *          NULL, delivery_ms INTEGER NOT NULL, deliveries INTEGER NOT NULL,
 *          PRIMARY KEY(topic_id, partition, grp, id_ms, id_seq)) WITHOUT ROWID
 *                                                      -- their pending entries
 *   xdeleted(topic_id, partition, offset INTEGER, id_ms INTEGER NOT NULL, id_seq INTEGER NOT
 *          NULL, PRIMARY KEY(topic_id, partition, offset)) WITHOUT ROWID
 *                                   -- entries XDEL removed; offset -1: the largest ID removed
 *   users(name TEXT, mechanism TEXT, salt BLOB NOT NULL, iterations INTEGER NOT NULL,
 *          stored_key BLOB NOT NULL, server_key BLOB NOT NULL, PRIMARY KEY(name, mechanism))
 *                                   -- version 5: SCRAM credentials, one row per user and
 *                                   mechanism ('SCRAM-SHA-256', 'SCRAM-SHA-512'); a user is
 *                                   its rows (never a password: docs/security.md#users)
 *   tokens(id TEXT PRIMARY KEY, user TEXT NOT NULL, hash BLOB NOT NULL, description TEXT NOT
 *          NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL)
 *                                   -- version 6: API tokens (docs/security.md#api-tokens):
 *                                   hash is the SHA-256 of the secret; expires_ms 0 is never;
 *                                   removing a user removes its rows
 *   acls(principal TEXT, host TEXT, resource_type INTEGER, pattern_type INTEGER, name TEXT,
 *          operation INTEGER, permission INTEGER, PRIMARY KEY(all seven)) WITHOUT ROWID
 *                                   -- version 7: ACLs, Kafka's codes (include/tidings.h)
 *   quotas(user_level INTEGER, user TEXT, client_level INTEGER, client TEXT, key TEXT,
 *          value REAL, PRIMARY KEY(user_level, user, client_level, client, key))
 *                                   -- version 8: client quotas (docs/security.md#quotas)
 * Older catalogs are upgraded in place (the tables are added).
 * `config` holds "key=value\n" lines for every key of td_topic_config_keys(), so that keys
 * added later read back with their defaults. Topic ids are never reused: a deleted topic's
 * directory generation cannot be confused with a new topic of the same name.
 *
 * The record path never touches this file; it is written only by topic administration.
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/scram.h"
#include "storage/catalog_int.h"
#include "storage/storage.h"

#define SCHEMA_VERSION 8

/* Our code for the connection's last error: -ENOSPC for a full disk (SQLITE_FULL), which
 * callers that free space answer by releasing the disk reserve; -EIO for anything else. */
static int db_code(td_catalog *c)
{
    return sqlite3_errcode(c->db) == SQLITE_FULL ? -ENOSPC : -EIO;
}

static int db_fail(td_catalog *c, const char *what)
{
    return td_fail(db_code(c), "catalog: %s: %s", what, sqlite3_errmsg(c->db));
}

static int exec(td_catalog *c, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        int rc = td_fail(db_code(c), "catalog: %s: %s", sql, err ? err : "error");
        sqlite3_free(err);
        return rc;
    }
    return 0;
}

int catalog_open(const char *path, td_catalog **out)
{
    td_catalog *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    int rc = 0;
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = td_fail(-EIO, "cannot open catalog %s: %s", path,
                     c->db ? sqlite3_errmsg(c->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 5000);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(c, "reading the schema version");
        goto fail;
    }
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (version > SCHEMA_VERSION) {
        rc = td_fail(TD_EFORMAT,
                     "catalog %s has schema version %d; this tidings knows up to %d (newer "
                     "tidings wrote it)",
                     path, version, SCHEMA_VERSION);
        goto fail;
    }
    if ((rc = exec(c, "PRAGMA journal_mode=WAL")) || (rc = exec(c, "PRAGMA synchronous=FULL")))
        goto fail;
    if (version == 0) {
        rc = exec(c, "BEGIN;"
                     "CREATE TABLE IF NOT EXISTS topics(name TEXT PRIMARY KEY, id INTEGER NOT "
                     "NULL UNIQUE, partitions INTEGER NOT NULL, created_ms INTEGER NOT NULL, "
                     "config TEXT NOT NULL);"
                     "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT "
                     "NULL);"
                     "INSERT OR IGNORE INTO meta VALUES('next_topic_id', 1);"
                     "PRAGMA user_version=1;"
                     "COMMIT;");
        if (rc)
            goto fail;
        version = 1;
    }
    if (version == 1) {
        rc = exec(c, "BEGIN;"
                     "CREATE TABLE IF NOT EXISTS offsets(grp TEXT NOT NULL, topic TEXT NOT NULL, "
                     "partition INTEGER NOT NULL, offset INTEGER NOT NULL, leader_epoch INTEGER "
                     "NOT NULL, metadata TEXT, commit_ms INTEGER NOT NULL, "
                     "PRIMARY KEY(grp, topic, partition));"
                     "CREATE INDEX IF NOT EXISTS offsets_by_topic ON offsets(topic);"
                     "PRAGMA user_version=2;"
                     "COMMIT;");
        if (rc)
            goto fail;
    }
    if (version <= 2) {
        rc = exec(c, "BEGIN;"
                     "CREATE TABLE IF NOT EXISTS queues(name TEXT PRIMARY KEY, topic TEXT NOT "
                     "NULL, policy TEXT NOT NULL, created_ms INTEGER NOT NULL);"
                     "CREATE TABLE IF NOT EXISTS queue_parts(grp TEXT NOT NULL, topic TEXT NOT "
                     "NULL, partition INTEGER NOT NULL, topic_id INTEGER NOT NULL, floor INTEGER "
                     "NOT NULL, next INTEGER NOT NULL, pending BLOB NOT NULL, "
                     "PRIMARY KEY(grp, topic, partition));"
                     "PRAGMA user_version=3;"
                     "COMMIT;");
        if (rc)
            goto fail;
    }
    if (version <= 3) {
        rc = exec(c, "BEGIN;"
                     "CREATE TABLE IF NOT EXISTS xgroups(topic_id INTEGER NOT NULL, partition "
                     "INTEGER NOT NULL, name BLOB NOT NULL, last_ms INTEGER NOT NULL, last_seq "
                     "INTEGER NOT NULL, created_ms INTEGER NOT NULL, policy TEXT NOT NULL, "
                     "PRIMARY KEY(topic_id, partition, name));"
                     "CREATE TABLE IF NOT EXISTS xconsumers(topic_id INTEGER NOT NULL, partition "
                     "INTEGER NOT NULL, grp BLOB NOT NULL, name BLOB NOT NULL, seen_ms INTEGER "
                     "NOT NULL, PRIMARY KEY(topic_id, partition, grp, name));"
                     "CREATE TABLE IF NOT EXISTS xpending(topic_id INTEGER NOT NULL, partition "
                     "INTEGER NOT NULL, grp BLOB NOT NULL, id_ms INTEGER NOT NULL, id_seq "
                     "INTEGER NOT NULL, consumer BLOB NOT NULL, delivery_ms INTEGER NOT NULL, "
                     "deliveries INTEGER NOT NULL, PRIMARY KEY(topic_id, partition, grp, id_ms, "
                     "id_seq)) WITHOUT ROWID;"
                     "CREATE TABLE IF NOT EXISTS xdeleted(topic_id INTEGER NOT NULL, partition "
                     "INTEGER NOT NULL, offset INTEGER NOT NULL, id_ms INTEGER NOT NULL, id_seq "
                     "INTEGER NOT NULL, PRIMARY KEY(topic_id, partition, offset)) WITHOUT ROWID;"
                     "PRAGMA user_version=4;"
                     "COMMIT;");
        if (rc)
            goto fail;
    }
    if (version <= 4) {
        rc = exec(c, "BEGIN;"
                     "CREATE TABLE IF NOT EXISTS users(name TEXT NOT NULL, mechanism TEXT NOT "
                     "NULL, salt BLOB NOT NULL, iterations INTEGER NOT NULL, stored_key BLOB NOT "
                     "NULL, server_key BLOB NOT NULL, PRIMARY KEY(name, mechanism));"
                     "PRAGMA user_version=5;"
                     "COMMIT;");
        if (rc)
            goto fail;
    }
    if (version <= 5) {
        rc = exec(c, "BEGIN;"
                     "CREATE TABLE IF NOT EXISTS tokens(id TEXT PRIMARY KEY, user TEXT NOT NULL, "
                     "hash BLOB NOT NULL, description TEXT NOT NULL, created_ms INTEGER NOT "
                     "NULL, expires_ms INTEGER NOT NULL);"
                     "CREATE INDEX IF NOT EXISTS tokens_by_user ON tokens(user);"
                     "PRAGMA user_version=6;"
                     "COMMIT;");
        if (rc)
            goto fail;
    }
    if (version <= 6) {
        rc = exec(c, "BEGIN;"
                     "CREATE TABLE IF NOT EXISTS acls(principal TEXT NOT NULL, host TEXT NOT NULL, "
                     "resource_type INTEGER NOT NULL, pattern_type INTEGER NOT NULL, name TEXT "
                     "NOT NULL, operation INTEGER NOT NULL, permission INTEGER NOT NULL, "
                     "PRIMARY KEY(principal, host, resource_type, pattern_type, name, operation, "
                     "permission)) WITHOUT ROWID;"
                     "PRAGMA user_version=7;"
                     "COMMIT;");
        if (rc)
            goto fail;
    }
    if (version <= 7) {
        rc = exec(c, "BEGIN;"
                     "CREATE TABLE IF NOT EXISTS quotas(user_level INTEGER NOT NULL, user TEXT "
                     "NOT NULL, client_level INTEGER NOT NULL, client TEXT NOT NULL, key TEXT NOT "
                     "NULL, value REAL NOT NULL, PRIMARY KEY(user_level, user, client_level, "
                     "client, key));"
                     "PRAGMA user_version=8;"
                     "COMMIT;");
        if (rc)
            goto fail;
    }
    /* Offsets of topics that are gone (a crash between the two steps of an old delete), and
     * state of queue groups that are gone. */
    if ((rc = exec(c, "DELETE FROM offsets WHERE topic NOT IN (SELECT name FROM topics)")) ||
        (rc = exec(c, "DELETE FROM queue_parts WHERE grp NOT IN (SELECT name FROM queues)")) ||
        (rc = exec(c, "DELETE FROM xgroups WHERE topic_id NOT IN (SELECT id FROM topics)")) ||
        (rc = exec(c, "DELETE FROM xconsumers WHERE topic_id NOT IN (SELECT id FROM topics)")) ||
        (rc = exec(c, "DELETE FROM xpending WHERE topic_id NOT IN (SELECT id FROM topics)")) ||
        (rc = exec(c, "DELETE FROM xdeleted WHERE topic_id NOT IN (SELECT id FROM topics)")))
        goto fail;
    *out = c;
    return 0;
fail:
    catalog_close(c);
    return rc;
}

void catalog_close(td_catalog *c)
{
    if (!c)
        return;
    sqlite3_close(c->db);
    free(c);
}

/* Formats every configuration key as "k=v\n" lines. */
static int config_format(const td_topic_config *cfg, td_buf *b)
{
    for (const char *const *k = td_topic_config_keys(); *k; k++) {
        char v[TD_TOPIC_CONFIG_VALUE_MAX];
        int rc = td_topic_config_get(cfg, *k, v, sizeof(v));
        if (rc)
            return rc;
        if ((rc = td_buf_append(b, *k, strlen(*k))) || (rc = td_buf_append(b, "=", 1)) ||
            (rc = td_buf_append(b, v, strlen(v))) || (rc = td_buf_append(b, "\n", 1)))
            return rc;
    }
    return td_buf_append(b, "", 1); /* NUL */
}

/* Parses "k=v\n" lines over the defaults; unknown keys (from a newer build) are skipped. */
static void config_parse(const char *text, td_topic_config *cfg)
{
    td_topic_config_init(cfg);
    char *copy = strdup(text ? text : "");
    if (!copy)
        return;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        td_config_entry e = {line, eq + 1};
        if (td_topic_config_apply(cfg, &e, 1) != 0)
            TD_WARN("catalog", "ignoring stored topic setting %s=%s: %s", line, eq + 1,
                    td_last_error());
    }
    free(copy);
}

int catalog_topic_add(td_catalog *c, td_catalog_topic *t)
{
    td_buf cfg;
    td_buf_init(&cfg);
    int rc = config_format(&t->config, &cfg);
    if (rc)
        goto out;
    if ((rc = exec(c, "BEGIN IMMEDIATE")))
        goto out;
    sqlite3_stmt *st = NULL;
    int64_t id = 0;
    if (sqlite3_prepare_v2(c->db, "SELECT value FROM meta WHERE key='next_topic_id'", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(c, "allocating a topic id");
        sqlite3_finalize(st);
        goto rollback;
    }
    id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(c->db, "INSERT INTO topics VALUES(?,?,?,?,?)", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(c, "adding a topic");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int(st, 3, t->partitions);
    sqlite3_bind_int64(st, 4, t->created_ms);
    sqlite3_bind_text(st, 5, (const char *)cfg.p, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s == SQLITE_CONSTRAINT) {
        rc = td_fail(TD_EEXIST, "topic '%s' already exists", t->name);
        goto rollback;
    }
    if (s != SQLITE_DONE) {
        rc = db_fail(c, "adding a topic");
        goto rollback;
    }
    if ((rc = exec(c, "UPDATE meta SET value=value+1 WHERE key='next_topic_id'")) ||
        (rc = exec(c, "COMMIT")))
        goto rollback;
    t->id = id;
    goto out;
rollback:
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
out:
    td_buf_free(&cfg);
    return rc;
}

int catalog_topic_update(td_catalog *c, const td_catalog_topic *t)
{
    td_buf cfg;
    td_buf_init(&cfg);
    int rc = config_format(&t->config, &cfg);
    if (rc)
        goto out;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "UPDATE topics SET partitions=?, config=? WHERE name=?", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = db_fail(c, "updating a topic");
        goto out;
    }
    sqlite3_bind_int(st, 1, t->partitions);
    sqlite3_bind_text(st, 2, (const char *)cfg.p, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->name, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        rc = db_fail(c, "updating a topic");
    else if (sqlite3_changes(c->db) == 0)
        rc = td_fail(TD_ENOTFOUND, "topic '%s' does not exist", t->name);
out:
    td_buf_free(&cfg);
    return rc;
}

/* Runs one statement with a text parameter; *changes gets the rows changed. */
static int exec_text(td_catalog *c, const char *sql, const char *arg, int *changes)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, sql);
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return db_fail(c, sql);
    if (changes)
        *changes = sqlite3_changes(c->db);
    return 0;
}

int catalog_topic_remove(td_catalog *c, const char *name)
{
    /* The topic and what the catalog keeps for it go in one transaction: a topic created later
     * under the same name starts with none of it. (Committed offsets are in the broker's state
     * topic now, which writes their tombstones; the offsets table is only read to migrate.) */
    int rc = exec(c, "BEGIN IMMEDIATE"), changes = 0;
    if (rc)
        return rc;
    static const char *const xdel[] = {
        "DELETE FROM xgroups WHERE topic_id=(SELECT id FROM topics WHERE name=?)",
        "DELETE FROM xconsumers WHERE topic_id=(SELECT id FROM topics WHERE name=?)",
        "DELETE FROM xpending WHERE topic_id=(SELECT id FROM topics WHERE name=?)",
        "DELETE FROM xdeleted WHERE topic_id=(SELECT id FROM topics WHERE name=?)"};
    for (size_t i = 0; i < sizeof(xdel) / sizeof(xdel[0]) && rc == 0; i++)
        rc = exec_text(c, xdel[i], name, NULL);
    if (rc == 0 && (rc = exec_text(c, "DELETE FROM topics WHERE name=?", name, &changes)) == 0 &&
        changes == 0)
        rc = td_fail(TD_ENOTFOUND, "topic '%s' does not exist", name);
    if (rc == 0)
        rc = exec_text(c, "DELETE FROM offsets WHERE topic=?", name, NULL);
    if (rc == 0)
        rc = exec(c, "COMMIT");
    /* A failed COMMIT (SQLITE_FULL) may leave the transaction open; the caller retries. */
    if (rc && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Committed offsets
 */
/* Since the committed offsets moved to the internal topic __consumer_offsets (broker/
 * group_state.c), the table is only read, once, to migrate an older directory. */
int catalog_offsets_list(td_catalog *c, const char *group, td_committed_offset **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT topic, partition, offset, leader_epoch, metadata, commit_ms "
                           "FROM offsets WHERE grp=? ORDER BY topic, partition",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, "reading offsets");
    sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
    td_committed_offset *v = NULL;
    char **meta = NULL;
    size_t n = 0, cap = 0, strbytes = 0;
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        /* Two arrays of one length: meta grows first, so that a failure leaves both as
         * large as n needs. */
        size_t capmeta = cap;
        if (td_grow(&meta, &capmeta, n, sizeof(*meta), 16) != 0 ||
            td_grow(&v, &cap, n, sizeof(*v), 16) != 0) {
            rc = -ENOMEM;
            break;
        }
        td_committed_offset *o = &v[n];
        memset(o, 0, sizeof(*o));
        snprintf(o->topic, sizeof(o->topic), "%s", (const char *)sqlite3_column_text(st, 0));
        o->partition = sqlite3_column_int(st, 1);
        o->offset = sqlite3_column_int64(st, 2);
        o->leader_epoch = sqlite3_column_int(st, 3);
        const char *m = (const char *)sqlite3_column_text(st, 4);
        meta[n] = m ? strdup(m) : NULL;
        if (m && !meta[n]) {
            rc = -ENOMEM;
            break;
        }
        strbytes += m ? strlen(m) + 1 : 0;
        o->commit_ms = sqlite3_column_int64(st, 5);
        n++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = db_fail(c, "reading offsets");
    sqlite3_finalize(st);
    td_committed_offset *all = NULL;
    if (rc == 0 && n > 0) {
        all = malloc(n * sizeof(*all) + strbytes);
        if (!all)
            rc = -ENOMEM;
    }
    if (rc == 0 && n > 0) {
        char *strs = (char *)(all + n);
        for (size_t i = 0; i < n; i++) {
            all[i] = v[i];
            all[i].metadata = NULL;
            if (meta[i]) {
                size_t len = strlen(meta[i]) + 1;
                memcpy(strs, meta[i], len);
                all[i].metadata = strs;
                strs += len;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(meta[i]);
    free(meta);
    free(v);
    if (rc)
        return rc;
    *out = all;
    *count = n;
    return 0;
}

int catalog_groups_list(td_catalog *c, td_group_info **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT grp, count(*), max(commit_ms) FROM offsets GROUP BY grp "
                           "ORDER BY grp",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, "listing groups");
    td_group_info *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (td_grow(&v, &cap, n, sizeof(*v), 16) != 0) {
            rc = -ENOMEM;
            break;
        }
        memset(&v[n], 0, sizeof(v[n]));
        snprintf(v[n].name, sizeof(v[n].name), "%s", (const char *)sqlite3_column_text(st, 0));
        v[n].offsets = (size_t)sqlite3_column_int64(st, 1);
        v[n].last_commit_ms = sqlite3_column_int64(st, 2);
        n++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = db_fail(c, "listing groups");
    sqlite3_finalize(st);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return 0;
}

static void row_to_topic(sqlite3_stmt *st, td_catalog_topic *t)
{
    memset(t, 0, sizeof(*t));
    const char *name = (const char *)sqlite3_column_text(st, 0);
    snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
    t->id = sqlite3_column_int64(st, 1);
    t->partitions = sqlite3_column_int(st, 2);
    t->created_ms = sqlite3_column_int64(st, 3);
    config_parse((const char *)sqlite3_column_text(st, 4), &t->config);
}

int catalog_topic_get(td_catalog *c, const char *name, td_catalog_topic *t)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT name, id, partitions, created_ms, config FROM topics WHERE "
                           "name=?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, "reading a topic");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    int rc = 0;
    if (s == SQLITE_ROW)
        row_to_topic(st, t);
    else if (s == SQLITE_DONE)
        rc = td_fail(TD_ENOTFOUND, "topic '%s' does not exist", name);
    else
        rc = db_fail(c, "reading a topic");
    sqlite3_finalize(st);
    return rc;
}

int catalog_topic_list(td_catalog *c, td_catalog_topic **out, size_t *count)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT name, id, partitions, created_ms, config FROM topics ORDER BY "
                           "name",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, "listing topics");
    td_catalog_topic *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (td_grow(&v, &cap, n, sizeof(*v), 16) != 0) {
            rc = -ENOMEM;
            break;
        }
        row_to_topic(st, &v[n++]);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = db_fail(c, "listing topics");
    sqlite3_finalize(st);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return 0;
}

int catalog_producer_ids_legacy(td_catalog *c, int64_t *next)
{
    *next = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT value FROM meta WHERE key='next_producer_id'", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(c, "reading the next producer id");
    int s = sqlite3_step(st), rc = 0;
    if (s == SQLITE_ROW)
        *next = sqlite3_column_int64(st, 0);
    else if (s != SQLITE_DONE)
        rc = db_fail(c, "reading the next producer id");
    sqlite3_finalize(st);
    return rc;
}

int catalog_state_migrated(td_catalog *c, bool *had)
{
    int rc = exec(c, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    int a = 0, b = 0;
    if ((rc = exec_text(c, "DELETE FROM offsets WHERE ?1 IS NOT NULL", "", &a)) == 0)
        rc = exec_text(c, "DELETE FROM meta WHERE key=?1", "next_producer_id", &b);
    if (rc == 0)
        rc = exec(c, "COMMIT");
    if (rc)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    else if (had)
        *had = a + b > 0;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Queue groups
 */
int catalog_queues_migrated(td_catalog *c, bool *had)
{
    int rc = exec(c, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    int a = 0, b = 0;
    if ((rc = exec_text(c, "DELETE FROM queue_parts WHERE ?1 IS NOT NULL", "", &a)) == 0)
        rc = exec_text(c, "DELETE FROM queues WHERE ?1 IS NOT NULL", "", &b);
    if (rc == 0)
        rc = exec(c, "COMMIT");
    if (rc)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    else if (had)
        *had = a + b > 0;
    return rc;
}

int catalog_queue_list(td_catalog *c, catalog_queue **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT name, topic, policy, created_ms FROM queues ORDER BY name", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(c, "listing queue groups");
    catalog_queue *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (td_grow(&v, &cap, n, sizeof(*v), 8) != 0) {
            rc = -ENOMEM;
            break;
        }
        catalog_queue *q = &v[n++];
        memset(q, 0, sizeof(*q));
        snprintf(q->name, sizeof(q->name), "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(q->topic, sizeof(q->topic), "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(q->policy, sizeof(q->policy), "%s", (const char *)sqlite3_column_text(st, 2));
        q->created_ms = sqlite3_column_int64(st, 3);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(c, "listing queue groups");
    sqlite3_finalize(st);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return 0;
}

int catalog_qparts_list(td_catalog *c, const char *group,
                        int (*fn)(void *arg, const catalog_qpart *q), void *arg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT topic, partition, topic_id, floor, next, pending FROM "
                           "queue_parts WHERE grp = ? ORDER BY topic, partition",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, "reading queue state");
    sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        catalog_qpart q = {
            .group = group,
            .topic = (const char *)sqlite3_column_text(st, 0),
            .partition = sqlite3_column_int(st, 1),
            .topic_id = sqlite3_column_int64(st, 2),
            .floor = sqlite3_column_int64(st, 3),
            .next = sqlite3_column_int64(st, 4),
            .pending = sqlite3_column_blob(st, 5),
            .pending_len = (size_t)sqlite3_column_bytes(st, 5),
        };
        rc = fn(arg, &q);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(c, "reading queue state");
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Redis consumer groups
 */
static const char *const xrow_sql[] = {
    [CATALOG_XGROUP_PUT] = "INSERT OR REPLACE INTO xgroups(topic_id, partition, name, last_ms, "
                           "last_seq, created_ms, policy) VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [CATALOG_XGROUP_DEL] = "DELETE FROM xgroups WHERE topic_id=?1 AND partition=?2 AND name=?3;"
                           "DELETE FROM xconsumers WHERE topic_id=?1 AND partition=?2 AND grp=?3;"
                           "DELETE FROM xpending WHERE topic_id=?1 AND partition=?2 AND grp=?3",
    [CATALOG_XCONS_PUT] = "INSERT OR REPLACE INTO xconsumers(topic_id, partition, grp, name, "
                          "seen_ms) VALUES(?1,?2,?3,?4,?6)",
    [CATALOG_XCONS_DEL] = "DELETE FROM xconsumers WHERE topic_id=?1 AND partition=?2 AND grp=?3 "
                          "AND name=?4;"
                          "DELETE FROM xpending WHERE topic_id=?1 AND partition=?2 AND grp=?3 AND "
                          "consumer=?4",
    [CATALOG_XPEND_PUT] = "INSERT OR REPLACE INTO xpending(topic_id, partition, grp, consumer, "
                          "id_ms, id_seq, delivery_ms, deliveries) VALUES(?1,?2,?3,?4,?5,?7,?6,?8)",
    [CATALOG_XPEND_DEL] = "DELETE FROM xpending WHERE topic_id=?1 AND partition=?2 AND grp=?3 AND "
                          "id_ms=?5 AND id_seq=?7",
    [CATALOG_XCLEAR] = "DELETE FROM xdeleted",
    [CATALOG_XDEL_PUT] = "INSERT OR REPLACE INTO xdeleted(topic_id, partition, offset, id_ms, "
                         "id_seq) VALUES(?1,?2,?6,?5,?7)",
    [CATALOG_XDEL_PRUNE] = "DELETE FROM xdeleted WHERE topic_id=?1 AND partition=?2 AND offset "
                           ">= 0 AND offset < ?6",
};
#define XROW_KINDS (sizeof(xrow_sql) / sizeof(xrow_sql[0]))
#define XROW_STMTS 4 /* statements per kind at most */

static void xrow_bind(sqlite3_stmt *st, const catalog_xrow *r)
{
    /* ?1 topic, ?2 partition, ?3 group, ?4 consumer, ?5 id ms (GROUP_PUT: last ms), ?6 ms,
     * ?7 id seq, ?8 count; GROUP_PUT's ?4 is the last ms, ?5 the last seq, ?7 the policy. */
    sqlite3_bind_int64(st, 1, r->topic_id);
    sqlite3_bind_int(st, 2, r->partition);
    sqlite3_bind_blob(st, 3, r->group.n ? (const void *)r->group.p : "", (int)r->group.n,
                      SQLITE_STATIC);
    if (r->op == CATALOG_XGROUP_PUT) {
        sqlite3_bind_int64(st, 4, (int64_t)r->id.ms); /* bits kept */
        sqlite3_bind_int64(st, 5, (int64_t)r->id.seq);
        sqlite3_bind_int64(st, 6, r->ms);
        sqlite3_bind_text(st, 7, r->policy ? r->policy : "", -1, SQLITE_STATIC);
        return;
    }
    int np = sqlite3_bind_parameter_count(st);
    if (np >= 4)
        sqlite3_bind_blob(st, 4, r->name.n ? (const void *)r->name.p : "", (int)r->name.n,
                          SQLITE_STATIC);
    if (np >= 5)
        sqlite3_bind_int64(st, 5, (int64_t)r->id.ms);
    if (np >= 6)
        sqlite3_bind_int64(st, 6, r->ms);
    if (np >= 7)
        sqlite3_bind_int64(st, 7, (int64_t)r->id.seq);
    if (np >= 8)
        sqlite3_bind_int64(st, 8, r->count);
}

int catalog_xrows_put(td_catalog *c, const catalog_xrow *v, size_t n)
{
    int rc = exec(c, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    sqlite3_stmt *st[XROW_KINDS][XROW_STMTS] = {{NULL}};
    for (size_t k = 0; k < XROW_KINDS && rc == 0; k++) {
        const char *sql = xrow_sql[k];
        for (size_t j = 0; j < XROW_STMTS && sql && *sql && rc == 0; j++) {
            if (sqlite3_prepare_v2(c->db, sql, -1, &st[k][j], &sql) != SQLITE_OK)
                rc = db_fail(c, "saving consumer groups");
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (v[i].op < 0 || (size_t)v[i].op >= XROW_KINDS) {
            rc = td_fail(TD_EINVAL, "catalog: bad consumer group row");
            break;
        }
        for (size_t j = 0; j < XROW_STMTS && rc == 0; j++) {
            sqlite3_stmt *s = st[v[i].op][j];
            if (!s)
                continue;
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            xrow_bind(s, &v[i]);
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = db_fail(c, "saving consumer groups");
        }
    }
    for (size_t k = 0; k < XROW_KINDS; k++)
        for (size_t j = 0; j < XROW_STMTS; j++)
            sqlite3_finalize(st[k][j]);
    if (rc == 0 && (rc = exec(c, "COMMIT")) == 0)
        return 0;
    exec(c, "ROLLBACK");
    return rc;
}

int catalog_xgroups_migrated(td_catalog *c)
{
    int rc = exec(c, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    if ((rc = exec(c, "DELETE FROM xgroups")) == 0 &&
        (rc = exec(c, "DELETE FROM xconsumers")) == 0 && (rc = exec(c, "DELETE FROM xpending")) == 0)
        rc = exec(c, "COMMIT");
    if (rc)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static td_slice column_slice(sqlite3_stmt *st, int i)
{
    const void *p = sqlite3_column_blob(st, i);
    return td_slice_make(p, (size_t)sqlite3_column_bytes(st, i));
}

int catalog_xrows_list(td_catalog *c, int (*fn)(void *arg, const catalog_xrow *r), void *arg)
{
    static const char *const sql[] = {
        "SELECT topic_id, partition, name, last_ms, last_seq, created_ms, policy FROM xgroups",
        "SELECT topic_id, partition, grp, name, seen_ms FROM xconsumers",
        "SELECT topic_id, partition, grp, consumer, id_ms, id_seq, delivery_ms, deliveries FROM "
        "xpending ORDER BY topic_id, partition, grp, id_ms, id_seq",
        "SELECT topic_id, partition, x'', offset, id_ms, id_seq FROM xdeleted ORDER BY topic_id, "
        "partition, offset",
    };
    int rc = 0;
    for (size_t k = 0; k < 4 && rc == 0; k++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(c->db, sql[k], -1, &st, NULL) != SQLITE_OK)
            return db_fail(c, "reading consumer groups");
        int step;
        while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
            catalog_xrow r = {.topic_id = sqlite3_column_int64(st, 0),
                              .partition = sqlite3_column_int(st, 1),
                              .group = column_slice(st, 2)};
            if (k == 0) {
                r.op = CATALOG_XGROUP_PUT;
                r.id = (td_sid){(uint64_t)sqlite3_column_int64(st, 3), (uint64_t)sqlite3_column_int64(st, 4)};
                r.ms = sqlite3_column_int64(st, 5);
                r.policy = (const char *)sqlite3_column_text(st, 6);
            } else if (k == 1) {
                r.op = CATALOG_XCONS_PUT;
                r.name = column_slice(st, 3);
                r.ms = sqlite3_column_int64(st, 4);
            } else if (k == 3) {
                r.op = CATALOG_XDEL_PUT;
                r.ms = sqlite3_column_int64(st, 3);
                r.id = (td_sid){(uint64_t)sqlite3_column_int64(st, 4), (uint64_t)sqlite3_column_int64(st, 5)};
            } else {
                r.op = CATALOG_XPEND_PUT;
                r.name = column_slice(st, 3);
                r.id = (td_sid){(uint64_t)sqlite3_column_int64(st, 4), (uint64_t)sqlite3_column_int64(st, 5)};
                r.ms = sqlite3_column_int64(st, 6);
                r.count = sqlite3_column_int64(st, 7);
            }
            rc = fn(arg, &r);
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = db_fail(c, "reading consumer groups");
        sqlite3_finalize(st);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Users: SCRAM credentials. Every change is one transaction, so a user is never seen with
 * half of a new set of credentials.
 */
int catalog_user_put(td_catalog *c, const char *name, const td_scram_credential *v, size_t n,
                     bool replace)
{
    int rc = exec(c, "BEGIN IMMEDIATE"), existing = 0;
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM users WHERE name=?", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(c, "looking up a user");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(c, "looking up a user");
        goto rollback;
    }
    existing = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (!replace && existing) {
        rc = td_fail(TD_EEXIST, "user '%s' already exists", name);
        goto rollback;
    }
    if (replace && !existing) {
        rc = td_fail(TD_ENOTFOUND, "user '%s' does not exist", name);
        goto rollback;
    }
    if ((rc = exec_text(c, "DELETE FROM users WHERE name=?", name, NULL)))
        goto rollback;
    if (sqlite3_prepare_v2(c->db, "INSERT INTO users VALUES(?,?,?,?,?,?)", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(c, "storing a user");
        goto rollback;
    }
    for (size_t i = 0; i < n; i++) {
        const td_scram_credential *k = &v[i];
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, td_scram_mechanism_name(k->mechanism), -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, k->salt, (int)k->salt_len, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, k->iterations);
        sqlite3_bind_blob(st, 5, k->stored_key, (int)k->key_len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 6, k->server_key, (int)k->key_len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(c, "storing a user");
            goto rollback;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = exec(c, "COMMIT")))
        goto rollback;
    return 0;
rollback:
    sqlite3_finalize(st);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int catalog_user_remove(td_catalog *c, const char *name)
{
    /* The user's tokens go in the same transaction: a token never outlives its owner. */
    int changes = 0;
    int rc = exec(c, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    if ((rc = exec_text(c, "DELETE FROM users WHERE name=?", name, &changes)) == 0 && changes == 0)
        rc = td_fail(TD_ENOTFOUND, "user '%s' does not exist", name);
    if (rc == 0)
        rc = exec_text(c, "DELETE FROM tokens WHERE user=?", name, NULL);
    if (rc == 0 && (rc = exec(c, "COMMIT")) == 0)
        return 0;
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int catalog_user_list(td_catalog *c, td_user_info **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st;
    /* Names compare as bytes (BINARY), so the order is the same in every locale. */
    if (sqlite3_prepare_v2(c->db, "SELECT name, mechanism, iterations FROM users ORDER BY name", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(c, "listing users");
    td_user_info *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int mech = td_scram_mechanism_parse((const char *)sqlite3_column_text(st, 1));
        if (!name || !mech)
            continue; /* a mechanism of a newer tidings: not one this build can use */
        if (n == 0 || strcmp(v[n - 1].name, name) != 0) {
            if (td_grow(&v, &cap, n, sizeof(*v), 16) != 0) {
                rc = -ENOMEM;
                goto out;
            }
            memset(&v[n], 0, sizeof(v[n]));
            snprintf(v[n].name, sizeof(v[n].name), "%s", name);
            n++;
        }
        v[n - 1].mechanisms |= mech;
        if (mech == TD_SCRAM_SHA_256)
            v[n - 1].sha256_iterations = sqlite3_column_int(st, 2);
        else
            v[n - 1].sha512_iterations = sqlite3_column_int(st, 2);
    }
    if (step != SQLITE_DONE)
        rc = db_fail(c, "listing users");
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

int catalog_user_get(td_catalog *c, const char *name, int mechanism, td_scram_credential *out)
{
    const char *mech = td_scram_mechanism_name(mechanism);
    if (!mech)
        return td_fail(TD_EINVAL, "unknown SCRAM mechanism %d", mechanism);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT salt, iterations, stored_key, server_key FROM users WHERE "
                           "name=? AND mechanism=?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, "reading a user");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, mech, -1, SQLITE_STATIC);
    int rc = 0, step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = td_fail(TD_ENOTFOUND, "user '%s' has no %s credential", name, mech);
    } else if (step != SQLITE_ROW) {
        rc = db_fail(c, "reading a user");
    } else {
        td_scram_credential k;
        memset(&k, 0, sizeof(k));
        k.mechanism = mechanism;
        k.iterations = sqlite3_column_int(st, 1);
        td_slice salt = column_slice(st, 0), sk = column_slice(st, 2), vk = column_slice(st, 3);
        k.key_len = sk.n;
        k.salt_len = salt.n;
        /* A row that does not fit the mechanism is reported, never used. */
        if (salt.n == 0 || salt.n > TD_SCRAM_SALT_MAX || sk.n != scram_key_len(mechanism) ||
            vk.n != sk.n || k.iterations < 1) {
            rc = td_fail(TD_ECORRUPT, "catalog: user '%s': malformed %s credential", name, mech);
        } else {
            memcpy(k.salt, salt.p, salt.n);
            memcpy(k.stored_key, sk.p, sk.n);
            memcpy(k.server_key, vk.p, vk.n);
            *out = k;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* For the catalog's other files (catalog_int.h). */
int catalog_fail(td_catalog *c, const char *what)
{
    return db_fail(c, what);
}

int catalog_exec(td_catalog *c, const char *sql)
{
    return exec(c, sql);
}

/* ---------------------------------------------------------------------------------------------
 * ACLs: rows of Kafka's codes. The broker keeps them in memory and validates them; rows of a
 * newer tidings' codes are the broker's to skip.
 */
static void bind_acl(sqlite3_stmt *st, const td_acl *a)
{
    sqlite3_bind_text(st, 1, a->principal, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->host, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)a->resource_type);
    sqlite3_bind_int(st, 4, (int)a->pattern_type);
    sqlite3_bind_text(st, 5, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, (int)a->operation);
    sqlite3_bind_int(st, 7, (int)a->permission);
}

static int acl_rows(td_catalog *c, const td_acl *v, size_t n, const char *sql, const char *what)
{
    int rc = exec(c, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(c, what);
        goto rollback;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        bind_acl(st, &v[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(c, what);
            goto rollback;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = exec(c, "COMMIT")))
        goto rollback;
    return 0;
rollback:
    sqlite3_finalize(st);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int catalog_acl_put(td_catalog *c, const td_acl *a)
{
    return acl_rows(c, a, 1, "INSERT OR IGNORE INTO acls VALUES(?,?,?,?,?,?,?)", "storing an ACL");
}

int catalog_acl_remove(td_catalog *c, const td_acl *v, size_t n)
{
    return acl_rows(c, v, n,
                    "DELETE FROM acls WHERE principal=? AND host=? AND resource_type=? AND "
                    "pattern_type=? AND name=? AND operation=? AND permission=?",
                    "removing ACLs");
}

int catalog_acl_list(td_catalog *c, td_acl **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT * FROM acls", -1, &st, NULL) != SQLITE_OK)
        return db_fail(c, "listing ACLs");
    td_acl *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *principal = (const char *)sqlite3_column_text(st, 0);
        const char *host = (const char *)sqlite3_column_text(st, 1);
        const char *name = (const char *)sqlite3_column_text(st, 4);
        if (!principal || !host || !name || strlen(principal) > TD_ACL_PRINCIPAL_MAX ||
            strlen(host) > TD_ACL_HOST_MAX || strlen(name) > TD_ACL_NAME_MAX) {
            rc = td_fail(TD_ECORRUPT, "catalog: malformed ACL row");
            goto out;
        }
        if (td_grow(&v, &cap, n, sizeof(*v), 16) != 0) {
            rc = -ENOMEM;
            goto out;
        }
        td_acl *a = &v[n++];
        memset(a, 0, sizeof(*a));
        strcpy(a->principal, principal);
        strcpy(a->host, host);
        strcpy(a->name, name);
        a->resource_type = (td_acl_resource)sqlite3_column_int(st, 2);
        a->pattern_type = (td_acl_pattern)sqlite3_column_int(st, 3);
        a->operation = (td_acl_op)sqlite3_column_int(st, 5);
        a->permission = (td_acl_permission)sqlite3_column_int(st, 6);
    }
    if (step != SQLITE_DONE)
        rc = db_fail(c, "listing ACLs");
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
