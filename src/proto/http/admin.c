/*
 * admin.c: user and API token management over HTTP (docs/http-api.md#users-and-tokens), what
 * `tidings user --server` and `tidings token --server` call.
 *
 *   GET    /v1/users                  the users (never a secret)            administrator
 *   POST   /v1/users                  {"name", "password", "mechanisms", "iterations"}
 *   GET    /v1/users/{name}           one user                               administrator
 *   DELETE /v1/users/{name}           removes the user and its tokens        administrator
 *   PUT    /v1/users/{name}/password  {"password", "mechanisms", "iterations"}
 *                                                        administrator, or the user itself
 *   GET    /v1/tokens[?user=U|?all=true]  one's own tokens; another user's or every user's
 *                                     (all) need an administrator
 *   POST   /v1/tokens                 {"user", "expires_in_ms" | "expires_at", "description"}
 *                                     201 with the token's text, shown this once
 *   DELETE /v1/tokens/{id}            revokes: one's own; an administrator any
 *
 * Passwords travel in the JSON body (use HTTPS beyond loopback); the server derives the SCRAM
 * credentials, so the client needs no SCRAM code. Every change is logged with the acting
 * principal and the peer; no password or token secret is ever logged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "broker/audit.h"
#include "broker/authz.h"
#include "proto/http/http_int.h"

/* One change, in the audit trail with the request's principal and peer. */
static void audit(hconn *hc, td_audit_event ev, const char *what, const char *name)
{
    td_principal p;
    http_principal(hc, &p);
    char shown[TD_USER_NAME_MAX * 4 + 8];
    broker_audit(hc->s->e, ev, "http", p.user, net_conn_peer(hc->c), "%s '%s'", what,
                 http_utf8_clean(name, shown, sizeof(shown)));
}

static json_t *user_json(const td_user_info *u)
{
    json_t *mechs = json_array(), *iters = json_object();
    if (u->mechanisms & TD_SCRAM_SHA_256) {
        json_array_append_new(mechs, json_string("SCRAM-SHA-256"));
        json_object_set_new(iters, "SCRAM-SHA-256", json_integer(u->sha256_iterations));
    }
    if (u->mechanisms & TD_SCRAM_SHA_512) {
        json_array_append_new(mechs, json_string("SCRAM-SHA-512"));
        json_object_set_new(iters, "SCRAM-SHA-512", json_integer(u->sha512_iterations));
    }
    return json_pack("{s:s,s:o,s:o}", "name", u->name, "mechanisms", mechs, "iterations", iters);
}

/* The user named, as user_json; answers 200 (or the error). */
static void answer_user(hconn *hc, int status, const char *name)
{
    td_user_info *v;
    size_t n;
    int rc = td_user_list(hc->s->e, &v, &n);
    if (rc)
        return http_respond_td_error(hc, rc);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, name) == 0) {
            json_t *j = user_json(&v[i]);
            free(v);
            return http_respond_json(hc, status, j, NULL);
        }
    }
    free(v);
    char msg[600];
    snprintf(msg, sizeof(msg), "user '%.255s' does not exist", name);
    http_respond_error(hc, 404, "not_found", msg);
}

static void users_list(hconn *hc)
{
    td_user_info *v;
    size_t n;
    int rc = td_user_list(hc->s->e, &v, &n);
    if (rc)
        return http_respond_td_error(hc, rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, user_json(&v[i]));
    free(v);
    http_respond_json(hc, 200, json_pack("{s:o}", "users", arr), NULL);
}

/* "mechanisms" (a name or an array of names; absent: both) and "iterations" (absent: the
 * default) of a body; false after answering 400. */
static bool read_mechanisms(hconn *hc, json_t *b, int *mask, int32_t *iterations)
{
    json_t *m = json_object_get(b, "mechanisms"), *it = json_object_get(b, "iterations");
    *mask = m ? 0 : TD_SCRAM_ALL;
    size_t n = json_is_array(m) ? json_array_size(m) : m ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_is_array(m) ? json_array_get(m, i) : m;
        int bit = json_is_string(x) ? td_scram_mechanism_parse(json_string_value(x)) : 0;
        if (!bit) {
            http_respond_error(hc, 400, "invalid_argument",
                               "'mechanisms': SCRAM-SHA-256, SCRAM-SHA-512 or both");
            return false;
        }
        *mask |= bit;
    }
    if (m && !*mask) {
        http_respond_error(hc, 400, "invalid_argument", "'mechanisms' is empty");
        return false;
    }
    if (it && (!json_is_integer(it) || json_integer_value(it) < TD_SCRAM_ITERATIONS_MIN ||
               json_integer_value(it) > TD_SCRAM_ITERATIONS_MAX)) {
        http_respond_error(hc, 400, "invalid_argument", "'iterations' must be 4096 to 16384");
        return false;
    }
    *iterations = it ? (int32_t)json_integer_value(it) : 0;
    return true;
}

/* POST /v1/users (name NULL: from the body) and PUT /v1/users/{name}/password. */
static void user_put(hconn *hc, const char *path_name)
{
    json_t *b = http_body_json(hc, true);
    if (!b)
        return;
    static const char *const add_keys[] = {"name", "password", "mechanisms", "iterations", NULL};
    static const char *const pw_keys[] = {"password", "mechanisms", "iterations", NULL};
    json_t *jname = json_object_get(b, "name"), *jpw = json_object_get(b, "password");
    const char *name = path_name ? path_name : json_string_value(jname);
    int mask;
    int32_t iters;
    if (!http_only_keys(hc, b, path_name ? pw_keys : add_keys) ||
        !read_mechanisms(hc, b, &mask, &iters))
        goto out;
    if (!name || !json_is_string(jpw)) {
        http_respond_error(hc, 400, "invalid_argument",
                           path_name ? "'password' (a string) is required"
                                     : "'name' and 'password' (strings) are required");
        goto out;
    }
    const char *pw = json_string_value(jpw);
    size_t pwlen = json_string_length(jpw);
    int rc = path_name ? td_user_passwd(hc->s->e, name, pw, pwlen, mask, iters)
                       : td_user_add(hc->s->e, name, pw, pwlen, mask, iters);
    if (rc) {
        http_respond_td_error(hc, rc);
        goto out;
    }
    audit(hc, TD_AUDIT_USER_CHANGE, path_name ? "changed the password of user" : "added user",
          name);
    answer_user(hc, path_name ? 200 : 201, name);
out:
    /* The password's bytes: wiped before jansson frees them. */
    if (json_is_string(jpw))
        OPENSSL_cleanse((char *)json_string_value(jpw), json_string_length(jpw));
    json_decref(b);
}

void http_route_users(hconn *hc, const char *name, const char *action)
{
    if (!name) {
        if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD"))
            return users_list(hc);
        if (http_method_is(hc, "POST"))
            return user_put(hc, NULL);
        return http_respond_method_not_allowed(hc, "GET, HEAD, POST");
    }
    if (!action) {
        if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD"))
            return answer_user(hc, 200, name);
        if (http_method_is(hc, "DELETE")) {
            int rc = td_user_remove(hc->s->e, name);
            if (rc)
                return http_respond_td_error(hc, rc);
            audit(hc, TD_AUDIT_USER_CHANGE, "removed (with its API tokens) user", name);
            return http_respond_json(hc, 204, NULL, NULL);
        }
        return http_respond_method_not_allowed(hc, "GET, HEAD, DELETE");
    }
    if (strcmp(action, "password") != 0)
        return http_respond_error(hc, 404, "not_found", "no such path");
    if (!http_method_is(hc, "PUT"))
        return http_respond_method_not_allowed(hc, "PUT");
    /* Users change their own password; other users' need an administrator. */
    td_principal p;
    http_principal(hc, &p);
    if (!(p.user && strcmp(p.user, name) == 0) &&
        !http_require(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER))
        return;
    user_put(hc, name);
}

/* ---------------------------------------------------------------------------------------------
 * Tokens
 */
static json_t *token_json(const td_token_info *t)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "id", t->id, "user", t->user, "description",
                          t->description, "created_ms", (json_int_t)t->created_ms);
    json_object_set_new(o, "expires_ms", t->expires_ms ? json_integer(t->expires_ms) : json_null());
    json_object_set_new(o, "expired", json_boolean(t->expires_ms && t->expires_ms <= td_wall_ms()));
    return o;
}

/* The user whose tokens a request manages: `named` (NULL: the principal itself); false after
 * answering when the principal may not (another user's tokens need an administrator). */
static bool token_owner(hconn *hc, const char *named, const char **owner)
{
    td_principal p;
    http_principal(hc, &p);
    *owner = named ? named : p.user;
    if (*owner && p.user && strcmp(*owner, p.user) == 0)
        return true;
    if (!http_require(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER))
        return false;
    return true;
}

static void tokens_list(hconn *hc)
{
    char user[TD_USER_NAME_MAX + 1];
    int q = http_query_get(hc->req.query, "user", user, sizeof(user));
    if (q < 0)
        return http_respond_error(hc, 400, "invalid_argument", "a bad 'user' parameter");
    const char *owner;
    td_principal p;
    http_principal(hc, &p);
    /* Without ?user=, one's own tokens; an administrator without a user of its own (anonymous
     * on a loopback listener) sees every user's. */
    char all[8];
    int qa = http_query_get(hc->req.query, "all", all, sizeof(all));
    if (qa > 0 && strcmp(all, "true") == 0) {
        if (q > 0)
            return http_respond_error(hc, 400, "invalid_argument", "give ?all or ?user, not both");
        if (!http_require(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER))
            return;
        owner = NULL;
    } else if (!token_owner(hc, q > 0 ? user : NULL, &owner)) {
        return;
    }
    td_token_info *v;
    size_t n;
    int rc = td_token_list(hc->s->e, owner, &v, &n);
    if (rc)
        return http_respond_td_error(hc, rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, token_json(&v[i]));
    free(v);
    http_respond_json(hc, 200, json_pack("{s:o}", "tokens", arr), NULL);
}

static void token_create(hconn *hc)
{
    json_t *b = http_body_json(hc, true);
    if (!b)
        return;
    static const char *const keys[] = {"user", "expires_in_ms", "expires_at", "description", NULL};
    json_t *ju = json_object_get(b, "user"), *jin = json_object_get(b, "expires_in_ms");
    json_t *jat = json_object_get(b, "expires_at"), *jd = json_object_get(b, "description");
    int64_t expires = 0;
    const char *owner;
    if (!http_only_keys(hc, b, keys))
        goto out;
    if ((ju && !json_is_string(ju)) || (jd && !json_is_string(jd)) || (jin && jat) ||
        (jin && (!json_is_integer(jin) || json_integer_value(jin) < 1)) ||
        (jat && !http_json_time(jat, &expires))) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'user' and 'description' are strings; the expiry is 'expires_in_ms' "
                           "(milliseconds from now, > 0) or 'expires_at' (a time), not both");
        goto out;
    }
    if (jin)
        expires = td_wall_ms() + json_integer_value(jin);
    if (!token_owner(hc, json_string_value(ju), &owner))
        goto out;
    if (!owner) {
        http_respond_error(hc, 400, "invalid_argument",
                           "an anonymous client has no tokens: name their 'user'");
        goto out;
    }
    char token[TD_TOKEN_LEN + 1];
    td_token_info info;
    int rc = td_token_create(hc->s->e, owner, expires, json_string_value(jd), token, &info);
    if (rc) {
        http_respond_td_error(hc, rc);
        goto out;
    }
    char what[64];
    snprintf(what, sizeof(what), "created API token %s for user", info.id);
    audit(hc, TD_AUDIT_TOKEN_CHANGE, what, owner);
    json_t *o = token_json(&info);
    json_object_set_new(o, "token", json_string(token));
    OPENSSL_cleanse(token, sizeof(token));
    http_respond_json(hc, 201, o, "Cache-Control: no-store\r\n");
out:
    json_decref(b);
}

void http_route_tokens(hconn *hc, const char *id)
{
    if (!id) {
        if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD"))
            return tokens_list(hc);
        if (http_method_is(hc, "POST"))
            return token_create(hc);
        return http_respond_method_not_allowed(hc, "GET, HEAD, POST");
    }
    if (!http_method_is(hc, "DELETE"))
        return http_respond_method_not_allowed(hc, "DELETE");
    /* One's own token; any with Alter on the cluster. A token of someone else is "not found"
     * to a user who may not manage it. */
    td_principal p;
    http_principal(hc, &p);
    bool admin = http_is_admin(hc);
    if (!admin && !p.user)
        return (void)http_require(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER);
    int rc = td_token_revoke(hc->s->e, id, admin ? NULL : p.user);
    if (rc)
        return http_respond_td_error(hc, rc);
    audit(hc, TD_AUDIT_TOKEN_CHANGE, "revoked API token", id);
    http_respond_json(hc, 204, NULL, NULL);
}
