"""The schema registry (docs/schemas.md#the-registry): Confluent Schema Registry's REST API v1 on
the HTTP listener under schema.registry.prefix, every endpoint and error with plain HTTP (requests
and curl) and with confluent-kafka's SchemaRegistryClient; at the root with an empty prefix; and
the registry's state after kill -9 under load."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import Broker

CT = "application/vnd.schemaregistry.v1+json"


def js(schema):
    """A JSON Schema request body."""
    return {"schemaType": "JSON", "schema": json.dumps(schema, separators=(",", ":"))}


class Reg:
    def __init__(self, base):
        self.base = base
        self.s = requests.Session()

    def call(self, method, path, body=None, **params):
        r = self.s.request(method, self.base + path, params=params or None,
                           data=None if body is None else json.dumps(body),
                           headers={"Content-Type": CT}, timeout=30)
        return r.status_code, (r.json() if r.content and r.headers.get(
            "Content-Type", "").startswith("application/vnd.schemaregistry") and
            not path.endswith("/schema") else r.text)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    b = Broker(str(tmp_path_factory.mktemp("reg") / "data"), http=True).start()
    yield b
    b.stop()


@pytest.fixture
def reg(server):
    return Reg(f"http://127.0.0.1:{server.http_port}/registry")


def test_root_types_and_unknown_paths(reg):
    assert reg.call("GET", "/") == (200, {})
    assert reg.call("GET", "/schemas/types") == (200, ["JSON", "PROTOBUF", "AVRO"])
    assert reg.call("GET", "/no/such/path") == (
        404, {"error_code": 404, "message": "HTTP 404 Not Found"})
    assert reg.call("PUT", "/subjects") == (
        405, {"error_code": 405, "message": "HTTP 405 Method Not Allowed"})
    r = requests.post(reg.base + "/subjects/x/versions", data="{}",
                      headers={"Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 415 and r.json()["error_code"] == 415
    r = requests.get(reg.base + "/schemas/types", timeout=10)
    assert r.headers["Content-Type"] == CT


def test_register_lookup_and_read(reg):
    st, body = reg.call("POST", "/subjects/orders-value/versions", js({"type": "object"}))
    assert st == 200 and set(body) == {"id"}
    oid = body["id"]
    # Again, and under another subject: the same id.
    assert reg.call("POST", "/subjects/orders-value/versions", js({"type": "object"})) == (
        200, {"id": oid})
    assert reg.call("POST", "/subjects/other-value/versions", js({"type": "object"})) == (
        200, {"id": oid})
    st, body = reg.call("POST", "/subjects/orders-value/versions",
                        js({"type": "object", "title": "v2"}))
    assert st == 200 and body["id"] > oid
    nid = body["id"]
    assert reg.call("GET", "/subjects/orders-value/versions") == (200, [1, 2])
    st, subjects = reg.call("GET", "/subjects")
    assert {"orders-value", "other-value"} <= set(subjects)
    assert reg.call("GET", "/subjects", subjectPrefix="orders") == (200, ["orders-value"])
    assert reg.call("GET", "/subjects/orders-value/versions/latest") == (200, {
        "subject": "orders-value", "version": 2, "id": nid, "schemaType": "JSON",
        "schema": '{"type":"object","title":"v2"}'})
    assert reg.call("GET", "/subjects/orders-value/versions/1/schema") == (
        200, '{"type":"object"}')
    assert reg.call("GET", f"/schemas/ids/{oid}") == (
        200, {"schemaType": "JSON", "schema": '{"type":"object"}'})
    assert reg.call("GET", f"/schemas/ids/{oid}/schema") == (200, '{"type":"object"}')
    assert reg.call("GET", f"/schemas/ids/{oid}/subjects") == (
        200, ["orders-value", "other-value"])
    assert reg.call("GET", f"/schemas/ids/{oid}/versions") == (
        200, [{"subject": "orders-value", "version": 1}, {"subject": "other-value", "version": 1}])
    st, all_ = reg.call("GET", "/schemas", subjectPrefix="orders-value", latestOnly="true")
    assert st == 200 and [(s["subject"], s["version"]) for s in all_] == [("orders-value", 2)]
    assert reg.call("POST", "/subjects/orders-value", js({"type": "object"})) == (200, {
        "subject": "orders-value", "version": 1, "id": oid, "schemaType": "JSON",
        "schema": '{"type":"object"}'})
    # Errors.
    assert reg.call("POST", "/subjects/orders-value", js({"type": "array"})) == (
        404, {"error_code": 40403, "message": "Schema not found"})
    assert reg.call("GET", "/subjects/nope/versions") == (
        404, {"error_code": 40401, "message": "Subject 'nope' not found."})
    assert reg.call("GET", "/subjects/orders-value/versions/7") == (
        404, {"error_code": 40402, "message": "Version 7 not found."})
    st, body = reg.call("GET", "/subjects/orders-value/versions/first")
    assert st == 422 and body["error_code"] == 42202
    assert reg.call("GET", "/schemas/ids/99999") == (
        404, {"error_code": 40403, "message": "Schema 99999 not found"})
    st, body = reg.call("POST", "/subjects/orders-value/versions",
                        {"schemaType": "JSON", "schema": "{nope"})
    assert st == 422 and body["error_code"] == 42201
    st, body = reg.call("POST", "/subjects/orders-value/versions", {"schemaType": "JSON"})
    assert st == 422 and body["error_code"] == 42201
    st, body = reg.call("POST", "/subjects/bad%01name/versions", js({}))
    assert (st, body["error_code"]) == (422, 42208)


def test_subject_names_of_any_characters(reg):
    name = "we/ird ?&%+é"
    quoted = requests.utils.quote(name, safe="")
    st, body = reg.call("POST", f"/subjects/{quoted}/versions", js({"title": "weird"}))
    assert st == 200
    assert name in reg.call("GET", "/subjects")[1]
    assert reg.call("GET", f"/subjects/{quoted}/versions/1")[1]["subject"] == name


def test_deletes(reg):
    s = "del-value"
    for i in range(3):
        assert reg.call("POST", f"/subjects/{s}/versions", js({"title": f"d{i}"}))[0] == 200
    assert reg.call("DELETE", f"/subjects/{s}/versions/1", permanent="true") == (404, {
        "error_code": 40407,
        "message": f"Subject '{s}' Version 1 was not deleted first before being permanently "
                   "deleted"})
    assert reg.call("DELETE", f"/subjects/{s}/versions/1") == (200, 1)
    assert reg.call("DELETE", f"/subjects/{s}/versions/1")[1]["error_code"] == 40406
    assert reg.call("DELETE", f"/subjects/{s}/versions/1", permanent="true") == (200, 1)
    assert reg.call("GET", f"/subjects/{s}/versions", deleted="true") == (200, [2, 3])
    assert reg.call("DELETE", f"/subjects/{s}/versions/latest") == (200, 3)
    assert reg.call("GET", f"/subjects/{s}/versions", deletedOnly="true") == (200, [3])
    assert reg.call("DELETE", f"/subjects/{s}", permanent="true")[1]["error_code"] == 40405
    assert reg.call("DELETE", f"/subjects/{s}") == (200, [2])
    assert reg.call("DELETE", f"/subjects/{s}")[1]["error_code"] == 40404
    assert s not in reg.call("GET", "/subjects")[1]
    assert s in reg.call("GET", "/subjects", deleted="true")[1]
    assert s in reg.call("GET", "/subjects", deletedOnly="true")[1]
    # Registered again: the versions go on.
    assert reg.call("POST", f"/subjects/{s}/versions", js({"title": "d0"}))[0] == 200
    assert reg.call("GET", f"/subjects/{s}/versions") == (200, [4])
    assert reg.call("DELETE", f"/subjects/{s}") == (200, [4])
    assert reg.call("DELETE", f"/subjects/{s}", permanent="true") == (200, [2, 3, 4])
    assert s not in reg.call("GET", "/subjects", deleted="true")[1]
    assert reg.call("DELETE", "/subjects/never")[1]["error_code"] == 40401


def test_references(reg):
    st, base = reg.call("POST", "/subjects/ref-base/versions", js({"type": "integer"}))
    assert st == 200
    body = js({"$ref": "base.json"})
    body["references"] = [{"name": "base.json", "subject": "ref-base", "version": 1}]
    st, top = reg.call("POST", "/subjects/ref-top/versions", body)
    assert st == 200
    st, got = reg.call("GET", "/subjects/ref-top/versions/1")
    assert got["references"] == body["references"]
    assert reg.call("GET", f"/schemas/ids/{top['id']}")[1]["references"] == body["references"]
    assert reg.call("GET", "/subjects/ref-base/versions/1/referencedby") == (200, [top["id"]])
    st, err = reg.call("DELETE", "/subjects/ref-base/versions/1")
    assert (st, err["error_code"]) == (422, 42206)
    body["references"][0]["subject"] = "ref-missing"
    st, err = reg.call("POST", "/subjects/ref-top2/versions", body)
    assert (st, err["error_code"]) == (422, 42201)


def test_config_mode_and_compatibility_endpoints(reg):
    assert reg.call("GET", "/config") == (200, {"compatibilityLevel": "BACKWARD"})
    assert reg.call("PUT", "/config/cfg-value", {"compatibility": "FULL_TRANSITIVE"}) == (
        200, {"compatibility": "FULL_TRANSITIVE"})
    assert reg.call("GET", "/config/cfg-value") == (
        200, {"compatibilityLevel": "FULL_TRANSITIVE"})
    assert reg.call("GET", "/config/unset-value")[1]["error_code"] == 40408
    assert reg.call("GET", "/config/unset-value", defaultToGlobal="true") == (
        200, {"compatibilityLevel": "BACKWARD"})
    st, body = reg.call("PUT", "/config", {"compatibility": "sideways"})
    assert (st, body["error_code"]) == (422, 42203)
    assert reg.call("DELETE", "/config/cfg-value") == (
        200, {"compatibilityLevel": "FULL_TRANSITIVE"})
    assert reg.call("GET", "/mode") == (200, {"mode": "READWRITE"})
    assert reg.call("PUT", "/mode/ro-value", {"mode": "READONLY"}) == (200, {"mode": "READONLY"})
    st, body = reg.call("POST", "/subjects/ro-value/versions", js({}))
    assert (st, body["error_code"]) == (422, 42205)
    assert reg.call("GET", "/mode/ro-value") == (200, {"mode": "READONLY"})
    assert reg.call("GET", "/mode/rw-value")[1]["error_code"] == 40409
    assert reg.call("GET", "/mode/rw-value", defaultToGlobal="true") == (
        200, {"mode": "READWRITE"})
    st, body = reg.call("PUT", "/mode", {"mode": "SLEEPY"})
    assert (st, body["error_code"]) == (422, 42204)
    assert reg.call("DELETE", "/mode/ro-value") == (200, {"mode": "READONLY"})
    # The compatibility endpoints' shapes.
    reg.call("POST", "/subjects/chk-value/versions", js({"type": "object"}))
    assert reg.call("POST", "/compatibility/subjects/chk-value/versions/latest",
                    js({"type": "object"})) == (200, {"is_compatible": True})
    assert reg.call("POST", "/compatibility/subjects/chk-value/versions",
                    js({"type": "object"}), verbose="true") == (
        200, {"is_compatible": True, "messages": []})
    assert reg.call("POST", "/compatibility/subjects/chk-value/versions/5",
                    js({}))[1]["error_code"] == 40402


def test_import_mode(reg):
    assert reg.call("PUT", "/mode/imp-value", {"mode": "IMPORT"}) == (200, {"mode": "IMPORT"})
    body = js({"title": "imported"})
    body.update(id=5000, version=7)
    assert reg.call("POST", "/subjects/imp-value/versions", body) == (200, {"id": 5000})
    assert reg.call("GET", "/subjects/imp-value/versions") == (200, [7])
    reg.call("DELETE", "/mode/imp-value")
    st, body = reg.call("POST", "/subjects/after-import/versions", js({"title": "after"}))
    assert st == 200 and body["id"] > 5000


def test_compatibility_rules_json(reg):
    """BACKWARD, FORWARD, FULL and their transitive forms decide with JSON Schema's rules."""
    s = "compat-json-value"
    v1 = {"type": "object", "properties": {"a": {"type": "string"}}}
    v2 = {"type": "object", "properties": {"a": {"type": "string"}},
          "required": ["a"]}
    assert reg.call("POST", f"/subjects/{s}/versions", js(v1))[0] == 200
    st, body = reg.call("POST", f"/compatibility/subjects/{s}/versions/latest", js(v2),
                        verbose="true")
    assert st == 200 and body["is_compatible"] is False
    assert any("oldSchemaVersion: 1" in m for m in body["messages"])
    st, body = reg.call("POST", f"/subjects/{s}/versions", js(v2))
    assert (st, body["error_code"]) == (409, 409)
    reg.call("PUT", f"/config/{s}", {"compatibility": "FORWARD"})
    assert reg.call("POST", f"/subjects/{s}/versions", js(v2))[0] == 200


def test_curl(server):
    url = f"http://127.0.0.1:{server.http_port}/registry/subjects/curl-value/versions"
    p = subprocess.run(["curl", "-sS", "-X", "POST", "-H", f"Content-Type: {CT}", "--data",
                        json.dumps(js({"title": "curl"})), url],
                       capture_output=True, timeout=30, check=True)
    assert "id" in json.loads(p.stdout)
    p = subprocess.run(["curl", "-sS", "-i", url], capture_output=True, timeout=30, check=True)
    head, _, text = p.stdout.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200") and f"Content-Type: {CT}" in head
    assert json.loads(text) == [1]


def test_confluent_client(server):
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError
    c = SchemaRegistryClient({"url": f"http://127.0.0.1:{server.http_port}/registry"})
    s1 = Schema('{"type":"object","title":"client"}', "JSON")
    sid = c.register_schema("client-value", s1)
    assert c.register_schema("client-value", s1) == sid
    latest = c.get_latest_version("client-value")
    assert (latest.schema_id, latest.subject, latest.version) == (sid, "client-value", 1)
    assert latest.schema.schema_type == "JSON"
    assert c.get_version("client-value", 1).schema_id == sid
    found = c.lookup_schema("client-value", s1)
    assert (found.schema_id, found.version) == (sid, 1)
    assert "client-value" in c.get_subjects()
    got = c.get_schema(sid)
    assert got.schema_str == '{"type":"object","title":"client"}' and got.schema_type == "JSON"
    # confluent-kafka 1.7 answers the response body as it is.
    assert c.set_compatibility("client-value", "FULL") == {"compatibility": "FULL"}
    assert c.get_compatibility("client-value") == "FULL"
    assert c.test_compatibility("client-value", s1) is True
    assert c.delete_subject("client-value") == [1]
    with pytest.raises(SchemaRegistryError) as e:
        c.get_version("client-value", 1)
    assert (e.value.http_status_code, e.value.error_code) == (404, 40401)
    # A hard delete: the client soft-deletes, then deletes permanently.
    c.register_schema("client2-value", s1)
    assert c.delete_subject("client2-value", permanent=True) == [1]
    with pytest.raises(SchemaRegistryError) as e:
        c.lookup_schema("client2-value", s1)
    assert e.value.error_code == 40401


def test_prefix_at_root(tmp_path):
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", "schema.registry.prefix="]).start()
    try:
        base = f"http://127.0.0.1:{b.http_port}"
        r = requests.post(base + "/subjects/root-value/versions", json=js({"title": "r"}),
                          timeout=10)
        assert r.status_code == 200 and r.json() == {"id": 1}
        assert requests.get(base + "/", timeout=10).json() == {}
        assert requests.get(base + "/health", timeout=10).json() == {"status": "ok"}
        assert requests.get(base + "/v1/topics", timeout=10).status_code == 200
        assert requests.get(base + "/registry/subjects", timeout=10).status_code == 404
    finally:
        b.stop()


def test_state_after_kill9(tmp_path):
    """Registrations, deletes, configs and modes under load; kill -9; every acknowledged change
    is there after the restart, with the same ids and versions."""
    b = Broker(str(tmp_path / "data"), http=True).start()
    base = f"http://127.0.0.1:{b.http_port}/registry"
    acked = {}  # (subject, version) -> id
    lock = threading.Lock()
    stop = time.time() + 3

    def worker(t):
        s = requests.Session()
        i = 0
        while time.time() < stop and i < 200:
            subj = f"k{t}-value"
            try:
                r = s.post(f"{base}/subjects/{subj}/versions",
                           json=js({"title": f"t{t}-{i}"}), timeout=10)
            except requests.RequestException:
                return
            if r.status_code == 200:
                with lock:
                    acked[(subj, i + 1)] = r.json()["id"]
            i += 1

    requests.put(f"{base}/config", json={"compatibility": "NONE"}, timeout=10).raise_for_status()
    requests.put(f"{base}/mode/frozen-value", json={"mode": "READONLY"},
                 timeout=10).raise_for_status()
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(timeout=30)
    for t in threads:
        t.join(timeout=30)
    b.stop(signal.SIGKILL)
    assert len(acked) > 10
    b = Broker(b.data, http=True).start()
    try:
        base = f"http://127.0.0.1:{b.http_port}/registry"
        for (subj, version), sid in sorted(acked.items()):
            r = requests.get(f"{base}/subjects/{subj}/versions/{version}", timeout=10)
            assert r.status_code == 200, (subj, version, r.text)
            assert r.json()["id"] == sid
        assert requests.get(f"{base}/config", timeout=10).json() == {
            "compatibilityLevel": "NONE"}
        assert requests.get(f"{base}/mode/frozen-value", timeout=10).json() == {
            "mode": "READONLY"}
        # New ids come after every id handed out before the crash.
        r = requests.post(f"{base}/subjects/after-value/versions", json=js({"title": "new"}),
                          timeout=10)
        assert r.json()["id"] > max(acked.values())
    finally:
        b.stop()


def test_own_listener(tmp_path):
    """schema.registry.listen: a listener of the registry alone, at its root."""
    import socket
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    b = Broker(str(tmp_path / "data"), http=True,
               extra=["--set", f"schema.registry.listen=127.0.0.1:{port}"]).start()
    try:
        base = f"http://127.0.0.1:{port}"
        r = requests.post(base + "/subjects/own-value/versions", json=js({"title": "o"}),
                          timeout=10)
        assert r.status_code == 200 and r.json() == {"id": 1}
        assert r.headers["Content-Type"] == CT
        assert requests.get(base + "/health", timeout=10).json() == {"status": "ok"}
        r = requests.get(base + "/v1/topics", timeout=10)
        assert r.status_code == 404 and r.json()["error_code"] == 404
        # The HTTP listener serves it under the prefix meanwhile.
        r = requests.get(f"http://127.0.0.1:{b.http_port}/registry/subjects", timeout=10)
        assert r.json() == ["own-value"]
    finally:
        b.stop()


def test_authorization(server, reg):
    """Subjects <t>-key and <t>-value are authorized as topic <t>, others as the cluster; a
    schema id is readable through a subject the principal may read, else it is not found."""
    http = f"http://127.0.0.1:{server.http_port}"
    pw = "bob-password-1"
    r = requests.post(http + "/v1/users", json={"name": "regbob", "password": pw}, timeout=10)
    assert r.status_code == 201
    bob = requests.Session()
    bob.auth = ("regbob", pw)
    st, body = reg.call("POST", "/subjects/secret-value/versions", js({"title": "secret"}))
    assert st == 200
    secret_id = body["id"]
    r = bob.post(reg.base + "/subjects/az-value/versions", json=js({"title": "az"}), timeout=10)
    assert r.status_code == 403 and r.json()["error_code"] == 40301
    r = bob.put(reg.base + "/config", json={"compatibility": "NONE"}, timeout=10)
    assert r.status_code == 403 and r.json()["error_code"] == 40301
    for op in ("Write", "Describe"):
        acl = {"principal": "User:regbob", "resource_type": "Topic", "name": "az",
               "operation": op, "permission": "Allow"}
        assert requests.post(http + "/v1/acls", json=acl, timeout=10).status_code == 201
    r = bob.post(reg.base + "/subjects/az-value/versions", json=js({"title": "az"}), timeout=10)
    assert r.status_code == 200
    az_id = r.json()["id"]
    assert bob.get(reg.base + "/subjects", timeout=10).json() == ["az-value"]
    assert bob.get(f"{reg.base}/schemas/ids/{az_id}", timeout=10).status_code == 200
    r = bob.get(f"{reg.base}/schemas/ids/{secret_id}", timeout=10)
    assert r.status_code == 404 and r.json()["error_code"] == 40403
    r = bob.get(reg.base + "/subjects/secret-value/versions", timeout=10)
    assert r.status_code == 403
    r = bob.delete(reg.base + "/subjects/az-value", timeout=10)
    assert r.status_code == 403
