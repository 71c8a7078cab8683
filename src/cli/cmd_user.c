/*
 * cmd_user.c: tidings user add|passwd|remove|list, on a data directory (local mode).
 *
 * A password never comes from the command line, where `ps` and shell histories show it: it is
 * read from a file (--password-file), from standard input (--password-stdin, or whenever
 * standard input is not a terminal), or typed at a prompt with echo off (twice, to catch a
 * typo). The buffers that held it are wiped before the command exits.
 *
 * Remote mode needs authentication on the HTTP API, which is not built yet: with --server (or
 * $TIDINGS_SERVER) the command says so and changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/remote.h"

static const char user_usage[] =
    "usage: tidings user <action> [options]\n"
    "\n"
    "  add NAME [--password-file F | --password-stdin] [--mechanism M] [--iterations N]\n"
    "  passwd NAME [--password-file F | --password-stdin] [--mechanism M] [--iterations N]\n"
    "  remove NAME\n"
    "  list [--json]\n"
    "\n"
    "The password is read from --password-file, from standard input, or typed at a prompt\n"
    "(with echo off) when standard input is a terminal; never from the command line.\n"
    "\n"
    "options:\n"
    "  -d, --data DIR          data directory (default: $TIDINGS_DATA, else ./data)\n"
    "      --password-file F   read the password from file F (one trailing newline dropped)\n"
    "      --password-stdin    read the password from standard input (likewise)\n"
    "  -m, --mechanism M       SCRAM-SHA-256, SCRAM-SHA-512 or both (default: both)\n"
    "  -i, --iterations N      SCRAM iteration count, 4096 to 16384 (default: 4096)\n"
    "      --json              machine-readable output (list)\n"
    "  -s, --server URL        through a running broker (or $TIDINGS_SERVER), as an\n"
    "                          administrator: --user U with $TIDINGS_PASSWORD, or\n"
    "                          --token-file F / $TIDINGS_TOKEN (see 'tidings --help')\n"
    "  -h, --help              this help\n";

typedef struct user_opts {
    const char *data, *server, *password_file;
    bool password_stdin, json, have_mechanism, have_iterations;
    int mechanisms;
    int64_t iterations;
} user_opts;

/* Reads at most TD_USER_PASSWORD_MAX + 2 bytes from fd into buf (one more than a password and
 * its "\r\n" may take, so that a longer input is seen as too long). */
static int read_secret_fd(int fd, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return 0;
}

/* Drops one trailing "\n" or "\r\n"; a password of one line is the rule (a newline inside is
 * almost surely a mistake in the file). */
static int finish_secret(char *buf, size_t *len, size_t cap, const char *from)
{
    if (*len == cap) {
        fprintf(stderr, "tidings: the password from %s is longer than %d bytes\n", from,
                TD_USER_PASSWORD_MAX);
        return EXIT_USAGE;
    }
    if (*len && buf[*len - 1] == '\n')
        (*len)--;
    if (*len && buf[*len - 1] == '\r')
        (*len)--;
    if (memchr(buf, '\n', *len)) {
        fprintf(stderr, "tidings: the password from %s has more than one line\n", from);
        return EXIT_USAGE;
    }
    buf[*len] = 0;
    if (td_user_password_validate(buf, *len) != 0) {
        fprintf(stderr, "tidings: the password from %s: %s\n", from, td_last_error());
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Reads one line from the terminal with echo off. */
static int prompt_secret(const char *prompt, char *buf, size_t cap, size_t *len)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "tidings: cannot open the terminal to ask for the password: %s\n",
                strerror(errno));
        return EXIT_RUNTIME;
    }
    struct termios old, quiet;
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* Nothing to do: the read below still works without the prompt. */
    }
    size_t n = 0;
    while (n < cap) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n')
            break;
        buf[n++] = c;
    }
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* As above. */
    }
    close(fd);
    *len = n;
    return EXIT_OK;
}

/* The password into buf (NUL-terminated, *len bytes), from the source the options name. */
static int get_password(const user_opts *o, const char *name, char *buf, size_t cap, size_t *len)
{
    int rc;
    if (o->password_file) {
        int fd = open(o->password_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "tidings: cannot read the password file %s: %s\n", o->password_file,
                    strerror(errno));
            return EXIT_USAGE;
        }
        rc = read_secret_fd(fd, buf, cap, len);
        close(fd);
        if (rc) {
            fprintf(stderr, "tidings: reading the password file %s: %s\n", o->password_file,
                    strerror(-rc));
            return EXIT_RUNTIME;
        }
        return finish_secret(buf, len, cap, o->password_file);
    }
    if (o->password_stdin || !isatty(STDIN_FILENO)) {
        if ((rc = read_secret_fd(STDIN_FILENO, buf, cap, len)) != 0) {
            fprintf(stderr, "tidings: reading the password from standard input: %s\n",
                    strerror(-rc));
            return EXIT_RUNTIME;
        }
        return finish_secret(buf, len, cap, "standard input");
    }
    char prompt[TD_USER_NAME_MAX + 32], again[TD_USER_PASSWORD_MAX + 2];
    size_t again_len = 0;
    snprintf(prompt, sizeof(prompt), "Password for %s: ", name);
    if ((rc = prompt_secret(prompt, buf, cap, len)) ||
        (rc = prompt_secret("Retype the password: ", again, sizeof(again), &again_len)))
        return rc;
    bool same = again_len == *len && memcmp(again, buf, *len) == 0;
    explicit_bzero(again, sizeof(again));
    if (!same) {
        fprintf(stderr, "tidings: the passwords do not match; nothing changed\n");
        return EXIT_USAGE;
    }
    return finish_secret(buf, len, cap, "the terminal");
}

static void print_list(const td_user_info *v, size_t n, bool json)
{
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *mechs = json_array();
            if (v[i].mechanisms & TD_SCRAM_SHA_256)
                json_array_append_new(mechs, json_pack("{s:s,s:i}", "mechanism", "SCRAM-SHA-256",
                                                       "iterations", v[i].sha256_iterations));
            if (v[i].mechanisms & TD_SCRAM_SHA_512)
                json_array_append_new(mechs, json_pack("{s:s,s:i}", "mechanism", "SCRAM-SHA-512",
                                                       "iterations", v[i].sha512_iterations));
            json_array_append_new(arr,
                                  json_pack("{s:s,s:o}", "name", v[i].name, "credentials", mechs));
        }
        json_t *o = json_pack("{s:o}", "users", arr);
        cli_json_print(o);
        json_decref(o);
        return;
    }
    printf("%-32s %s\n", "NAME", "MECHANISMS");
    for (size_t i = 0; i < n; i++) {
        char m[96] = "";
        if (v[i].mechanisms & TD_SCRAM_SHA_256)
            snprintf(m, sizeof(m), "SCRAM-SHA-256 (%" PRId32 ")", v[i].sha256_iterations);
        if (v[i].mechanisms & TD_SCRAM_SHA_512)
            snprintf(m + strlen(m), sizeof(m) - strlen(m), "%sSCRAM-SHA-512 (%" PRId32 ")",
                     m[0] ? ", " : "", v[i].sha512_iterations);
        printf("%-32s %s\n", v[i].name, m);
    }
}

/* cli_open, with the hints that fit users. */
static int user_open(const char *data, bool create, td_engine **e)
{
    return cli_open_hinted(data, create, "give --data DIR, the broker's data directory",
                           "a broker runs on it: give --server URL to manage users through it, "
                           "as an administrator",
                           e);
}

/* The same through a broker: /v1/users (docs/http-api.md#users-and-tokens). The password goes
 * in the request's JSON body; the broker derives the credentials. */
static int user_remote(const char *server, const char *action, const char *name, const user_opts *o)
{
    bool adding = !strcmp(action, "add"), setting = adding || !strcmp(action, "passwd");
    char pw[TD_USER_PASSWORD_MAX + 2];
    size_t pwlen = 0;
    int code;
    if (setting && (code = get_password(o, name, pw, sizeof(pw), &pwlen)) != EXIT_OK)
        goto out;
    cli_remote r;
    if ((code = cli_remote_open(server, &r)) != EXIT_OK)
        goto out;
    char *esc = name ? cli_remote_escape(&r, name) : NULL;
    char path[2048];
    json_t *ans = NULL, *body = NULL;
    if (setting) {
        body = json_pack("{s:s%}", "password", pw, pwlen);
        if (adding)
            json_object_set_new(body, "name", json_string(name));
        if (o->mechanisms != TD_SCRAM_ALL)
            json_object_set_new(body, "mechanisms",
                                json_string(td_scram_mechanism_name(o->mechanisms)));
        if (o->have_iterations)
            json_object_set_new(body, "iterations", json_integer(o->iterations));
    }
    if (name && !esc) {
        code = EXIT_RUNTIME;
    } else if (setting && !body) {
        fprintf(stderr, "tidings: a password sent to the broker must be UTF-8 (JSON)\n");
        code = EXIT_USAGE;
    } else if (adding) {
        if ((code = cli_remote_call(&r, "POST", "/v1/users", body, NULL, "adding user")) == 0)
            printf("added user %s\n", name);
    } else if (setting) {
        snprintf(path, sizeof(path), "/v1/users/%s/password", esc);
        if ((code = cli_remote_call(&r, "PUT", path, body, NULL, "changing the password")) == 0)
            printf("changed the password of user %s\n", name);
    } else if (!strcmp(action, "remove")) {
        snprintf(path, sizeof(path), "/v1/users/%s", esc);
        if ((code = cli_remote_call(&r, "DELETE", path, NULL, NULL, "removing user")) == 0)
            printf("removed user %s\n", name);
    } else if ((code = cli_remote_call(&r, "GET", "/v1/users", NULL, &ans, "listing users")) == 0) {
        json_t *arr = json_object_get(ans, "users"), *u;
        size_t i, n = json_array_size(arr);
        td_user_info *v = calloc(n ? n : 1, sizeof(*v));
        json_array_foreach(arr, i, u)
        {
            if (!v)
                break;
            json_t *it = json_object_get(u, "iterations");
            snprintf(v[i].name, sizeof(v[i].name), "%s", cli_json_str(u, "name"));
            v[i].sha256_iterations = (int32_t)cli_json_int(it, "SCRAM-SHA-256");
            v[i].sha512_iterations = (int32_t)cli_json_int(it, "SCRAM-SHA-512");
            v[i].mechanisms = (v[i].sha256_iterations ? TD_SCRAM_SHA_256 : 0) |
                              (v[i].sha512_iterations ? TD_SCRAM_SHA_512 : 0);
        }
        if (v)
            print_list(v, n, o->json);
        else
            code = EXIT_RUNTIME;
        free(v);
    }
    if (body) {
        /* The copy of the password inside the JSON object. */
        json_t *p = json_object_get(body, "password");
        if (json_is_string(p))
            explicit_bzero((char *)json_string_value(p), json_string_length(p));
    }
    json_decref(body);
    json_decref(ans);
    free(esc);
    cli_remote_close(&r);
out:
    explicit_bzero(pw, sizeof(pw));
    return code;
}

static int user_local(const char *action, const char *name, const user_opts *o)
{
    bool adding = !strcmp(action, "add"), setting = adding || !strcmp(action, "passwd");
    char pw[TD_USER_PASSWORD_MAX + 2];
    size_t pwlen = 0;
    int code;
    /* The password first: a typo at the prompt leaves the data directory untouched. */
    if (setting && (code = get_password(o, name, pw, sizeof(pw), &pwlen)) != EXIT_OK)
        goto out;
    td_engine *e;
    if ((code = user_open(cli_data_dir(o->data), adding, &e)) != EXIT_OK)
        goto out;
    int rc;
    int32_t iters = (int32_t)o->iterations;
    if (adding) {
        if ((rc = td_user_add(e, name, pw, pwlen, o->mechanisms, iters)) == 0)
            printf("added user %s\n", name);
        else
            code = cli_fail("adding user", rc);
    } else if (setting) {
        if ((rc = td_user_passwd(e, name, pw, pwlen, o->mechanisms, iters)) == 0)
            printf("changed the password of user %s\n", name);
        else
            code = cli_fail("changing the password", rc);
    } else if (!strcmp(action, "remove")) {
        if ((rc = td_user_remove(e, name)) == 0)
            printf("removed user %s\n", name);
        else
            code = cli_fail("removing user", rc);
    } else {
        td_user_info *v;
        size_t n;
        if ((rc = td_user_list(e, &v, &n)) == 0) {
            print_list(v, n, o->json);
            free(v);
        } else {
            code = cli_fail("listing users", rc);
        }
    }
    code = cli_close(e, code);
out:
    explicit_bzero(pw, sizeof(pw));
    return code;
}

static int parse_mechanism(const char *v, int *out)
{
    if (!strcasecmp(v, "both") || !strcasecmp(v, "all"))
        *out = TD_SCRAM_ALL;
    else if (!(*out = td_scram_mechanism_parse(v)))
        return cli_usage_error("user",
                               "--mechanism takes SCRAM-SHA-256, SCRAM-SHA-512 or both, "
                               "not '%s'",
                               v);
    return EXIT_OK;
}

int cmd_user(int argc, char **argv)
{
    enum { OPT_PW_FILE = 256, OPT_PW_STDIN, OPT_JSON, OPT_PASSWORD };
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"server", required_argument, NULL, 's'},
        {"password-file", required_argument, NULL, OPT_PW_FILE},
        {"password-stdin", no_argument, NULL, OPT_PW_STDIN},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"mechanism", required_argument, NULL, 'm'},
        {"iterations", required_argument, NULL, 'i'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    user_opts o = {.mechanisms = TD_SCRAM_ALL};
    int c, code;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:s:m:i:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.data = optarg;
            break;
        case 's':
            o.server = optarg;
            break;
        case OPT_PW_FILE:
            o.password_file = optarg;
            break;
        case OPT_PW_STDIN:
            o.password_stdin = true;
            break;
        case OPT_PASSWORD:
            /* Refused on purpose: the argument list is visible to every user of the machine. */
            return cli_usage_error("user", "a password is never taken on the command line (ps "
                                           "shows it): use --password-file, --password-stdin "
                                           "or the prompt");
        case 'm':
            if ((code = parse_mechanism(optarg, &o.mechanisms)) != EXIT_OK)
                return code;
            o.have_mechanism = true;
            break;
        case 'i':
            if (!cli_parse_i64(optarg, &o.iterations) || o.iterations < TD_SCRAM_ITERATIONS_MIN ||
                o.iterations > TD_SCRAM_ITERATIONS_MAX)
                return cli_usage_error("user", "--iterations takes %d to %d, not '%s'",
                                       TD_SCRAM_ITERATIONS_MIN, TD_SCRAM_ITERATIONS_MAX, optarg);
            o.have_iterations = true;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case 'h':
            fputs(user_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("user", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("user", "user needs an action: add, passwd, remove or list");
    const char *action = argv[optind], *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool list = !strcmp(action, "list");
    if (!list && strcmp(action, "add") && strcmp(action, "passwd") && strcmp(action, "remove"))
        return cli_usage_error("user", "unknown user action '%s'", action);
    if (argc - optind > (list ? 1 : 2))
        return cli_usage_error("user",
                               "unexpected argument '%s' (a password is never taken on "
                               "the command line)",
                               argv[optind + (list ? 1 : 2)]);
    if (!list && !name)
        return cli_usage_error("user", "user %s needs a user name", action);
    bool setting = !strcmp(action, "add") || !strcmp(action, "passwd");
    if (!setting && (o.password_file || o.password_stdin || o.have_mechanism || o.have_iterations))
        return cli_usage_error("user", "user %s takes no password, mechanism or iterations",
                               action);
    if (o.password_file && o.password_stdin)
        return cli_usage_error("user", "give --password-file or --password-stdin, not both");
    if (o.json && !list)
        return cli_usage_error("user", "--json is for user list");
    if (name && td_user_name_validate(name) != 0)
        return cli_fail("user name", TD_ENAME);
    const char *server = cli_server(o.server);
    if (server)
        return user_remote(server, action, name, &o);
    return user_local(action, name, &o);
}
