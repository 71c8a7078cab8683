#!/usr/bin/python3
"""Checks the include rules of docs/architecture.md ("Include rules") against src/.

The rules are the table in the ```include-rules block of that page, so that the page and this
check cannot disagree: each row names a directory of src/ (ending in /), a file, or a brace list
of files, and the only project headers its files may include with #include "..." (an indented
line continues the row above): a name ending
in / allows every header of that directory. In a row for src/proto/*/, `proto/*/` means the
file's own protocol directory. The most specific row applies to a file (a file row before its
directory's row, a longer directory before a shorter one); a file of src/ that no row covers is
an error too, so that a new layer cannot slip past. System headers (<...>) are not checked.

Usage: scripts/check-layers.py [ROOT]   (ROOT defaults to the repository holding this script;
the rules are always read from this repository's docs/architecture.md, so that an older tree can
be checked against today's rules). Exit status 0 when every include is allowed, 1 otherwise,
with one line per violation naming file and line.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(HERE, "docs", "architecture.md")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def expand(key):
    """src/broker/{a,b}.h -> [src/broker/a.h, src/broker/b.h]"""
    m = re.match(r"^(.*)\{([^}]*)\}(.*)$", key)
    if not m:
        return [key]
    return [m.group(1) + alt + m.group(3) for alt in m.group(2).split(",")]


def read_rules():
    text = open(DOC, encoding="utf-8").read()
    m = re.search(r"^```include-rules\n(.*?)^```", text, re.M | re.S)
    if not m:
        sys.exit(f"{DOC}: no ```include-rules block (the table this check reads)")
    rows = []
    for line in m.group(1).splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if line[0].isspace() and rows:
            rows[-1][1].extend(words)  # an indented line continues the row above
        else:
            rows.append((words[0], words[1:]))
    return [(key, allowed) for first, allowed in rows for key in expand(first)]


def rule_for(path, rules):
    """The most specific row for path (relative to the root, e.g. src/proto/http/groups.c)."""
    best = None
    for key, allowed in rules:
        if key.endswith("/"):
            pat = re.escape(key).replace(r"\*", "[^/]+")
            m = re.match(pat, path)
            if m and "/" not in path[m.end():]:
                rank = (0, len(key))
            else:
                continue
        elif key == path:
            rank = (1, len(key))
        else:
            continue
        if best is None or rank > best[0]:
            best = (rank, key, allowed)
    return best


def allowed_by(header, path, allowed):
    own = path.split("/")  # src/proto/<p>/file
    for a in allowed:
        if "*" in a and path.startswith("src/proto/"):
            a = a.replace("*", own[2])
        if a.endswith("/") and header.startswith(a) and "/" not in header[len(a):]:
            return True
        if header == a:
            return True
    return False


def main():
    root = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else HERE
    rules = read_rules()
    bad = 0
    for d, _, files in sorted(os.walk(os.path.join(root, "src"))):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.relpath(os.path.join(d, f), root)
            rule = rule_for(path, rules)
            if rule is None:
                print(f"{path}: no include rule covers this file "
                      f"(docs/architecture.md, Include rules)")
                bad += 1
                continue
            _, key, allowed = rule
            with open(os.path.join(root, path), encoding="utf-8", errors="replace") as fh:
                for n, line in enumerate(fh, 1):
                    m = INCLUDE.match(line)
                    if m and not allowed_by(m.group(1), path, allowed):
                        print(f'{path}:{n}: includes "{m.group(1)}", which the rule for {key} '
                              f"does not allow (docs/architecture.md, Include rules)")
                        bad += 1
    if bad:
        print(f"check-layers: {bad} include(s) break the layers")
        return 1
    print("check-layers: every include of src/ follows docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
