/*
 * test_sse.c: the command's Server-Sent Events reader (src/cli/sse.c): the format's rules, and
 * the same events whichever way the stream is cut into pieces.
 */
#include "cli/sse.h"
#include "test.h"

typedef struct seen {
    char text[4096]; /* "event|id|data" per event, separated by newlines */
    size_t n;
    int events;
    int stop_after; /* 0: never stop */
} seen;

static bool on_event(void *arg, const char *event, const char *id, const char *data, size_t n)
{
    seen *s = arg;
    ASSERT_EQ(data[n], 0);
    s->n += (size_t)snprintf(s->text + s->n, sizeof(s->text) - s->n, "%s|%s|%.*s\n", event, id,
                             (int)n, data);
    s->events++;
    return s->stop_after == 0 || s->events < s->stop_after;
}

/* Feeds the stream in one piece, then cut at every position, then byte by byte: the events must
 * be the same each time. */
static void check(const char *stream, const char *want)
{
    size_t len = strlen(stream);
    for (size_t cut = 0; cut <= len + 1; cut++) {
        sse_reader r;
        sse_init(&r);
        seen s = {0};
        if (cut <= len) {
            ASSERT_EQ(sse_feed(&r, stream, cut, on_event, &s), 0);
            ASSERT_EQ(sse_feed(&r, stream + cut, len - cut, on_event, &s), 0);
        } else {
            for (size_t i = 0; i < len; i++)
                ASSERT_EQ(sse_feed(&r, stream + i, 1, on_event, &s), 0);
        }
        if (strcmp(s.text, want) != 0)
            TEST_FAIL_("cut at %zu: got\n%s\nwant\n%s", cut, s.text, want);
        sse_free(&r);
    }
}

static void test_fields(void)
{
    check("data: hello\n\n", "message||hello\n");
    /* One space after the colon is dropped, no more; no colon: an empty value. */
    check("data:  two\n\ndata:x\n\ndata\n\n", "message|| two\nmessage||x\nmessage||\n");
    /* Several data lines join with newlines. */
    check("data: a\ndata: b\n\n", "message||a\nb\n");
    /* event names one event only; id stays for the following events. */
    check("event: subscribed\nid: c0\ndata: {}\n\ndata: x\n\nid: c1\ndata: y\n\n",
          "subscribed|c0|{}\nmessage|c0|x\nmessage|c1|y\n");
    /* An empty id field clears it. */
    check("id: a\ndata: 1\n\nid\ndata: 2\n\n", "message|a|1\nmessage||2\n");
    /* Comments (heartbeats), retry and unknown fields do nothing; no data, no event. */
    check(": heartbeat\nretry: 1000\nfoo: bar\n\nevent: x\n\ndata: z\n\n", "message||z\n");
    /* An event not ended by a blank line is not dispatched. */
    check("data: done\n\ndata: partial\n", "message||done\n");
    /* A leading byte order mark is skipped, once. */
    check("\xef\xbb\xbf"
          "data: bom\n\n",
          "message||bom\n");
    /* An id with a colon keeps it (the broker's cursors have none, but ids may). */
    check("id: a:b/0/1;x:0=2\ndata: q\n\n", "message|a:b/0/1;x:0=2|q\n");
}

static void test_line_endings(void)
{
    check("data: a\r\n\r\ndata: b\r\rdata: c\n\n", "message||a\nmessage||b\nmessage||c\n");
    /* CR then LF across pieces is one line end: check() cuts between them. */
    check("data: x\r\n\r\n", "message||x\n");
    /* LF CR is two line ends (a blank line). */
    check("data: y\n\r", "message||y\n");
}

static void test_stop_and_restart(void)
{
    sse_reader r;
    sse_init(&r);
    seen s = {.stop_after = 1};
    const char *two = "id: 1\ndata: a\n\nid: 2\ndata: b\n\n";
    ASSERT_EQ(sse_feed(&r, two, strlen(two), on_event, &s), 1);
    ASSERT_EQ(s.events, 1);
    ASSERT_STR_EQ(r.id, "1");
    /* A new connection: the half-read line is dropped, the id kept. */
    s.stop_after = 0;
    ASSERT_EQ(sse_feed(&r, "data: half", 10, on_event, &s), 0);
    sse_restart(&r);
    ASSERT_EQ(sse_feed(&r, "data: new\n\n", 11, on_event, &s), 0);
    ASSERT_STR_EQ(s.text, "message|1|a\nmessage|1|new\n");
    sse_free(&r);
}

static void test_long_line_refused(void)
{
    sse_reader r;
    sse_init(&r);
    seen s = {0};
    size_t n = 1 << 20;
    char *chunk = malloc(n);
    ASSERT(chunk);
    memset(chunk, 'a', n);
    int rc = 0;
    for (size_t i = 0; i <= SSE_MAX_LINE / n && rc == 0; i++)
        rc = sse_feed(&r, chunk, n, on_event, &s);
    ASSERT_EQ(rc, -1);
    ASSERT_EQ(s.events, 0);
    sse_free(&r);
    free(chunk);
}

TEST_MAIN(TEST(test_fields), TEST(test_line_endings), TEST(test_stop_and_restart),
          TEST(test_long_line_refused))
