"""The user store from the command line and the first administrator (docs/security.md#users).

What the catalog holds is checked independently: the stored keys must be the ones Python's
hashlib derives from the password and the stored salt (RFC 5802: StoredKey = H(HMAC(
SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key")), and no file
of the data directory, no output and no argument list may hold the password.
"""
import hashlib
import hmac
import json
import os
import pty
import select
import sqlite3
import subprocess
import time

import pytest

from conftest import BIN, Broker, Cli

HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


def rows(data):
    """The users table: {(name, mechanism): (salt, iterations, stored_key, server_key)}."""
    db = sqlite3.connect(f"file:{data}/catalog.db?mode=ro", uri=True)
    try:
        return {(r[0], r[1]): r[2:] for r in db.execute(
            "SELECT name, mechanism, salt, iterations, stored_key, server_key FROM users")}
    finally:
        db.close()


def derives(password: bytes, mechanism, row):
    """True when the stored row is the SCRAM credential of this password."""
    salt, iterations, stored_key, server_key = row
    h = HASHES[mechanism]
    salted = hashlib.pbkdf2_hmac(h, password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", h).digest()
    return (hashlib.new(h, client_key).digest() == stored_key
            and hmac.new(salted, b"Server Key", h).digest() == server_key)


def no_secret_in_dir(data, secret: bytes):
    for root, _, files in os.walk(data):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert secret not in fh.read(), f"password found in {f}"


def user(cli, *args, input=None, check=True, env=None):
    return cli.run("user", *args, input=input, check=check, env=env)


def test_add_list_passwd_remove(tmp_path):
    cli = Cli(str(tmp_path / "data"))
    pw_a, pw_b = b"alice-Secret-1", b"bob pass phrase 2"
    out = user(cli, "add", "alice", "--password-stdin", input=pw_a + b"\n").stdout.decode()
    assert out == "added user alice\n"
    pwfile = tmp_path / "pw"
    pwfile.write_bytes(pw_b + b"\r\n")  # one trailing CRLF is dropped
    user(cli, "add", "bob", "--password-file", str(pwfile), "--mechanism", "SCRAM-SHA-256",
         "--iterations", "8192")
    r = rows(cli.data)
    assert set(r) == {("alice", "SCRAM-SHA-256"), ("alice", "SCRAM-SHA-512"),
                      ("bob", "SCRAM-SHA-256")}
    assert derives(pw_a, "SCRAM-SHA-256", r["alice", "SCRAM-SHA-256"])
    assert derives(pw_a, "SCRAM-SHA-512", r["alice", "SCRAM-SHA-512"])
    assert derives(pw_b, "SCRAM-SHA-256", r["bob", "SCRAM-SHA-256"])
    assert not derives(pw_b + b"\r", "SCRAM-SHA-256", r["bob", "SCRAM-SHA-256"])
    assert r["alice", "SCRAM-SHA-256"][1] == 4096 and r["bob", "SCRAM-SHA-256"][1] == 8192
    assert len(r["alice", "SCRAM-SHA-256"][0]) >= 16
    assert r["alice", "SCRAM-SHA-256"][0] != r["alice", "SCRAM-SHA-512"][0]  # a salt each

    listing = user(cli, "list").stdout.decode()
    lines = listing.splitlines()
    assert lines[0].split() == ["NAME", "MECHANISMS"]
    assert lines[1].startswith("alice ") and "SCRAM-SHA-256 (4096), SCRAM-SHA-512 (4096)" in lines[1]
    assert lines[2].startswith("bob ") and lines[2].endswith("SCRAM-SHA-256 (8192)")
    js = json.loads(user(cli, "list", "--json").stdout)
    assert js == {"users": [
        {"name": "alice", "credentials": [{"mechanism": "SCRAM-SHA-256", "iterations": 4096},
                                          {"mechanism": "SCRAM-SHA-512", "iterations": 4096}]},
        {"name": "bob", "credentials": [{"mechanism": "SCRAM-SHA-256", "iterations": 8192}]}]}

    # A second add of the same name fails (exit 1) and changes nothing.
    p = user(cli, "add", "alice", "--password-stdin", input=b"other\n", check=False)
    assert p.returncode == 1 and b"already exists" in p.stderr
    assert derives(pw_a, "SCRAM-SHA-512", rows(cli.data)["alice", "SCRAM-SHA-512"])

    # passwd replaces every credential (new salts, the mechanisms asked for).
    new = b"n3w-alice"
    user(cli, "passwd", "alice", "--mechanism", "SCRAM-SHA-512", input=new + b"\n")
    r2 = rows(cli.data)
    assert ("alice", "SCRAM-SHA-256") not in r2
    assert derives(new, "SCRAM-SHA-512", r2["alice", "SCRAM-SHA-512"])
    assert not derives(pw_a, "SCRAM-SHA-512", r2["alice", "SCRAM-SHA-512"])
    p = user(cli, "passwd", "carol", input=b"x\n", check=False)
    assert p.returncode == 3 and b"does not exist" in p.stderr

    assert user(cli, "remove", "bob").stdout == b"removed user bob\n"
    p = user(cli, "remove", "bob", check=False)
    assert p.returncode == 3
    assert set(rows(cli.data)) == {("alice", "SCRAM-SHA-512")}
    for secret in (pw_a, pw_b, new):
        no_secret_in_dir(cli.data, secret)


def test_bad_input_changes_nothing(tmp_path):
    cli = Cli(str(tmp_path / "data"))
    user(cli, "add", "keep", input=b"pw\n")  # stdin not a terminal: read like --password-stdin
    cases = [
        (["add", "x", "--password", "pw"], None, "never taken on the command line"),
        (["add", "x", "pw"], b"pw\n", "unexpected argument 'pw'"),
        (["add", "x"], b"\n", "cannot be empty"),
        (["add", "x"], b"two\nlines\n", "more than one line"),
        (["add", "x"], b"a" * 1025, "at most 1024 bytes"),
        (["add", "x"], b"a" * 5000, "longer than 1024 bytes"),
        (["add", "x"], b"a\0b", "NUL"),
        (["add", "a\nb"], b"pw\n", "control characters"),
        (["add", ""], b"pw\n", "cannot be empty"),
        (["add", "x", "--iterations", "100"], b"pw\n", "4096 to 16384"),
        (["add", "x", "--mechanism", "SCRAM-SHA-1"], b"pw\n", "SCRAM-SHA-256, SCRAM-SHA-512"),
        (["add", "x", "--password-file", "/nonexistent/pw"], None, "password file"),
        (["add", "x", "--password-stdin", "--password-file", "/etc/hostname"], b"pw\n",
         "not both"),
        (["remove", "keep", "--iterations", "5000"], None, "takes no password"),
        (["list", "extra"], None, "unexpected argument"),
        (["frobnicate"], None, "unknown user action"),
    ]
    for args, inp, msg in cases:
        p = user(cli, *args, input=inp, check=False)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert msg.encode() in p.stderr, (args, p.stderr)
    assert set(name for name, _ in rows(cli.data)) == {"keep"}
    # A name that is not UTF-8 (bytes in argv) is refused.
    p = subprocess.run([BIN, "user", "add", b"\xc3(", "--data", cli.data], input=b"pw\n",
                       capture_output=True, timeout=60)
    assert p.returncode == 2 and b"UTF-8" in p.stderr


def test_password_never_in_arguments_or_output(tmp_path):
    cli = Cli(str(tmp_path / "data"))
    secret = b"ps-must-not-see-this"
    proc = subprocess.Popen([BIN, "user", "add", "carol", "--password-stdin", "--data", cli.data],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # While the command waits for the password, what ps shows of it holds no secret.
        time.sleep(0.2)
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            cmdline = f.read()
        assert b"carol" in cmdline and secret not in cmdline
        out, err = proc.communicate(secret + b"\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert secret not in out + err
    assert derives(secret, "SCRAM-SHA-256", rows(cli.data)["carol", "SCRAM-SHA-256"])
    for args in (["list"], ["list", "--json"]):
        assert secret not in user(cli, *args).stdout
    no_secret_in_dir(cli.data, secret)


def test_prompt_with_echo_off(tmp_path):
    data = str(tmp_path / "data")
    secret = b"typed-at-the-prompt"

    def converse(answers):
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(BIN, [BIN, "user", "add", "dave", "--data", data])
        seen = b""
        deadline = time.time() + 60
        pending = list(answers)
        try:
            while time.time() < deadline:
                r, _, _ = select.select([fd], [], [], 1)
                if not r:
                    continue
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
                # Answer each prompt once it is shown: the command turns echo off and flushes
                # what was typed ahead before it prints a prompt, as getpass does.
                prompts = seen.count(b"Password for dave: ") + seen.count(b"Retype the password: ")
                if pending and prompts > len(answers) - len(pending):
                    os.write(fd, pending.pop(0) + b"\n")
        finally:
            if time.time() >= deadline:
                os.kill(pid, 9)
            _, status = os.waitpid(pid, 0)
            os.close(fd)
        return seen, os.waitstatus_to_exitcode(status)

    seen, rc = converse([secret, secret + b"-typo"])
    assert rc == 2 and b"do not match" in seen
    assert b"Password for dave:" in seen and b"Retype" in seen
    assert secret not in seen  # not echoed
    assert not os.path.exists(os.path.join(data, "catalog.db"))  # nothing was written
    seen, rc = converse([secret, secret])
    assert rc == 0, seen
    assert secret not in seen and b"added user dave" in seen
    assert derives(secret, "SCRAM-SHA-512", rows(data)["dave", "SCRAM-SHA-512"])


def test_remote_mode_goes_to_the_broker(tmp_path):
    """With --server (or $TIDINGS_SERVER) the command asks the broker (test_http_auth.py covers
    the answers); nothing is written locally. An unreachable broker exits 5."""
    cli = Cli(str(tmp_path / "data"))
    for args, env in ((["list", "--server", "http://127.0.0.1:9"], None),
                      (["add", "x", "--server", "http://127.0.0.1:9"], None),
                      (["list"], dict(os.environ, TIDINGS_SERVER="http://127.0.0.1:9"))):
        p = subprocess.run([BIN, "user", *args], input=b"pw\n", capture_output=True,
                           timeout=60, env=env, cwd=str(tmp_path))
        assert p.returncode == 5, (args, p.stderr)
        assert b"cannot reach the broker" in p.stderr
    assert not os.path.exists(cli.data)
    # --server '' is local mode whatever the environment says.
    p = subprocess.run([BIN, "user", "add", "x", "--server", "", "--data", cli.data],
                       input=b"pw\n", capture_output=True, timeout=60,
                       env=dict(os.environ, TIDINGS_SERVER="http://127.0.0.1:9"))
    assert p.returncode == 0, p.stderr


def test_first_admin_from_environment(tmp_path):
    data = str(tmp_path / "data")
    secret = "first-admin-Secret"
    env = dict(os.environ, TIDINGS_ADMIN_PASSWORD=secret, TIDINGS_ADMIN_USER="root")
    b = Broker(data, extra=["--log-level", "debug"], env=env).start()
    # The running broker's environment, as /proc shows it to its user, no longer holds it.
    with open(f"/proc/{b.proc.pid}/environ", "rb") as f:
        environ = f.read()
    assert b"TIDINGS_ADMIN_USER=root" in environ
    assert secret.encode() not in environ
    b.stop()
    err = b.stderr()
    assert "created the first administrator, user root" in err
    assert secret not in err
    r = rows(data)
    assert set(r) == {("root", "SCRAM-SHA-256"), ("root", "SCRAM-SHA-512")}
    assert derives(secret.encode(), "SCRAM-SHA-512", r["root", "SCRAM-SHA-512"])
    no_secret_in_dir(data, secret.encode())

    # A later start with another password (and another name) changes nothing.
    env2 = dict(os.environ, TIDINGS_ADMIN_PASSWORD="another-password")
    b = Broker(data, env=env2).start()
    b.stop()
    assert "nothing changed" in b.stderr()
    assert "another-password" not in b.stderr()
    assert rows(data) == r

    # Nor after a password change: the store is never reset to the environment's.
    cli = Cli(data)
    user(cli, "passwd", "root", input=b"changed\n")
    r2 = rows(data)
    b = Broker(data, env=env).start()
    b.stop()
    assert rows(data) == r2
    assert derives(b"changed", "SCRAM-SHA-256", r2["root", "SCRAM-SHA-256"])


def test_first_admin_name_from_config_and_default(tmp_path):
    env = dict(os.environ, TIDINGS_ADMIN_PASSWORD="pw-1")
    env.pop("TIDINGS_ADMIN_USER", None)
    b = Broker(str(tmp_path / "a" / "data"), env=env).start()
    b.stop()
    assert set(n for n, _ in rows(b.data)) == {"admin"}
    b = Broker(str(tmp_path / "b" / "data"), extra=["--set", "admin.user=boss"], env=env).start()
    b.stop()
    assert set(n for n, _ in rows(b.data)) == {"boss"}
    # No password in the environment: no user is made.
    env.pop("TIDINGS_ADMIN_PASSWORD")
    b = Broker(str(tmp_path / "c" / "data"), env=env).start()
    b.stop()
    assert rows(b.data) == {}


def test_first_admin_bad_settings_refuse_to_start(tmp_path):
    for extra, env_add, msg in (
            ([], {"TIDINGS_ADMIN_PASSWORD": "x" * 1025}, "TIDINGS_ADMIN_PASSWORD"),
            (["--set", "admin.user=a\tb"], {"TIDINGS_ADMIN_PASSWORD": "pw"}, "admin.user")):
        data = str(tmp_path / str(len(msg)) / "data")
        os.makedirs(os.path.dirname(data), exist_ok=True)
        p = subprocess.run([BIN, "serve", "--data", data, "--kafka", "127.0.0.1:0", "--http",
                            "off", "--redis", "off", *extra], capture_output=True, timeout=60,
                           env=dict(os.environ, **env_add))
        assert p.returncode != 0
        assert msg.encode() in p.stderr, p.stderr
        assert b"x" * 1025 not in p.stderr


def test_locked_or_missing_data_directory(tmp_path):
    data = str(tmp_path / "data")
    cli = Cli(data)
    p = user(cli, "list", check=False)
    assert p.returncode == 4 and b"no tidings data in" in p.stderr
    assert not os.path.exists(data)  # only add creates the directory
    b = Broker(data).start()
    try:
        p = user(cli, "add", "x", input=b"pw\n", check=False)
        assert p.returncode == 4, p.stderr
        assert b"locked" in p.stderr and b"give --server URL to manage users" in p.stderr
    finally:
        b.stop()
    assert rows(data) == {}
    user(cli, "add", "x", input=b"pw\n")
    assert set(rows(data)) == {("x", "SCRAM-SHA-256"), ("x", "SCRAM-SHA-512")}
