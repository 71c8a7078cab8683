/*
 * test_http_auth.c: the Authorization header parser (proto/http/auth.c http_auth_parse): Basic
 * and Bearer, scheme case, every kind of malformed value (bad base64, missing colon, empty
 * user, over-long user, password or token), every truncation of valid values, and values
 * too large to be credentials.
 */
#include <string.h>

#include "proto/http/http.h"
#include "test.h"

static int parse(const char *v, http_credentials *c)
{
    const char *why = NULL;
    int rc = http_auth_parse(td_slice_make(v, strlen(v)), c, &why);
    if (rc != 0)
        ASSERT(why != NULL && *why);
    return rc;
}

static void test_basic(void)
{
    http_credentials c;
    ASSERT_OK(parse("Basic YWxpY2U6czNjcmV0", &c)); /* alice:s3cret */
    ASSERT_EQ(c.scheme, HTTP_AUTH_BASIC);
    ASSERT_STR_EQ(c.user, "alice");
    ASSERT_EQ(c.password_len, 6);
    ASSERT_MEM_EQ(c.password, "s3cret", 6);
    /* Scheme case-insensitive, several spaces, a password with colons, no padding. */
    ASSERT_OK(parse("bAsIc    Ym9iOmE6Yjpj", &c)); /* bob:a:b:c */
    ASSERT_STR_EQ(c.user, "bob");
    ASSERT_EQ(c.password_len, 5);
    ASSERT_MEM_EQ(c.password, "a:b:c", 5);
    ASSERT_OK(parse("Basic dTo=", &c)); /* u: (empty password: verification refuses it) */
    ASSERT_STR_EQ(c.user, "u");
    ASSERT_EQ(c.password_len, 0);
    ASSERT_OK(parse("Basic dTo", &c)); /* the same without padding */
    ASSERT_STR_EQ(c.user, "u");
    /* UTF-8 user name (RFC 7617 charset="UTF-8"): "é:x". */
    ASSERT_OK(parse("Basic w6k6eA==", &c));
    ASSERT_STR_EQ(c.user, "\xc3\xa9");
}

static void test_basic_malformed(void)
{
    http_credentials c;
    ASSERT_EQ(parse("Basic", &c), TD_EPROTO);                    /* nothing */
    ASSERT_EQ(parse("Basic ", &c), TD_EPROTO);                   /* nothing */
    ASSERT_EQ(parse("Basic YWxpY2U=", &c), TD_EPROTO);           /* "alice": no colon */
    ASSERT_EQ(parse("Basic OnB3", &c), TD_EPROTO);               /* ":pw": empty user */
    ASSERT_EQ(parse("Basic YWxp!2U6czNjcmV0", &c), TD_EPROTO);   /* not base64 */
    ASSERT_EQ(parse("Basic YWxpY2U6czNjcmV0 x", &c), TD_EPROTO); /* trailing junk */
    ASSERT_EQ(parse("Basic Y", &c), TD_EPROTO);                  /* 1 char: no whole byte */
    ASSERT_EQ(parse("Basic dTp=", &c), TD_EPROTO);               /* non-canonical bits */
    ASSERT_EQ(parse("Basic ===", &c), TD_EPROTO);
    ASSERT_EQ(parse("Basic AHU6cA==", &c), TD_EPROTO); /* "\0u:p": NUL in the user name */
    ASSERT_EQ(parse("BasicYWxpY2U6czNjcmV0", &c), TD_EUNSUPPORTED); /* no space: not Basic */
    ASSERT_EQ(parse("Digest username=\"a\"", &c), TD_EUNSUPPORTED);
    ASSERT_EQ(parse("", &c), TD_EUNSUPPORTED);
}

/* A user name of 256 bytes, a password of 1025: refused; 255 and 1024 pass. */
static void test_limits(void)
{
    static char raw[2000], b64[4000], value[4100];
    http_credentials c;
    for (int round = 0; round < 4; round++) {
        size_t ulen = round == 1 ? TD_USER_NAME_MAX + 1 : TD_USER_NAME_MAX;
        size_t plen = round == 2 ? TD_USER_PASSWORD_MAX + 1 : TD_USER_PASSWORD_MAX;
        if (round == 3)
            ulen = 3, plen = 1500; /* the whole value over HTTP_BASIC_MAX */
        memset(raw, 'u', ulen);
        raw[ulen] = ':';
        memset(raw + ulen + 1, 'p', plen);
        td_buf b;
        td_buf_init(&b);
        ASSERT_OK(td_base64_encode(&b, raw, ulen + 1 + plen));
        memcpy(b64, b.p, b.len);
        b64[b.len] = 0;
        td_buf_free(&b);
        snprintf(value, sizeof(value), "Basic %s", b64);
        int rc = parse(value, &c);
        if (round == 0) {
            ASSERT_OK(rc);
            ASSERT_EQ(strlen(c.user), TD_USER_NAME_MAX);
            ASSERT_EQ(c.password_len, TD_USER_PASSWORD_MAX);
        } else {
            ASSERT_EQ(rc, TD_EPROTO);
        }
    }
    /* A huge value of base64 is refused before any decoding. */
    static char huge[100000];
    memcpy(huge, "Basic ", 6);
    memset(huge + 6, 'A', sizeof(huge) - 7);
    huge[sizeof(huge) - 1] = 0;
    ASSERT_EQ(parse(huge, &c), TD_EPROTO);
    memcpy(huge, "Bearer ", 7);
    ASSERT_EQ(parse(huge, &c), TD_EPROTO);
}

static void test_bearer(void)
{
    http_credentials c;
    const char *tok = "tdk_0123456789abcdef_abcDEF-_x";
    char v[128];
    snprintf(v, sizeof(v), "Bearer %s", tok);
    ASSERT_OK(parse(v, &c));
    ASSERT_EQ(c.scheme, HTTP_AUTH_BEARER);
    ASSERT_EQ(c.token.n, strlen(tok));
    ASSERT(memcmp(c.token.p, tok, c.token.n) == 0);
    ASSERT(c.token.p == (const uint8_t *)v + 7); /* points into the value */
    ASSERT_OK(parse("bearer abc.def~+/==", &c));
    ASSERT_EQ(c.token.n, 12);
    ASSERT_EQ(parse("Bearer", &c), TD_EPROTO);
    ASSERT_EQ(parse("Bearer ", &c), TD_EPROTO);
    ASSERT_EQ(parse("Bearer a b", &c), TD_EPROTO);
    ASSERT_EQ(parse("Bearer ==", &c), TD_EPROTO);
    ASSERT_EQ(parse("Bearer a=b", &c), TD_EPROTO);
    ASSERT_EQ(parse("Bearer a\"b", &c), TD_EPROTO);
}

/* Every prefix of valid values parses or is refused cleanly, reading nothing past its end
 * (ASan watches the copies, each exactly as long as the prefix). */
static void test_truncations(void)
{
    const char *vals[] = {"Basic YWxpY2U6czNjcmV0",
                          "Bearer tdk_0123456789abcdef_abc==", "Basic w6k6eA=="};
    for (size_t k = 0; k < TD_ARRAY_LEN(vals); k++) {
        size_t n = strlen(vals[k]);
        for (size_t i = 0; i <= n; i++) {
            uint8_t *copy = malloc(i ? i : 1);
            memcpy(copy, vals[k], i);
            http_credentials c;
            const char *why = NULL;
            int rc = http_auth_parse(td_slice_make(copy, i), &c, &why);
            ASSERT(rc == 0 || rc == TD_EPROTO || rc == TD_EUNSUPPORTED);
            if (rc)
                ASSERT(why != NULL);
            free(copy);
        }
    }
}

TEST_MAIN(TEST(test_basic), TEST(test_basic_malformed), TEST(test_limits), TEST(test_bearer),
          TEST(test_truncations))
