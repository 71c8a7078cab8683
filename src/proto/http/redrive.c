/*
 * redrive.c: redrives over REST (docs/http-api.md#redrive). A redrive can move many events and
 * waits for their durability, so it runs as a job on its own thread, not on an event loop:
 *   POST /v1/topics/{dlq}/redrive   starts one: 202 with the job
 *   GET  /v1/redrives[/{id}]        the jobs, with their progress and counts
 * The last MAX_JOBS jobs are kept; a stopping server stops the running ones between batches
 * and waits for them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "proto/http/http_int.h"

#define MAX_JOBS HTTP_MAX_REDRIVES

enum { JOB_RUNNING, JOB_DONE, JOB_FAILED };

struct http_redrive_job {
    http_server *s;
    int64_t id;
    char topic[TD_TOPIC_NAME_MAX + 1];
    char to_topic[TD_TOPIC_NAME_MAX + 1];
    td_redrive_opts opts;
    pthread_t thread;
    bool joined;
    /* Under s->jobs_mu: */
    int state;
    int64_t done, total;
    td_redrive_result res;
    char error[512];
    int64_t started_ms, finished_ms;
};

static int job_progress(void *arg, int64_t done, int64_t total)
{
    http_redrive_job *j = arg;
    pthread_mutex_lock(&j->s->jobs_mu);
    j->done = done;
    j->total = total;
    bool stop = j->s->jobs_stopping;
    pthread_mutex_unlock(&j->s->jobs_mu);
    return stop;
}

static void *job_main(void *arg)
{
    http_redrive_job *j = arg;
    td_redrive_result res;
    int rc = td_redrive(j->s->e, j->topic, &j->opts, &res);
    pthread_mutex_lock(&j->s->jobs_mu);
    j->res = res;
    j->state = rc ? JOB_FAILED : JOB_DONE;
    if (rc)
        snprintf(j->error, sizeof(j->error), "%s",
                 td_last_error()[0] ? td_last_error() : td_strerror(rc));
    j->finished_ms = td_wall_ms();
    pthread_mutex_unlock(&j->s->jobs_mu);
    TD_INFO("http",
            "redrive %" PRId64 " of %s %s: %" PRId64 " moved, %" PRId64 " skipped, %" PRId64
            " deleted%s%s",
            j->id, j->topic, rc ? "failed" : "done", res.moved, res.skipped, res.deleted,
            rc ? ": " : "", rc ? j->error : "");
    return NULL;
}

/* Under jobs_mu. */
static json_t *job_json(const http_redrive_job *j)
{
    static const char *const states[] = {"running", "done", "failed"};
    json_t *o =
        json_pack("{s:I,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "id", (json_int_t)j->id, "topic",
                  j->topic, "state", states[j->state], "total",
                  (json_int_t)(j->state == JOB_RUNNING ? j->total : j->res.total), "done",
                  (json_int_t)(j->state == JOB_RUNNING ? j->done : j->res.total), "moved",
                  (json_int_t)j->res.moved, "skipped", (json_int_t)j->res.skipped, "deleted",
                  (json_int_t)j->res.deleted, "started_ms", (json_int_t)j->started_ms);
    json_object_set_new(o, "to_topic", j->to_topic[0] ? json_string(j->to_topic) : json_null());
    json_object_set_new(o, "finished_ms",
                        j->finished_ms ? json_integer(j->finished_ms) : json_null());
    json_object_set_new(o, "error", j->error[0] ? json_string(j->error) : json_null());
    return o;
}

static void job_free(http_redrive_job *j)
{
    if (!j->joined)
        pthread_join(j->thread, NULL);
    free(j);
}

/* Makes room for a job: forgets the oldest finished one. Under jobs_mu; false if all run. */
static bool jobs_room(http_server *s, http_redrive_job **gone)
{
    *gone = NULL;
    if (s->njobs < MAX_JOBS)
        return true;
    for (size_t i = 0; i < s->njobs; i++) {
        if (s->jobs[i]->state != JOB_RUNNING) {
            *gone = s->jobs[i];
            memmove(&s->jobs[i], &s->jobs[i + 1], (s->njobs - i - 1) * sizeof(*s->jobs));
            s->njobs--;
            return true;
        }
    }
    return false;
}

/* A query or body number that may be absent: -1 then. */
static bool opt_int(hconn *hc, json_t *b, const char *name, int64_t lo, int64_t *out)
{
    json_t *v = json_object_get(b, name);
    *out = -1;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo) {
        char msg[200];
        snprintf(msg, sizeof(msg), "'%s' must be an integer >= %" PRId64, name, lo);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static bool opt_time(hconn *hc, json_t *b, const char *name, int64_t *out)
{
    json_t *v = json_object_get(b, name);
    *out = -1;
    if (!v || json_is_null(v))
        return true;
    if (http_json_time(v, out))
        return true;
    char msg[200];
    snprintf(msg, sizeof(msg), "'%s' must be Unix milliseconds or an ISO 8601 time", name);
    http_respond_error(hc, 400, "invalid_argument", msg);
    return false;
}

void http_redrive_start(hconn *hc, const char *topic)
{
    /* The body is optional (docs/http-api.md#redrive): none, without a type, is {}. */
    json_t *b = hc->body.len == 0 && !http_header_get(&hc->req, "content-type")
                    ? json_object()
                    : http_body_json(hc, true);
    if (!b)
        return;
    static const char *const allowed[] = {"to_topic", "partition", "from_offset", "to_offset",
                                          "since",    "until",     "keep",        NULL};
    http_server *s = hc->s;
    http_redrive_job *j = calloc(1, sizeof(*j)), *gone = NULL;
    json_t *to = json_object_get(b, "to_topic"), *keep = json_object_get(b, "keep");
    int64_t part;
    if (!j) {
        http_respond_error(hc, 500, "internal", "out of memory");
        goto out;
    }
    td_redrive_opts_init(&j->opts);
    if (!http_only_keys(hc, b, allowed) || !opt_int(hc, b, "partition", 0, &part) ||
        !opt_int(hc, b, "from_offset", 0, &j->opts.from_offset) ||
        !opt_int(hc, b, "to_offset", 0, &j->opts.to_offset) ||
        !opt_time(hc, b, "since", &j->opts.since_ms) ||
        !opt_time(hc, b, "until", &j->opts.until_ms))
        goto out;
    if ((to && !json_is_string(to) && !json_is_null(to)) || (keep && !json_is_boolean(keep))) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'to_topic' is a topic name and 'keep' true or false");
        goto out;
    }
    if (part > INT32_MAX) {
        http_respond_error(hc, 400, "invalid_argument", "'partition' is too large");
        goto out;
    }
    /* Read on the dead-letter topic (the route's check), Write where the events go: to_topic,
     * or each event's origin, which only the events know: an administrator then. */
    if (json_is_string(to) ? !http_require(hc, TD_RES_TOPIC, json_string_value(to), TD_OP_WRITE)
                           : !http_require(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER))
        goto out;
    j->opts.partition = (int32_t)part;
    j->opts.keep = json_is_true(keep);
    td_topic_info info;
    int rc = td_topic_describe(s->e, topic, &info);
    if (rc == 0 && json_is_string(to))
        rc = td_topic_describe(s->e, json_string_value(to), &(td_topic_info){0});
    if (rc == 0 && part >= info.partitions)
        rc = td_fail(TD_ENOTFOUND, "topic '%s' has no partition %" PRId64, topic, part);
    if (rc) {
        http_respond_td_error(hc, rc);
        goto out;
    }
    j->s = s;
    snprintf(j->topic, sizeof(j->topic), "%s", topic);
    if (json_is_string(to)) {
        snprintf(j->to_topic, sizeof(j->to_topic), "%s", json_string_value(to));
        j->opts.to_topic = j->to_topic;
    }
    j->opts.progress = job_progress;
    j->opts.arg = j;
    j->started_ms = td_wall_ms();
    pthread_mutex_lock(&s->jobs_mu);
    bool room = !s->jobs_stopping && jobs_room(s, &gone);
    if (room) {
        j->id = ++s->job_seq;
        if (pthread_create(&j->thread, NULL, job_main, j) != 0)
            room = false;
        else
            s->jobs[s->njobs++] = j;
    }
    json_t *answer = room ? job_json(j) : NULL;
    pthread_mutex_unlock(&s->jobs_mu);
    if (gone)
        job_free(gone);
    if (!room) {
        http_respond_error(hc, 503, "unavailable",
                           "too many redrives running, or the broker is stopping");
        goto out;
    }
    TD_INFO("http", "redrive %" PRId64 " of %s started for %s", j->id, topic, net_conn_peer(hc->c));
    j = NULL;
    http_respond_json(hc, 202, answer, NULL);
out:
    free(j);
    json_decref(b);
}

void http_route_redrives(hconn *hc, const char *id)
{
    if (!http_method_is(hc, "GET") && !http_method_is(hc, "HEAD"))
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    http_server *s = hc->s;
    char *end = NULL;
    long long want = id ? strtoll(id, &end, 10) : 0;
    if (id && (!*id || *end)) {
        http_respond_error(hc, 404, "not_found", "a redrive id is a number");
        return;
    }
    pthread_mutex_lock(&s->jobs_mu);
    json_t *answer = NULL;
    if (!id) {
        json_t *arr = json_array();
        for (size_t i = 0; i < s->njobs; i++)
            json_array_append_new(arr, job_json(s->jobs[i]));
        answer = json_pack("{s:o}", "redrives", arr);
    } else {
        for (size_t i = 0; i < s->njobs && !answer; i++)
            if (s->jobs[i]->id == want)
                answer = job_json(s->jobs[i]);
    }
    pthread_mutex_unlock(&s->jobs_mu);
    if (!answer)
        return http_respond_error(hc, 404, "not_found", "no such redrive");
    http_respond_json(hc, 200, answer, NULL);
}

void http_redrives_stop(http_server *s)
{
    http_redrive_job *v[HTTP_MAX_REDRIVES];
    pthread_mutex_lock(&s->jobs_mu);
    s->jobs_stopping = true;
    size_t n = s->njobs;
    memcpy(v, s->jobs, n * sizeof(*v));
    s->njobs = 0;
    pthread_mutex_unlock(&s->jobs_mu);
    for (size_t i = 0; i < n; i++)
        job_free(v[i]);
}
