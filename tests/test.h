/*
 * test.h: the in-tree unit test harness (after libuv's). A test file defines functions
 * `static void test_x(void)` and lists them in TEST_LIST; main runs them in order (or only those
 * whose names contain argv[1]), and prints "N passed, N failed". A failed assertion prints both
 * sides and the location, and ends the test process with exit status 1.
 */
#ifndef TD_TEST_H
#define TD_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tidings.h"

#define TEST_FAIL_(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        fflush(stderr);                                                                            \
        exit(1);                                                                                   \
    } while (0)

#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            TEST_FAIL_("ASSERT(%s) failed", #c);                                                   \
    } while (0)

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            TEST_FAIL_("ASSERT_EQ(%s, %s) failed: %lld != %lld", #a, #b, a_, b_);                  \
    } while (0)

#define ASSERT_NE(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ == b_)                                                                              \
            TEST_FAIL_("ASSERT_NE(%s, %s) failed: both %lld", #a, #b, a_);                         \
    } while (0)

#define ASSERT_UEQ(a, b)                                                                           \
    do {                                                                                           \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);             \
        if (a_ != b_)                                                                              \
            TEST_FAIL_("ASSERT_UEQ(%s, %s) failed: 0x%llx != 0x%llx", #a, #b, a_, b_);             \
    } while (0)

#define ASSERT_GE(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ < b_)                                                                               \
            TEST_FAIL_("ASSERT_GE(%s, %s) failed: %lld < %lld", #a, #b, a_, b_);                   \
    } while (0)

#define ASSERT_LE(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ > b_)                                                                               \
            TEST_FAIL_("ASSERT_LE(%s, %s) failed: %lld > %lld", #a, #b, a_, b_);                   \
    } while (0)

/* rc must be 0; prints the code's name and the thread's last error detail otherwise. */
#define ASSERT_OK(expr)                                                                            \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0)                                                                              \
            TEST_FAIL_("%s failed: %d %s (%s) [%s]", #expr, rc_, td_errname(rc_),                  \
                       td_strerror(rc_), td_last_error());                                         \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (strcmp(a_, b_) != 0)                                                                   \
            TEST_FAIL_("ASSERT_STR_EQ(%s, %s) failed: \"%s\" != \"%s\"", #a, #b, a_, b_);          \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0)                                                            \
            TEST_FAIL_("ASSERT_MEM_EQ(%s, %s, %s) failed", #a, #b, #n);                            \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!strstr(h_, n_))                                                                       \
            TEST_FAIL_("\"%s\" does not contain \"%s\"", h_, n_);                                  \
    } while (0)

typedef struct test_entry {
    const char *name;
    void (*fn)(void);
} test_entry;

#define TEST(fn) {#fn, fn}

#define TEST_MAIN(...)                                                                             \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static const test_entry tests_[] = {__VA_ARGS__};                                          \
        int run_ = 0;                                                                              \
        for (size_t i_ = 0; i_ < sizeof(tests_) / sizeof(tests_[0]); i_++) {                       \
            if (argc > 1 && !strstr(tests_[i_].name, argv[1]))                                     \
                continue;                                                                          \
            fprintf(stderr, "-- %s\n", tests_[i_].name);                                           \
            tests_[i_].fn();                                                                       \
            run_++;                                                                                \
        }                                                                                          \
        printf("%d passed, 0 failed\n", run_);                                                     \
        return 0;                                                                                  \
    }

/* A fresh empty directory under $TMPDIR (or /tmp) for one test; the caller removes it. */
static inline char *test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/tidings-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    if (!d)
        TEST_FAIL_("mkdtemp failed");
    return strdup(d);
}

static inline void test_rmrf(char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
    free(dir);
}

/* An engine on dir without background work (retention and flush timers), for determinism. */
static inline td_engine *test_engine_open(const char *dir)
{
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    return e;
}

#endif /* TD_TEST_H */
