/*
 * meta_json.c: the values tidings keeps in etcd (cluster_int.h), and DATA/cluster.properties.
 * Other brokers wrote them: they are decoded as untrusted input (fuzzed: tests/fuzz/etcd).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/cluster_int.h"
#include "tidings.h"

static int dump_to(td_buf *out, json_t *o)
{
    if (!o)
        return -ENOMEM;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return -ENOMEM;
    int rc = td_buf_append(out, s, strlen(s));
    free(s);
    return rc;
}

static json_t *str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

int cluster_broker_encode(td_buf *out, const td_cluster_broker *b)
{
    json_t *ls = json_array();
    for (int i = 0; ls && i < b->nkafka; i++)
        json_array_append_new(ls,
                              json_pack("{s:s,s:s,s:i}", "protocol", b->kafka[i].protocol, "host",
                                        b->kafka[i].host, "port", (json_int_t)b->kafka[i].port));
    json_t *o = ls ? json_pack("{s:i,s:o,s:o,s:o,s:o,s:s}", "id", (json_int_t)b->id, "rack",
                               str_or_null(b->rack), "listeners", ls, "http", str_or_null(b->http),
                               "redis", str_or_null(b->redis), "version", TD_VERSION_STRING)
                   : NULL;
    return dump_to(out, o);
}

/* A string field into dst (cap bytes): absent or null gives "", anything else fails. */
static int opt_string(json_t *o, const char *name, char *dst, size_t cap)
{
    json_t *v = json_object_get(o, name);
    dst[0] = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v))
        return TD_EPROTO;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int id_field(json_t *o, const char *name, int32_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return TD_EPROTO;
    *out = (int32_t)json_integer_value(v);
    return 0;
}

static int decode_listeners(json_t *ls, td_cluster_broker *b)
{
    if (!ls)
        return 0;
    if (!json_is_array(ls) || json_array_size(ls) > TD_CLUSTER_LISTENERS_MAX)
        return TD_EPROTO;
    size_t i;
    json_t *l;
    json_array_foreach(ls, i, l)
    {
        td_cluster_listener *d = &b->kafka[b->nkafka];
        json_t *port = json_object_get(l, "port");
        if (!json_is_object(l) ||
            opt_string(l, "protocol", d->protocol, sizeof(d->protocol)) != 0 ||
            opt_string(l, "host", d->host, sizeof(d->host)) != 0 || !json_is_integer(port) ||
            json_integer_value(port) < 0 || json_integer_value(port) > 65535)
            return TD_EPROTO;
        d->port = (int32_t)json_integer_value(port);
        b->nkafka++;
    }
    return 0;
}

int cluster_broker_decode(const char *p, size_t n, td_cluster_broker *out)
{
    memset(out, 0, sizeof(*out));
    json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
    int rc = json_is_object(o) ? 0 : TD_EPROTO;
    if (rc == 0)
        rc = id_field(o, "id", &out->id);
    if (rc == 0)
        rc = opt_string(o, "rack", out->rack, sizeof(out->rack));
    if (rc == 0)
        rc = opt_string(o, "http", out->http, sizeof(out->http));
    if (rc == 0)
        rc = opt_string(o, "redis", out->redis, sizeof(out->redis));
    if (rc == 0)
        rc = decode_listeners(json_object_get(o, "listeners"), out);
    json_decref(o);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int cluster_controller_encode(td_buf *out, int32_t broker_id)
{
    return dump_to(out, json_pack("{s:i}", "broker_id", (json_int_t)broker_id));
}

int cluster_controller_decode(const char *p, size_t n, int32_t *broker_id)
{
    json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
    int rc = json_is_object(o) ? id_field(o, "broker_id", broker_id) : TD_EPROTO;
    json_decref(o);
    return rc;
}

int cluster_broker_key_id(const char *rest, size_t n, int32_t *id)
{
    if (n == 0 || n > 10 || (n > 1 && rest[0] == '0'))
        return TD_EPROTO;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (rest[i] < '0' || rest[i] > '9')
            return TD_EPROTO;
        v = v * 10 + (rest[i] - '0');
    }
    if (v > INT32_MAX)
        return TD_EPROTO;
    *id = (int32_t)v;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * DATA/cluster.properties
 */

static void props_path(const char *dir, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

int cluster_props_read(const char *data_dir, cluster_props *p)
{
    memset(p, 0, sizeof(*p));
    p->broker_id = -1;
    char path[PATH_MAX + 32];
    props_path(data_dir, "cluster.properties", path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    char line[256];
    int rc = 0, lineno = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        char *eq = strchr(line, '=');
        if (line[0] == '#' || line[0] == 0)
            continue;
        char *end = NULL;
        if (!eq) {
            rc = td_fail(TD_ECORRUPT, "%s, line %d: not key=value", path, lineno);
        } else if (*eq = 0, !strcmp(line, "cluster.id")) {
            if (strlen(eq + 1) >= sizeof(p->cluster_id))
                rc = td_fail(TD_ECORRUPT, "%s, line %d: cluster.id too long", path, lineno);
            else
                snprintf(p->cluster_id, sizeof(p->cluster_id), "%s", eq + 1);
        } else if (!strcmp(line, "broker.id")) {
            long v = strtol(eq + 1, &end, 10);
            if (end == eq + 1 || *end || v < 0 || v > INT32_MAX)
                rc = td_fail(TD_ECORRUPT, "%s, line %d: a bad broker.id", path, lineno);
            p->broker_id = (int32_t)v;
        } else if (!strcmp(line, "lease")) {
            p->lease = strtoll(eq + 1, &end, 10);
            if (end == eq + 1 || *end)
                rc = td_fail(TD_ECORRUPT, "%s, line %d: a bad lease", path, lineno);
        }
    }
    fclose(f);
    return rc;
}

int cluster_props_write(const char *data_dir, const cluster_props *p)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
    props_path(data_dir, "cluster.properties", path, sizeof(path));
    props_path(data_dir, "cluster.properties.tmp", tmp, sizeof(tmp));
    char text[512];
    int n = snprintf(text, sizeof(text),
                     "# The cluster this data directory belongs to (docs/clustering.md).\n"
                     "cluster.id=%s\nbroker.id=%d\nlease=%lld\n",
                     p->cluster_id, (int)p->broker_id, (long long)p->lease);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = write(fd, text, (size_t)n) == n ? 0 : -EIO;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0 && (fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        if (fsync(fd) != 0)
            rc = -errno;
        close(fd);
    }
    return rc;
}
