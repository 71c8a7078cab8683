"""The stream commands' replies compared byte for byte with a real redis-server 7.0 (issue 23,
item 9): XRANGE, XREVRANGE, XREAD, XLEN, XDEL, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XREADGROUP
and XINFO's help, with every argument form and error that is deterministic (explicit IDs; no
idle times), in RESP2 and RESP3. Other files compare IDs (test_redis_ids.py), trimming
(test_redis_trim.py), groups' counters (test_redis_group_parity.py) and server commands
(test_redis_server_parity.py)."""
import shlex

from redis_peer import pair, peer  # noqa: F401 (fixtures)

# One session of commands, sent in order to both servers, each reply compared.
SESSION = """
XADD s 1-1 a 1
XADD s 1-2 b 2 c 3
XADD s 2-0 a 1
XADD s 3-5 a 1
XLEN s
XLEN nokey
XRANGE s - +
XRANGE s - + COUNT 2
XRANGE s - + COUNT 0
XRANGE s - + COUNT -1
XRANGE nokey - + COUNT 0
XRANGE s (1-1 +
XRANGE s 1 1
XRANGE s 1-2 (2
XRANGE s x +
XRANGE s - + COUNT
XRANGE s - + FOO 1
XRANGE s (- +
XRANGE s - (+
XRANGE s 18446744073709551615 +
XRANGE s 18446744073709551616 +
XREVRANGE s + -
XREVRANGE s + - COUNT 1
XREVRANGE s + - COUNT 0
XREVRANGE s (3-5 -
XRANGE nokey - +
XREAD STREAMS s 0
XREAD COUNT 1 STREAMS s 1-1
XREAD STREAMS s nokey 0 0
XREAD STREAMS s
XREAD STREAMS s 0 1
XREAD COUNT x STREAMS s 0
XREAD BLOCK -1 STREAMS s 0
XREAD STREAMS s $
XREAD STREAMS s +
XREAD STREAMS s >
XDEL s 1-2
XDEL s 1-2 9-9
XDEL s x
XDEL nokey 1-1
XDEL nokey x
XLEN s
XRANGE s - +
XGROUP CREATE s g 0
XGROUP CREATE s g 0
XGROUP CREATE nokey g 0
XREADGROUP GROUP g c1 COUNT 1 STREAMS s >
XREADGROUP GROUP g c1 STREAMS s >
XREADGROUP GROUP g c1 STREAMS s 0
XREADGROUP GROUP g c2 STREAMS s 0
XREADGROUP GROUP nog c2 STREAMS s >
XREADGROUP GROUP g c2 STREAMS s $
XREADGROUP GROUP g c2 STREAMS s 0 1
XREADGROUP GROUP g c2 NOACK STREAMS s >
XREADGROUP GROUP g STREAMS s >
XPENDING s g
XPENDING s g - + x
XPENDING s g - +
XPENDING s nog
XPENDING nokey g
XACK s g 1-1
XACK s g 1-1
XACK s g x
XACK s nog 1-1
XCLAIM s g c2 0 2-0 JUSTID
XCLAIM s g c2 0 2-0 RETRYCOUNT 5 JUSTID
XCLAIM s g c2 x 2-0
XCLAIM s g c2 0 x
XCLAIM s nog c2 0 2-0
XCLAIM s g c2 0 9-9 FORCE JUSTID
XCLAIM s g c2 0 1-2 FORCE JUSTID
XAUTOCLAIM s g c3 0 0 COUNT 1 JUSTID
XAUTOCLAIM s g c3 0 0 COUNT 0
XAUTOCLAIM s g c3 0 0 JUSTID
XAUTOCLAIM s nog c3 0 0
XAUTOCLAIM s g c3 0 x
XINFO CONSUMERS s nog
XINFO CONSUMERS nokey g
XINFO FOO
XINFO HELP
XSETID nokey 1-1
XTRIM s FOO 1
XTRIM s MAXLEN -1
"""


def run_session(pair):
    for line in SESSION.strip().splitlines():
        pair.same(*shlex.split(line))


def test_stream_commands_resp2(pair):
    run_session(pair)


def test_stream_commands_resp3(pair):
    pair.both("HELLO", "3")  # the id differs (connection counters), the rest is compared below
    run_session(pair)
