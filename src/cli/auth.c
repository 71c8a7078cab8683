/*
 * auth.c: the credentials the tidings command sends to a broker (docs/cli.md#credentials):
 * a user's password as HTTP Basic, or an API token as a bearer token, on every request of
 * --server mode; and the CA that verifies an https:// broker.
 *
 *   --user U            with the password from --password-file F, --password-stdin (its first
 *                       line) or $TIDINGS_PASSWORD; $TIDINGS_USER when --user is not given
 *   --token-file F      an API token (tidings token create); else $TIDINGS_TOKEN
 *   --cacert F          PEM CAs for https:// brokers; else $TIDINGS_CACERT
 *
 * main.c takes these options out of the command line before the command parses the rest, so
 * every command accepts them. Two commands keep some: `tidings user add|passwd` read the password
 * of the user they set with --password-file / --password-stdin (their own credentials then come
 * from $TIDINGS_PASSWORD or a token), and `tidings token` reads --user locally as the owner.
 * A password or token is never taken from the command line, where ps shows it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/remote.h"

static struct {
    const char *user, *password_file, *token_file, *cacert;
    bool password_stdin;
    bool loaded;
    char password[TD_USER_PASSWORD_MAX + 2];
    size_t password_len;
    char token[1024];
} auth;

/* Whether argv[i] is option `name` ("--user"), as "--user V" or "--user=V": *value gets V and
 * *used the arguments it took (0: not this option). */
static int take(int argc, char **argv, int i, const char *name, bool has_value, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[i], name, n) != 0)
        return 0;
    if (!has_value)
        return argv[i][n] == 0 ? 1 : 0;
    if (argv[i][n] == '=') {
        *value = argv[i] + n + 1;
        return 1;
    }
    if (argv[i][n] != 0)
        return 0;
    if (i + 1 >= argc) {
        *value = NULL;
        return 1;
    }
    *value = argv[i + 1];
    return 2;
}

int cli_auth_take(int *argc, char **argv, const char *verb)
{
    if (!strcmp(verb, "serve"))
        return EXIT_OK;
    /* `user add|passwd` read the password of the user they set with these options. */
    bool own_password = false;
    static const char *const valued[] = {"-d",     "--data",       "-s",       "--server",
                                         "-m",     "--mechanism",  "-i",       "--iterations",
                                         "--user", "--token-file", "--cacert", "--password-file",
                                         NULL};
    for (int i = 1; !strcmp(verb, "user") && i < *argc && !own_password; i++) {
        bool value = false;
        for (size_t k = 0; valued[k] && i > 1; k++)
            value = value || !strcmp(argv[i - 1], valued[k]);
        own_password = !value && (!strcmp(argv[i], "add") || !strcmp(argv[i], "passwd"));
    }
    int out = 1;
    for (int i = 1; i < *argc;) {
        const char *v = NULL;
        int used;
        bool stdin_flag = false;
        if (!strcmp(argv[i], "--")) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if ((used = take(*argc, argv, i, "--user", true, &v)))
            auth.user = v;
        else if ((used = take(*argc, argv, i, "--token-file", true, &v)))
            auth.token_file = v;
        else if ((used = take(*argc, argv, i, "--cacert", true, &v)))
            auth.cacert = v;
        else if (!own_password && (used = take(*argc, argv, i, "--password-file", true, &v)))
            auth.password_file = v;
        else if (!own_password && (used = take(*argc, argv, i, "--password-stdin", false, &v)))
            stdin_flag = auth.password_stdin = true;
        if (!used) {
            argv[out++] = argv[i++];
            continue;
        }
        if (!stdin_flag && !v)
            return cli_usage_error(verb, "%s needs a value", argv[i]);
        i += used;
    }
    *argc = out;
    argv[out] = NULL;
    return EXIT_OK;
}

const char *cli_auth_user(void)
{
    return auth.user;
}

/* Reads a secret of at most cap - 1 bytes: a whole file, or (fd 0) the first line only, so
 * that the rest of standard input stays for the command (produce reads events from it). One
 * trailing newline is dropped. */
static int read_secret(int fd, bool line, char *buf, size_t cap, size_t *len, const char *from)
{
    size_t n = 0;
    for (;;) {
        if (n == cap - 1) {
            fprintf(stderr, "tidings: the secret from %s is too long\n", from);
            return EXIT_USAGE;
        }
        ssize_t r = read(fd, buf + n, line ? 1 : cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "tidings: reading %s: %s\n", from, strerror(errno));
            return EXIT_RUNTIME;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (line && buf[n - 1] == '\n')
            break;
    }
    if (n && buf[n - 1] == '\n')
        n--;
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = 0;
    if (memchr(buf, '\n', n)) {
        fprintf(stderr, "tidings: the secret from %s has more than one line\n", from);
        return EXIT_USAGE;
    }
    *len = n;
    return EXIT_OK;
}

static int read_file_secret(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "tidings: cannot read %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    int code = read_secret(fd, false, buf, cap, len, path);
    close(fd);
    return code;
}

int cli_auth_load(void)
{
    if (auth.loaded)
        return EXIT_OK;
    auth.loaded = true;
    const char *env_user = getenv("TIDINGS_USER"), *env_pw = getenv("TIDINGS_PASSWORD");
    const char *env_token = getenv("TIDINGS_TOKEN"), *env_ca = getenv("TIDINGS_CACERT");
    if (!auth.user && env_user && *env_user)
        auth.user = env_user;
    if (!auth.cacert && env_ca && *env_ca)
        auth.cacert = env_ca;
    size_t len;
    int code;
    if (auth.token_file) {
        if ((code = read_file_secret(auth.token_file, auth.token, sizeof(auth.token), &len)))
            return code;
    } else if (env_token && *env_token) {
        snprintf(auth.token, sizeof(auth.token), "%s", env_token);
    }
    bool pw_source = auth.password_file || auth.password_stdin || (env_pw && *env_pw);
    if (auth.token[0] && (auth.password_file || auth.password_stdin)) {
        fprintf(stderr, "tidings: give a token or a password, not both\n");
        return EXIT_USAGE;
    }
    if (auth.token[0])
        return EXIT_OK; /* a token wins over TIDINGS_USER / TIDINGS_PASSWORD */
    if (!auth.user) {
        if (auth.password_file || auth.password_stdin) {
            fprintf(stderr, "tidings: a password needs its user: --user NAME\n");
            return EXIT_USAGE;
        }
        return EXIT_OK;
    }
    if (!pw_source) {
        fprintf(stderr,
                "tidings: --user %s needs a password: --password-file FILE, "
                "--password-stdin or $TIDINGS_PASSWORD (never on the command line)\n",
                auth.user);
        return EXIT_USAGE;
    }
    if (auth.password_file)
        code = read_file_secret(auth.password_file, auth.password, sizeof(auth.password), &len);
    else if (auth.password_stdin)
        code = read_secret(STDIN_FILENO, true, auth.password, sizeof(auth.password), &len,
                           "standard input");
    else {
        snprintf(auth.password, sizeof(auth.password), "%s", env_pw);
        len = strlen(auth.password);
        code = EXIT_OK;
    }
    auth.password_len = len;
    return code;
}

void cli_auth_apply(void *curl)
{
    if (auth.cacert)
        curl_easy_setopt(curl, CURLOPT_CAINFO, auth.cacert);
    if (auth.token[0]) {
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, auth.token);
    } else if (auth.user && auth.loaded) {
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(curl, CURLOPT_USERNAME, auth.user);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, auth.password);
    }
}

const char *cli_auth_who(void)
{
    return auth.token[0] ? "the API token's user" : auth.user ? auth.user : NULL;
}
