"""The include check (scripts/check-layers.py, run by `make test` before the builds): it passes
on this tree, and on a copy of it with includes that break the rules of docs/architecture.md it
fails, naming each file and line. No broker is started."""
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-layers.py"


def check(root):
    return subprocess.run(["/usr/bin/python3", str(SCRIPT), str(root)], capture_output=True,
                          text=True, timeout=60)


def insert_include(path, header):
    """Adds #include "header" as the file's first line; returns that line's number."""
    path.write_text(f'#include "{header}"\n' + path.read_text())
    return 1


def test_this_tree_follows_the_rules():
    r = check(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "every include of src/ follows" in r.stdout


def test_each_broken_rule_is_named_with_file_and_line(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src")
    src = tmp_path / "src"
    broken = {
        # one protocol including another's header
        "src/proto/http/groups.c": "proto/kafka/kafka.h",
        # a listener reaching into storage
        "src/proto/resp/cmd_stream.c": "storage/batch.h",
        # the broker's interface re-exporting storage
        "src/broker/broker.h": "storage/storage.h",
        # a listener using a broker file's private header
        "src/proto/kafka/handler.c": "broker/engine_int.h",
        # the command line past the public API
        "src/cli/cmd_topic.c": "broker/broker.h",
        # storage looking up a layer
        "src/storage/part.c": "broker/broker.h",
    }
    for rel, header in broken.items():
        insert_include(tmp_path / rel, header)
    (src / "newlayer").mkdir()
    (src / "newlayer" / "x.c").write_text('#include "base/base.h"\n')
    r = check(tmp_path)
    assert r.returncode == 1, r.stdout
    for rel, header in broken.items():
        assert f'{rel}:1: includes "{header}"' in r.stdout, r.stdout
    assert "src/newlayer/x.c: no include rule covers this file" in r.stdout
    assert f"check-layers: {len(broken) + 1} include(s) break the layers" in r.stdout


def test_the_documented_exceptions_hold_only_for_their_files(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src")
    # cli/cmd_serve.c may start the server (server/server.h), but no other command file may.
    insert_include(tmp_path / "src/cli/cmd_group.c", "server/server.h")
    r = check(tmp_path)
    assert r.returncode == 1
    assert 'src/cli/cmd_group.c:1: includes "server/server.h"' in r.stdout
    assert "src/cli/cmd_serve.c" not in r.stdout
