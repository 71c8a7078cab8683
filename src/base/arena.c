/*
 * arena.c: a bump allocator for per-request temporaries (decoded Kafka requests and the like).
 * The first 2 KiB come from the arena struct itself; then blocks of at least 16 KiB (or the
 * request's size) are chained and freed together.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

struct td_arena_block {
    td_arena_block *next;
    size_t used, cap;
    uint8_t *data; /* points just after the struct, 8-aligned */
};

#define ARENA_BLOCK_MIN 16384

void td_arena_init(td_arena *a)
{
    a->head = NULL;
    a->inline_used = 0;
    a->total = 0;
}

void *td_arena_alloc(td_arena *a, size_t n)
{
    size_t need = (n + 7) & ~(size_t)7;
    if (need < n)
        return NULL;
    if (a->inline_used + need <= sizeof(a->inline_buf)) {
        void *p = a->inline_buf + a->inline_used;
        a->inline_used += need;
        a->total += need;
        return p;
    }
    td_arena_block *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK_MIN ? need : ARENA_BLOCK_MIN;
        size_t hdr = (sizeof(td_arena_block) + 7) & ~(size_t)7;
        if (cap > SIZE_MAX - hdr)
            return NULL;
        b = malloc(hdr + cap);
        if (!b)
            return NULL;
        b->data = (uint8_t *)b + hdr;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->total += need;
    return p;
}

void *td_arena_calloc(td_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = td_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

char *td_arena_strndup(td_arena *a, const char *s, size_t n)
{
    char *p = td_arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

char *td_arena_strdup(td_arena *a, const char *s)
{
    return s ? td_arena_strndup(a, s, strlen(s)) : NULL;
}

void *td_arena_memdup(td_arena *a, const void *p, size_t n)
{
    void *d = n ? td_arena_alloc(a, n) : NULL;
    if (d)
        memcpy(d, p, n);
    return d;
}

void td_arena_free(td_arena *a)
{
    td_arena_block *b = a->head;
    while (b) {
        td_arena_block *next = b->next;
        free(b);
        b = next;
    }
    td_arena_init(a);
}
