"""ACL SETUSER's key, channel and command rules as tidings ACLs (docs/redis.md#acl-rules-and-
tidings-acls): redis-py's acl_setuser provisions a user whose rights then hold on Redis, HTTP
and in the ACL store alike; resetkeys and DELUSER take them away; rules that cannot be
expressed are refused in Redis's format; ACL GETUSER and ACL LIST show the rules, compared
with a real redis-server 7 given the same rules (skipped if the machine has none).
"""
import base64
import json
import urllib.error
import urllib.request

import pytest

from test_redis_auth import ADMIN_PW, Conn, broker, real_redis  # noqa: F401 (a fixture)

U_PW = "u-s3cret"


def http_get(b, path, user, password):
    req = urllib.request.Request(f"http://127.0.0.1:{b.http_port}{path}")
    tok = base64.b64encode(f"{user}:{password}".encode()).decode()
    req.add_header("Authorization", "Basic " + tok)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def getuser(c, name):
    """ACL GETUSER's commands, keys and channels strings, from the raw RESP2 reply."""
    lines = c("ACL", "GETUSER", name).split(b"\r\n")
    out = {}
    for field in (b"commands", b"keys", b"channels"):
        i = lines.index(field)
        out[field.decode()] = lines[i + 2].decode()
    return out


def test_setuser_rules_are_the_users_acls(tmp_path):
    import redis
    b = broker(tmp_path, "--set", "redis.auth=required", http=True)
    try:
        admin = redis.Redis(port=b.redis_port, username="admin", password=ADMIN_PW)
        admin.xadd("orders.eu", {"f": "1"})
        admin.xadd("billing", {"f": "2"})
        assert admin.acl_setuser("u", enabled=True, passwords=["+" + U_PW], keys=["orders.*"],
                                 categories=["+@read"])
        u = redis.Redis(port=b.redis_port, username="u", password=U_PW)
        assert [f for _, f in u.xrange("orders.eu")] == [{b"f": b"1"}]
        assert u.xlen("orders.eu") == 1
        with pytest.raises(redis.exceptions.NoPermissionError, match="keys used as arguments"):
            u.xadd("orders.eu", {"f": "x"})
        with pytest.raises(redis.exceptions.NoPermissionError):
            u.xrange("billing")
        assert u.keys() == [b"orders.eu"]
        # The same ACLs on HTTP, with the same user's Basic credentials.
        st, body = http_get(b, "/v1/topics/orders.eu/events", "u", U_PW)
        assert st == 200 and len(body["events"]) == 1, body
        # A topic the user may not even Describe is hidden (404), as Kafka's Metadata hides it.
        assert http_get(b, "/v1/topics/billing/events", "u", U_PW)[0] == 404
        # ... and in the ACL store, as `tidings acl list` (GET /v1/acls) shows them.
        st, body = http_get(b, "/v1/acls?principal=User:u", "admin", ADMIN_PW)
        assert st == 200, body
        got = sorted((a["resource_type"], a["pattern_type"], a["name"], a["operation"])
                     for a in body["acls"])
        assert got == [("Group", "Literal", "*", "Describe"), ("Group", "Literal", "*", "Read"),
                       ("Topic", "Prefixed", "orders.", "Read")], got
        c = Conn(b.redis_port)
        assert c("AUTH", "admin", ADMIN_PW) == b"+OK\r\n"
        assert getuser(c, "u") == {"commands": "-@all +@read", "keys": "~orders.*",
                                   "channels": ""}

        # +@write on the user's current state: the key ~orders.* now writes too.
        assert admin.acl_setuser("u", enabled=True, categories=["+@write"])
        assert u.xadd("orders.eu", {"f": "3"})
        assert u.xadd("orders.new", {"f": "4"})  # a new topic under the prefix: Create
        with pytest.raises(redis.exceptions.NoPermissionError):
            u.xadd("billing", {"f": "x"})
        assert getuser(c, "u") == {"commands": "-@all +@write +@read", "keys": "~orders.*",
                                   "channels": ""}
        # Channels: PUBLISH and SUBSCRIBE on news.*, shown as Redis shows them.
        assert c("ACL", "SETUSER", "u", "&news.*", "%R~billing") == b"+OK\r\n"
        assert u.publish("news.eu", "hi") == 0
        with pytest.raises(redis.exceptions.NoPermissionError, match="channels"):
            u.publish("sport", "x")
        assert [f for _, f in u.xrange("billing")] == [{b"f": b"2"}]
        with pytest.raises(redis.exceptions.NoPermissionError):
            u.xadd("billing", {"f": "x"})
        # news.* reads as a key too: SUBSCRIBE's Read on the topic is XRANGE's.
        g = getuser(c, "u")
        assert g["keys"] == "%R~billing %R~news.* ~orders.*", g
        assert g["channels"] == "&news.*", g
        lst = c("ACL", "LIST")
        assert (b" %R~billing %R~news.* ~orders.* resetchannels &news.* -@all +@write +@read"
                b"\r\n") in lst, lst
        # DRYRUN answers from the same check.
        assert c("ACL", "DRYRUN", "u", "xadd", "orders.x", "*", "f", "v") == b"+OK\r\n"
        assert c("ACL", "DRYRUN", "u", "xadd", "billing", "*", "f", "v").startswith(
            b"$") and b"no permissions to access the 'billing' key" in c(
            "ACL", "DRYRUN", "u", "xadd", "billing", "*", "f", "v")

        # Refused rules: Redis's format, and nothing changed.
        for rule, why in (("~orders.?", "other glob patterns"), ("+get", "not single commands"),
                          ("-@stream", "cannot be expressed"), ("(~x +get)", "selectors"),
                          ("+@nosuch", "Unknown command or category name in ACL")):
            r = c("ACL", "SETUSER", "u", "~extra", rule)
            assert r.startswith(b"-ERR Error in ACL SETUSER modifier '%s': " % rule.encode()), r
            assert why.encode() in r, r
        assert getuser(c, "u")["keys"] == "%R~billing %R~news.* ~orders.*"

        # resetkeys removes the keys (the channels stay): on Redis and on HTTP.
        assert admin.acl_setuser("u", enabled=True, reset_keys=True)
        with pytest.raises(redis.exceptions.NoPermissionError):
            u.xrange("orders.eu")
        assert http_get(b, "/v1/topics/orders.eu/events", "u", U_PW)[0] == 404
        assert getuser(c, "u") == {"commands": "-@all +@write +@read", "keys": "%R~news.*",
                                   "channels": "&news.*"}

        # ACLs made outside SETUSER that it would not make (Read with Create) are shown as
        # far as they translate, and left alone by it.
        add_acl(b, "u", "sport", "Read")
        add_acl(b, "u", "sport", "Create")
        assert getuser(c, "u")["keys"] == "%R~news.* %R~sport"
        assert c("ACL", "SETUSER", "u", "resetkeys", "resetchannels", "nocommands") == b"+OK\r\n"
        assert getuser(c, "u") == {"commands": "-@all", "keys": "%R~sport", "channels": ""}
        assert [f for _, f in u.xrange("sport")] == []

        # DELUSER removes the user's ACLs, also those made outside SETUSER.
        assert admin.acl_deluser("u") == 1
        st, body = http_get(b, "/v1/acls?principal=User:u", "admin", ADMIN_PW)
        assert st == 200 and body["acls"] == [], body
        # default is the anonymous principal here: its permissions are not Redis rules.
        assert c("ACL", "SETUSER", "default", "~*", "&*", "+@all") == b"+OK\r\n"
        assert c("ACL", "SETUSER", "default", "~x", "+@read").startswith(
            b"-ERR default is the anonymous principal here")
        # Super users show everything.
        assert getuser(c, "admin") == {"commands": "+@all", "keys": "~*", "channels": "&*"}
        c.close()
    finally:
        b.stop()
    err = b.stderr()
    # Each ACL change is in the audit trail with its actor.
    assert "audit: redis: 127.0.0.1:" in err and "admin changed ACLs: added ACL Allow User:u" in err
    assert U_PW not in err


def add_acl(b, user, topic, op):
    """An ACL made outside SETUSER, on a literal topic, through POST /v1/acls."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{b.http_port}/v1/acls", method="POST",
        data=json.dumps({"principal": f"User:{user}", "resource_type": "Topic",
                         "pattern_type": "Literal", "name": topic, "operation": op,
                         "permission": "Allow"}).encode())
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization",
                   "Basic " + base64.b64encode(f"admin:{ADMIN_PW}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201, r.status


RULES = [
    ("orders", ["~orders.*", "+@read"]),
    ("mixed", ["%R~billing", "~orders.*", "+@read", "+@write"]),
    ("chans", ["&news.*", "&*", "resetchannels", "&news.*"]),
    ("admin2", ["+@admin", "+@read", "~x"]),
    ("none", ["~x", "resetkeys"]),
    ("escaped", ["~a\\*b", "+@write"]),
]


def test_getuser_and_list_match_redis(tmp_path, real_redis):  # noqa: F811
    """The same rules given to redis-server 7 and to tidings: GETUSER's commands, keys and
    channels and ACL LIST's rules (after the password) are the same bytes."""
    b = broker(tmp_path)
    try:
        ours, theirs = Conn(b.redis_port), Conn(real_redis)
        assert ours("AUTH", "admin", ADMIN_PW) == b"+OK\r\n"
        assert theirs("AUTH", "admin", ADMIN_PW) == b"+OK\r\n"
        for name, rules in RULES:
            for c in (ours, theirs):
                assert c("ACL", "SETUSER", "r-" + name, "on", ">pw", *rules) == b"+OK\r\n"
            a, r = getuser(ours, "r-" + name), getuser(theirs, "r-" + name)
            assert a == r, (name, a, r)

        def rules_of(lst, name):
            line = [x for x in lst.split(b"\r\n") if x.startswith(b"user r-%s " % name.encode())]
            assert len(line) == 1, lst
            return line[0].split(b" ", 4)[4]  # after "user NAME on #HASH"
        lo, lt = ours("ACL", "LIST"), theirs("ACL", "LIST")
        for name, _ in RULES:
            assert rules_of(lo, name) == rules_of(lt, name), name
        for name, _ in RULES:
            theirs("ACL", "DELUSER", "r-" + name)
        ours.close()
        theirs.close()
    finally:
        b.stop()
