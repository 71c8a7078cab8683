#!/usr/bin/env python3
"""Generates the Redis listener's command metadata (COMMAND INFO, COMMAND DOCS, key specs).

Usage: gen_resp_commands.py OUTPUT.c DIR [DIR ...]

Each DIR holds command descriptions in the format of Redis 7.0's src/commands/*.json (see
src/proto/resp/commands/README.md). The output is C: one resp_cmdmeta per command and
subcommand, sorted by full name ("client|list"), with the replies of COMMAND INFO (without the
subcommands element) and COMMAND DOCS (without the subcommands entry) as a small op string that
cmd_command.c writes in RESP2 or RESP3, and the key specs that COMMAND GETKEYS walks.

The derived facts follow Redis 7.0's server.c: the implicit ACL categories
(setImplicitACLCategories), the legacy first/last/step and the movablekeys flag
(populateCommandLegacyRangeSpec), flags and categories in Redis's reply order, tips in lower
case, argument names in lower case and tokens in upper case (utils/generate-command-code.py).
"""
import json
import os
import sys

CMD_FLAGS = [  # Redis's reply order (addReplyFlagsForCommand); hidden ones are left out
    ("WRITE", "write"), ("READONLY", "readonly"), ("DENYOOM", "denyoom"), ("MODULE", "module"),
    ("ADMIN", "admin"), ("PUBSUB", "pubsub"), ("NOSCRIPT", "noscript"),
    ("BLOCKING", "blocking"), ("LOADING", "loading"), ("STALE", "stale"),
    ("SKIP_MONITOR", "skip_monitor"), ("SKIP_SLOWLOG", "skip_slowlog"), ("ASKING", "asking"),
    ("FAST", "fast"), ("NO_AUTH", "no_auth"), ("NO_MANDATORY_KEYS", "no_mandatory_keys"),
    ("NO_ASYNC_LOADING", "no_async_loading"), ("NO_MULTI", "no_multi"),
    ("MOVABLE_KEYS", "movablekeys"), ("ALLOW_BUSY", "allow_busy"),
]
ACL_CATS = ["keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
            "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
            "dangerous", "connection", "transaction", "scripting"]
KEY_FLAGS = [("RO", "RO"), ("RW", "RW"), ("OW", "OW"), ("RM", "RM"), ("ACCESS", "access"),
             ("UPDATE", "update"), ("INSERT", "insert"), ("DELETE", "delete"),
             ("NOT_KEY", "not_key"), ("INCOMPLETE", "incomplete"),
             ("VARIABLE_FLAGS", "variable_flags")]
DOC_FLAGS = [("DEPRECATED", "deprecated"), ("SYSCMD", "syscmd")]
SEP = "\x1e"


class Ops:
    """The reply as ops: a type letter, its payload, and SEP."""

    def __init__(self):
        self.s = []

    def agg(self, kind, n):
        self.s.append("%s%d%s" % (kind, n, SEP))

    def bulk(self, v):
        assert SEP not in v
        self.s.append("B%s%s" % (v, SEP))

    def status(self, v):
        self.s.append("+%s%s" % (v, SEP))

    def int(self, v):
        self.s.append(":%d%s" % (v, SEP))

    def text(self):
        return "".join(self.s)


def c_string(s):
    """A C string literal for s, split into adjacent literals of about 90 characters (an
    escape sequence is never split)."""
    toks = []
    for ch in s.encode("utf-8"):
        c = chr(ch)
        if c in '"\\?':
            toks.append("\\" + c)
        elif 0x20 <= ch < 0x7F:
            toks.append(c)
        else:
            toks.append("\\%03o" % ch)
    parts, cur = [], ""
    for t in toks:
        if len(cur) + len(t) > 90:
            parts.append(cur)
            cur = ""
        cur += t
    parts.append(cur)
    return "\n    ".join('"%s"' % p for p in parts)


def legacy_range(specs):
    """(first, last, step, movable) as populateCommandLegacyRangeSpec and COMMAND INFO."""
    movable = False
    if not specs:
        return 0, 0, 0, movable

    def simple(s):
        return "index" in s["begin_search"] and "range" in s["find_keys"]

    if len(specs) == 1 and simple(specs[0]):
        s = specs[0]
        if "INCOMPLETE" in s.get("flags", []):
            movable = True
        first = s["begin_search"]["index"]["pos"]
        last = s["find_keys"]["range"]["lastkey"]
        if last >= 0:
            last += first
        return first, last, s["find_keys"]["range"]["step"], movable
    first, last, prev = None, 0, 0
    for s in specs:
        if not simple(s):
            movable = True
            continue
        pos = s["begin_search"]["index"]["pos"]
        rng = s["find_keys"]["range"]
        if rng["step"] != 1 or (prev and prev != pos - 1):
            movable = True
            continue
        if "INCOMPLETE" in s.get("flags", []):
            movable = True
        first = pos if first is None else min(first, pos)
        abs_last = rng["lastkey"] + pos if rng["lastkey"] >= 0 else rng["lastkey"]
        last = max(last, abs_last, key=lambda v: v & 0xFFFFFFFF)  # unsigned comparison
        prev = last
    if first is None:
        return 0, 0, 0, True
    rel = last if last < 0 else last - first
    return first, (rel + first if rel >= 0 else rel), 1, movable


def info_ops(full, d):
    specs = d.get("key_specs", [])
    first, last, step, movable = legacy_range(specs)
    flags = set(d.get("command_flags", []))
    if movable:
        flags.add("MOVABLE_KEYS")
    cats = {c.lower() for c in d.get("acl_categories", [])}
    if "WRITE" in flags:
        cats.add("write")
    if "READONLY" in flags and "scripting" not in cats:
        cats.add("read")
    if "ADMIN" in flags:
        cats |= {"admin", "dangerous"}
    if "PUBSUB" in flags:
        cats.add("pubsub")
    if "FAST" in flags:
        cats.add("fast")
    if "BLOCKING" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    o = Ops()
    o.bulk(full)
    o.int(d["arity"])
    names = [n for f, n in CMD_FLAGS if f in flags]
    o.agg("S", len(names))
    for n in names:
        o.status(n)
    o.int(first)
    o.int(last)
    o.int(step)
    catl = [c for c in ACL_CATS if c in cats]
    o.agg("S", len(catl))
    for c in catl:
        o.status("@" + c)
    tips = [t.lower() for t in d.get("command_tips", [])]
    o.agg("S", len(tips))
    for t in tips:
        o.bulk(t)
    o.agg("S", len(specs))
    for s in specs:
        o.agg("M", 4 if s.get("notes") else 3)
        if s.get("notes"):
            o.bulk("notes")
            o.bulk(s["notes"])
        o.bulk("flags")
        kf = [n for f, n in KEY_FLAGS if f in s.get("flags", [])]
        o.agg("S", len(kf))
        for n in kf:
            o.status(n)
        o.bulk("begin_search")
        o.agg("M", 2)
        bs = s["begin_search"]
        o.bulk("type")
        if bs.get("index"):
            o.bulk("index")
            o.bulk("spec")
            o.agg("M", 1)
            o.bulk("index")
            o.int(bs["index"]["pos"])
        elif bs.get("keyword"):
            o.bulk("keyword")
            o.bulk("spec")
            o.agg("M", 2)
            o.bulk("keyword")
            o.bulk(bs["keyword"]["keyword"])
            o.bulk("startfrom")
            o.int(bs["keyword"]["startfrom"])
        else:
            o.bulk("unknown")
            o.bulk("spec")
            o.agg("M", 0)
        o.bulk("find_keys")
        o.agg("M", 2)
        fk = s["find_keys"]
        o.bulk("type")
        if fk.get("range"):
            o.bulk("range")
            o.bulk("spec")
            o.agg("M", 3)
            for k, v in (("lastkey", "lastkey"), ("keystep", "step"), ("limit", "limit")):
                o.bulk(k)
                o.int(fk["range"][v])
        elif fk.get("keynum"):
            o.bulk("keynum")
            o.bulk("spec")
            o.agg("M", 3)
            for k, v in (("keynumidx", "keynumidx"), ("firstkey", "firstkey"),
                         ("keystep", "step")):
                o.bulk(k)
                o.int(fk["keynum"][v])
        else:
            o.bulk("unknown")
            o.bulk("spec")
            o.agg("M", 0)
    acl_bits = sum(1 << i for i, c in enumerate(ACL_CATS) if c in cats)
    return o.text(), acl_bits, flags


def args_ops(o, args):
    o.agg("A", len(args))
    for a in args:
        typ = a["type"]
        fl = [n for n in ("optional", "multiple", "multiple_token") if a.get(n)]
        n = 2 + sum(1 for k in ("key_spec_index", "token", "summary", "since",
                                "deprecated_since") if a.get(k) is not None and a.get(k) != "")
        n += 1 if fl else 0
        n += 1 if typ in ("oneof", "block") else 0
        o.agg("M", n)
        o.bulk("name")
        o.bulk(a["name"].lower())
        o.bulk("type")
        o.bulk(typ)
        if a.get("key_spec_index") is not None:
            o.bulk("key_spec_index")
            o.int(a["key_spec_index"])
        for k in ("token", "summary", "since", "deprecated_since"):
            if a.get(k):
                o.bulk(k)
                o.bulk(a[k].upper() if k == "token" else a[k])
        if fl:
            o.bulk("flags")
            o.agg("S", len(fl))
            for f in fl:
                o.status(f)
        if typ in ("oneof", "block"):
            o.bulk("arguments")
            args_ops(o, a["arguments"])


def docs_ops(d, container):
    fields = [k for k in ("summary", "since", "complexity", "doc_flags", "deprecated_since",
                          "replaced_by", "history", "arguments") if d.get(k)]
    o = Ops()
    o.agg("M", 1 + len(fields) + (1 if container else 0))
    for k in ("summary", "since"):
        if d.get(k):
            o.bulk(k)
            o.bulk(d[k])
    o.bulk("group")
    o.bulk(d["group"])
    if d.get("complexity"):
        o.bulk("complexity")
        o.bulk(d["complexity"])
    if d.get("doc_flags"):
        o.bulk("doc_flags")
        df = [n for f, n in DOC_FLAGS if f in d["doc_flags"]]
        o.agg("S", len(df))
        for n in df:
            o.status(n)
    for k in ("deprecated_since", "replaced_by"):
        if d.get(k):
            o.bulk(k)
            o.bulk(d[k])
    if d.get("history"):
        o.bulk("history")
        o.agg("S", len(d["history"]))
        for since, changes in d["history"]:
            o.agg("A", 2)
            o.bulk(since)
            o.bulk(changes)
    if d.get("arguments"):
        o.bulk("arguments")
        args_ops(o, d["arguments"])
    return o.text()


def keyspec_c(s):
    flags = sum(1 << i for i, (f, _) in enumerate(KEY_FLAGS) if f in s.get("flags", []))
    bs, fk = s["begin_search"], s["find_keys"]
    if bs.get("index"):
        b = "RESP_BS_INDEX, %d, NULL, 0" % bs["index"]["pos"]
    elif bs.get("keyword"):
        b = 'RESP_BS_KEYWORD, 0, "%s", %d' % (bs["keyword"]["keyword"],
                                              bs["keyword"]["startfrom"])
    else:
        b = "RESP_BS_UNKNOWN, 0, NULL, 0"
    if fk.get("range"):
        r = fk["range"]
        f = "RESP_FK_RANGE, %d, %d, %d" % (r["lastkey"], r["step"], r["limit"])
    elif fk.get("keynum"):
        r = fk["keynum"]
        f = "RESP_FK_KEYNUM, %d, %d, %d" % (r["keynumidx"], r["firstkey"], r["step"])
    else:
        f = "RESP_FK_UNKNOWN, 0, 0, 0"
    return "{%du, %s, %s}" % (flags, b, f)


def main():
    out, dirs = sys.argv[1], sys.argv[2:]
    descs = {}
    for d in dirs:
        for fn in sorted(os.listdir(d)):
            if not fn.endswith(".json"):
                continue
            with open(os.path.join(d, fn), encoding="utf-8") as f:
                (name, desc), = json.load(f).items()
            full = name.lower()
            if desc.get("container"):
                full = desc["container"].lower() + "|" + full
            if full in descs:
                sys.exit("gen_resp_commands: %s described twice" % full)
            descs[full] = desc
    containers = {f.split("|")[0] for f in descs if "|" in f}
    lines = ["/* Generated by scripts/gen_resp_commands.py from src/proto/resp/commands and",
             " * commands-tidings: do not edit. */",
             '#include "proto/resp/cmd_meta.h"', ""]
    rows = []
    for full in sorted(descs):
        d = descs[full]
        info, acl, flags = info_ops(full, d)
        docs = docs_ops(d, full in containers)
        ident = "ks_" + full.replace("|", "_").replace("-", "_")
        specs = d.get("key_specs", [])
        if specs:
            lines.append("static const resp_keyspec %s[] = {" % ident)
            lines.extend("    %s," % keyspec_c(s) for s in specs)
            lines.append("};")
        mflags = []
        if "NO_MANDATORY_KEYS" in flags:
            mflags.append("RESP_META_NO_MANDATORY_KEYS")
        if d.get("get_keys_function") == "xreadGetKeys":
            mflags.append("RESP_META_XREAD_KEYS")
        rows.append("    {\"%s\", %d, %s,\n    %s,\n    %s,\n    %d, %s, %du}," % (
            full, d["arity"], " | ".join(mflags) or "0", c_string(info), c_string(docs),
            len(specs), ident if specs else "NULL", acl))
    lines.append("const resp_cmdmeta resp_cmdmeta_table[] = {")
    lines.extend(rows)
    lines.append("};")
    lines.append("const size_t resp_cmdmeta_count = %d;" % len(rows))
    lines.append("const char *const resp_acl_categories[] = {%s, NULL};" %
                 ", ".join('"%s"' % c for c in ACL_CATS))
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
