"""Shared fixtures for the command-line integration tests.

TIDINGS_BIN names the tidings binary under test (the Makefile passes the ASan build);
by default ./build/debug/tidings.
"""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TIDINGS_BIN", os.path.join(ROOT, "build", "debug", "tidings"))


class Cli:
    def __init__(self, data):
        self.data = data

    def run(self, *args, input=None, check=True, timeout=60, data=True):
        cmd = [BIN, *args]
        if data:
            cmd += ["--data", self.data]
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(
                f"{cmd} exited {p.returncode}: {p.stderr.decode(errors='replace')}")
        return p

    def out(self, *args, **kw):
        return self.run(*args, **kw).stdout.decode()


@pytest.fixture
def cli(tmp_path):
    return Cli(str(tmp_path / "data"))
