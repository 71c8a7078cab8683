/*
 * crc32c.c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of Kafka's
 * record batch v2.
 *
 * Two implementations: the SSE4.2 `crc32` instruction, 8 bytes per step (this file alone is
 * compiled with -msse4.2; the instruction is used only when cpuid says the CPU has it), and a
 * slicing-by-8 table fallback. Both take and return the finalised CRC, so calls chain:
 * td_crc32c(td_crc32c(0, a, n), b, m) == td_crc32c(0, ab, n + m).
 */
#include <string.h>

#include "base/base.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define TD_HAVE_SSE42_CODE 1
#endif

static uint32_t table[8][256];
static int table_ready;

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
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t td_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE))
        table_init(); /* idempotent: racing initialisers write the same values */
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
static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        n--;
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
