/*
 * cmd_meta.h: the Redis listener's command metadata, generated at build time by
 * scripts/gen_resp_commands.py from Redis 7.0.15's command descriptions
 * (src/proto/resp/commands/) and tidings' own (src/proto/resp/commands-tidings/). COMMAND INFO,
 * COMMAND DOCS, COMMAND LIST FILTERBY and COMMAND GETKEYS answer from it (cmd_command.c), so
 * that they answer exactly as Redis 7.0 does; the handler tables (resp_commands[] and the
 * *_subs tables) stay the source of what is served.
 */
#ifndef TD_PROTO_RESP_CMD_META_H
#define TD_PROTO_RESP_CMD_META_H

#include <stddef.h>
#include <stdint.h>

/* A key specification (Redis's keySpec): where the keys start (begin search) and how many
 * follow (find keys). */
enum { RESP_BS_UNKNOWN, RESP_BS_INDEX, RESP_BS_KEYWORD };
enum { RESP_FK_UNKNOWN, RESP_FK_RANGE, RESP_FK_KEYNUM };
/* Key spec flags, in Redis's reply order: RO, RW, OW, RM, access, update, insert, delete,
 * not_key, incomplete, variable_flags. */
enum { RESP_KS_NOT_KEY = 1u << 8, RESP_KS_INCOMPLETE = 1u << 9, RESP_KS_VARIABLE_FLAGS = 1u << 10 };
typedef struct resp_keyspec {
    unsigned flags;
    int bs;              /* RESP_BS_* */
    int pos;             /* index: the argument's position */
    const char *keyword; /* keyword: the keyword, searched from startfrom (negative: from the
                            end, backwards) */
    int startfrom;
    int fk;      /* RESP_FK_* */
    int a, b, c; /* range: lastkey, keystep, limit; keynum: keynumidx, firstkey, keystep */
} resp_keyspec;

enum {
    RESP_META_NO_MANDATORY_KEYS = 1 << 0,
    RESP_META_XREAD_KEYS = 1 << 1, /* falls back on Redis's xreadGetKeys */
};
typedef struct resp_cmdmeta {
    const char *fullname; /* "xadd", "client|list" */
    int arity;
    unsigned flags; /* RESP_META_* */
    /* The replies as ops: a letter (A array, M map, S set, B bulk, + status, : integer), its
     * payload (a length, a string or a number) and the byte 0x1E. info: COMMAND INFO's first
     * nine elements; docs: COMMAND DOCS's map, whose length counts a subcommands entry that the
     * caller appends for a container. */
    const char *info;
    const char *docs;
    int nspecs;
    const resp_keyspec *specs;
    uint32_t acl; /* ACL categories: bit i is resp_acl_categories[i] */
} resp_cmdmeta;

/* Sorted by fullname. */
extern const resp_cmdmeta resp_cmdmeta_table[];
extern const size_t resp_cmdmeta_count;
/* Redis's ACL categories in its order (without '@'), ending with NULL. */
extern const char *const resp_acl_categories[];

#endif
