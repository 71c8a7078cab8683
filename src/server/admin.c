/*
 * admin.c: the first administrator. A new broker has no users, and until authentication is
 * built nothing needs one; but once it is, a broker that requires it must be reachable by
 * someone. Like the official images of databases (POSTGRES_PASSWORD, RABBITMQ_DEFAULT_PASS),
 * the first start creates one user from the environment, and later starts leave the store
 * alone, so that a password changed with `tidings user passwd` is not reset by a restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "server/server.h"

int server_first_admin(td_engine *e, const char *user)
{
    const char *pw = getenv("TIDINGS_ADMIN_PASSWORD");
    if (!pw || !*pw)
        return 0;
    td_user_info *v = NULL;
    size_t n = 0;
    int rc = td_user_list(e, &v, &n);
    free(v);
    if (rc == 0 && n > 0) {
        TD_INFO("server",
                "TIDINGS_ADMIN_PASSWORD is set but the user store already has %zu "
                "user%s: nothing changed (the first administrator is made only on a "
                "first start; use 'tidings user passwd' to change a password)",
                n, n == 1 ? "" : "s");
    } else if (rc == 0) {
        rc = td_user_add(e, user, pw, strlen(pw), TD_SCRAM_ALL, 0);
        if (rc == 0)
            TD_INFO("server",
                    "created the first administrator, user %s, with the password in "
                    "TIDINGS_ADMIN_PASSWORD (SCRAM-SHA-256 and SCRAM-SHA-512)",
                    user);
        else if (rc == TD_EINVAL || rc == TD_ENAME) {
            char why[256];
            snprintf(why, sizeof(why), "%s", td_last_error());
            rc = td_fail(TD_ECONFIG, "TIDINGS_ADMIN_PASSWORD: %s", why);
        }
    }
    /* Nothing later in this process needs it. The value is wiped where it lies (for the
     * initial environment, the memory /proc/PID/environ shows, so that what the process was
     * started with no longer shows the password), then the variable is removed, so that a
     * child does not inherit it. */
    explicit_bzero((char *)pw, strlen(pw));
    unsetenv("TIDINGS_ADMIN_PASSWORD");
    return rc;
}
