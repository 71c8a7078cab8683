/*
 * crc32c.c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of Kafka's
 * record batch v2.
 *
 * Two implementations: the SSE4.2 `crc32` instruction, 8 bytes per step in three interleaved
 * chains (this file alone is compiled with -msse4.2; the instruction is used only when cpuid
 * says the CPU has it), and a slicing-by-8 table fallback. Both take and return the finalised CRC,
 * so calls chain: td_crc32c(td_crc32c(0, a, n), b, m) == td_crc32c(0, ab, n + m).
 */
#include <pthread.h>
#include <string.h>

#include "base/base.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define TD_HAVE_SSE42_CODE 1
#endif

/* The tables are made once, by pthread_once: racing initialisers would write the same values,
 * but concurrent writes and reads of them are a data race all the same (TSan saw one). */
static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t td_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&table_once, table_init);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                      (uint32_t)p[3] << 24;
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        lo ^= c;
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
            table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    return ~c;
}

#ifdef TD_HAVE_SSE42_CODE
/*
 * The instruction takes 3 cycles but can start one every cycle, so one dependent chain uses a
 * third of it. Long inputs are therefore cut into three adjacent blocks whose CRCs run
 * interleaved and are then joined: the register is linear in its input, so the CRC of A
 * followed by B is the register after A moved over |B| zero bytes, XOR the CRC of B from zero.
 * "Moving over len zero bytes" is a fixed 32x32 bit matrix per len, kept as four byte tables.
 * This is the method of Intel's white paper on crc32 (2009) and of zlib's crc32_combine.
 */
#define CRC_LONG 8192
#define CRC_SHORT 256

static uint32_t shift_long[4][256], shift_short[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static void shift_table(uint32_t t[4][256], size_t len)
{
    uint32_t basis[32];
    for (int i = 0; i < 32; i++) {
        uint64_t c = 1u << i;
        for (size_t k = 0; k < len / 8; k++)
            c = _mm_crc32_u64(c, 0);
        basis[i] = (uint32_t)c;
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++)
                if (b >> j & 1)
                    v ^= basis[8 * k + j];
            t[k][b] = v;
        }
}

static void shift_init(void)
{
    shift_table(shift_long, CRC_LONG);
    shift_table(shift_short, CRC_SHORT);
}

static uint64_t shift(const uint32_t t[4][256], uint64_t c)
{
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][(c >> 24) & 0xff];
}

/* Three interleaved chains over p[0, len), p[len, 2 len), p[2 len, 3 len), joined. */
static uint64_t crc3(uint64_t c0, const uint8_t *p, size_t len, const uint32_t t[4][256])
{
    uint64_t c1 = 0, c2 = 0;
    for (const uint8_t *end = p + len; p < end; p += 8) {
        uint64_t w0, w1, w2;
        memcpy(&w0, p, 8);
        memcpy(&w1, p + len, 8);
        memcpy(&w2, p + 2 * len, 8);
        c0 = _mm_crc32_u64(c0, w0);
        c1 = _mm_crc32_u64(c1, w1);
        c2 = _mm_crc32_u64(c2, w2);
    }
    return shift(t, shift(t, c0) ^ c1) ^ c2;
}

static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        n--;
    }
    if (n >= 3 * CRC_SHORT) {
        pthread_once(&shift_once, shift_init);
        for (; n >= 3 * CRC_LONG; p += 3 * CRC_LONG, n -= 3 * CRC_LONG)
            c = crc3(c, p, CRC_LONG, shift_long);
        for (; n >= 3 * CRC_SHORT; p += 3 * CRC_SHORT, n -= 3 * CRC_SHORT)
            c = crc3(c, p, CRC_SHORT, shift_short);
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
#endif

/* 0 = not probed yet, 1 = hardware, 2 = software. */
static int mode;

int td_crc32c_hw_available(void)
{
    int m = __atomic_load_n(&mode, __ATOMIC_RELAXED);
    if (!m) {
#ifdef TD_HAVE_SSE42_CODE
        __builtin_cpu_init();
        m = __builtin_cpu_supports("sse4.2") ? 1 : 2;
#else
        m = 2;
#endif
        __atomic_store_n(&mode, m, __ATOMIC_RELAXED);
    }
    return m == 1;
}

uint32_t td_crc32c(uint32_t crc, const void *p, size_t n)
{
#ifdef TD_HAVE_SSE42_CODE
    if (td_crc32c_hw_available())
        return crc32c_hw(crc, p, n);
#endif
    return td_crc32c_sw(crc, p, n);
}
