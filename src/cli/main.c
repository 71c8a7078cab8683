/*
 * main.c: the tidings command: dispatch to verbs, shared helpers (errors and exit codes, the
 * data directory, JSON output).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] =
    "usage: tidings <command> [options]\n"
    "\n"
    "tidings is an event broker: topics of partitioned, replayable logs.\n"
    "\n"
    "commands:\n"
    "  serve                      run the broker on a data directory\n"
    "  topic create|list|describe|alter|add-partitions|delete\n"
    "                             manage topics\n"
    "  produce TOPIC              append one event per line of standard input\n"
    "  consume TOPIC              print events\n"
    "\n"
    "Every command takes --data DIR (default: $TIDINGS_DATA, else ./data) and --help.\n"
    "Local commands work on a data directory that no running broker holds.\n"
    "  tidings --version          print the version\n";

int cli_fail(const char *what, int rc)
{
    const char *detail = td_last_error();
    fprintf(stderr, "tidings: %s: %s\n", what, detail[0] ? detail : td_strerror(rc));
    switch (rc) {
    case TD_ENOTFOUND:
        return EXIT_NOTFOUND;
    case TD_ELOCKED:
    case TD_EFORMAT:
        return EXIT_DATADIR;
    case TD_ENAME:
    case TD_ECONFIG:
    case TD_EINVAL:
        return EXIT_USAGE;
    default:
        return EXIT_RUNTIME;
    }
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tidings: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'tidings %s --help')\n", verb);
    va_end(ap);
    return EXIT_USAGE;
}

const char *cli_data_dir(const char *flag)
{
    if (flag)
        return flag;
    const char *env = getenv("TIDINGS_DATA");
    return env && *env ? env : "./data";
}

int cli_open(const char *data, td_engine **e)
{
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    return td_engine_open(data, &o, e);
}

int cli_open_topic(const char *data, const char *topic, int64_t partition, const char *what,
                   td_engine **e, td_topic_info *info)
{
    int rc = cli_open(cli_data_dir(data), e);
    if (rc)
        return cli_fail("opening the data directory", rc);
    if ((rc = td_topic_describe(*e, topic, info)) != 0) {
        int code = cli_fail(what, rc);
        td_engine_close(*e);
        return code;
    }
    if (partition >= info->partitions) {
        fprintf(stderr, "tidings: %s: topic '%s' has no partition %lld\n", what, topic,
                (long long)partition);
        td_engine_close(*e);
        return EXIT_NOTFOUND;
    }
    return EXIT_OK;
}

bool cli_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

void cli_json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

bool utf8_valid(const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t len;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += len;
    }
    return true;
}

void cli_base64_write(FILE *f, const void *data, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    fputc('"', f);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        fputc(tbl[v >> 18], f);
        fputc(tbl[(v >> 12) & 63], f);
        fputc(i + 1 < n ? tbl[(v >> 6) & 63] : '=', f);
        fputc(i + 2 < n ? tbl[v & 63] : '=', f);
    }
    fputc('"', f);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("tidings %s\n", TD_VERSION_STRING);
        return EXIT_OK;
    }
    /* The library logs to stderr; the local commands keep quiet unless asked. */
    const char *level = getenv("TIDINGS_LOG_LEVEL");
    if (level && td_set_log_level(level) != 0)
        return cli_fail("TIDINGS_LOG_LEVEL", TD_EINVAL);
    if (!level && strcmp(argv[1], "serve") != 0)
        td_set_log_level("warn");
    const char *verb = argv[1];
    if (strcmp(verb, "topic") == 0)
        return cmd_topic(argc - 1, argv + 1);
    if (strcmp(verb, "produce") == 0)
        return cmd_produce(argc - 1, argv + 1);
    if (strcmp(verb, "consume") == 0)
        return cmd_consume(argc - 1, argv + 1);
    if (strcmp(verb, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    fprintf(stderr, "tidings: unknown command '%s'\n(see 'tidings --help')\n", verb);
    return EXIT_USAGE;
}
