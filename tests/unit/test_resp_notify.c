/*
 * test_resp_notify.c: notify-keyspace-events as Redis 7.0 reads and writes it (the pure part of
 * src/proto/resp/notify.c): every class character, A and what it leaves out (m, n), refusal of
 * anything else (a NUL included), and the canonical text CONFIG GET shows.
 */
#include <string.h>

#include "proto/resp/resp_int.h"
#include "test.h"

static const char *canon(const char *in)
{
    static char out[32];
    int f = resp_notify_flags_parse(in, strlen(in));
    if (f < 0)
        return "<refused>";
    resp_notify_flags_format(f, out);
    return out;
}

static void test_parse(void)
{
    ASSERT_EQ(resp_notify_flags_parse("", 0), 0);
    ASSERT_EQ(resp_notify_flags_parse("K", 1), RESP_NOTIFY_KEYSPACE);
    ASSERT_EQ(resp_notify_flags_parse("E", 1), RESP_NOTIFY_KEYEVENT);
    ASSERT_EQ(resp_notify_flags_parse("t", 1), RESP_NOTIFY_STREAM);
    ASSERT_EQ(resp_notify_flags_parse("g", 1), RESP_NOTIFY_GENERIC);
    ASSERT_EQ(resp_notify_flags_parse("n", 1), RESP_NOTIFY_NEW);
    ASSERT_EQ(resp_notify_flags_parse("m", 1), RESP_NOTIFY_KEY_MISS);
    ASSERT_EQ(resp_notify_flags_parse("A", 1) & (RESP_NOTIFY_NEW | RESP_NOTIFY_KEY_MISS), 0);
    ASSERT_EQ(resp_notify_flags_parse("A", 1) & RESP_NOTIFY_STREAM, RESP_NOTIFY_STREAM);
    ASSERT_EQ(resp_notify_flags_parse("Ag$lshzxeKEtmdn", 15),
              RESP_NOTIFY_ALL | RESP_NOTIFY_KEYSPACE | RESP_NOTIFY_KEYEVENT | RESP_NOTIFY_KEY_MISS |
                  RESP_NOTIFY_NEW);
    /* Anything else is refused, wherever it is; the length bounds the read. */
    ASSERT_EQ(resp_notify_flags_parse("KEA!", 4), -1);
    ASSERT_EQ(resp_notify_flags_parse("k", 1), -1);
    ASSERT_EQ(resp_notify_flags_parse(" ", 1), -1);
    ASSERT_EQ(resp_notify_flags_parse("K\0E", 3), -1);
    ASSERT_EQ(resp_notify_flags_parse("KEA!", 3), resp_notify_flags_parse("KEA", 3));
}

static void test_format(void)
{
    ASSERT_STR_EQ(canon(""), "");
    ASSERT_STR_EQ(canon("KEA"), "AKE");
    ASSERT_STR_EQ(canon("Et"), "tE");
    ASSERT_STR_EQ(canon("tgE"), "gtE");
    ASSERT_STR_EQ(canon("KEAn"), "AKE");
    ASSERT_STR_EQ(canon("nK"), "nK");
    ASSERT_STR_EQ(canon("mK"), "Km");
    ASSERT_STR_EQ(canon("Ag$lshzxeKEtmdn"), "AKEm");
    ASSERT_STR_EQ(canon("g$lshzxetd"), "A");
    ASSERT_STR_EQ(canon("dtexzhsl$g"), "A");
    ASSERT_STR_EQ(canon("g$lshzxet"), "g$lshzxet");
    ASSERT_STR_EQ(canon("Q"), "<refused>");
}

TEST_MAIN(TEST(test_parse), TEST(test_format))
