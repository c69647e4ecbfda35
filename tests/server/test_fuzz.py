"""Every route (each method and path app.routes has: a new route is fuzzed as soon as it
exists) gets generated bad requests: bodies made from its /openapi.json schema with one part
made hostile (wrong types, integers of 400 or 4,301 digits, 1e400, NaN literals, unknown
keys, missing keys), mutated specs and snapshots, random JSON, random bytes, wrong content
types, junk queries and path parameters. Asserted for each answer: never a 5xx, every
refusal in the one error shape, and after each refusal the run's spec, settings, status,
step and weights (a digest of the snapshot the worker thread writes) as they were.

Problems are collected over all examples and reported per route at the end (no shrinking):
the summary is what a fix needs. Hypothesis runs derandomized, without deadlines, so CI
sees the same examples every time.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from server.auth import flat_routes
from tests.server import images
from tests.server.conftest import TestClient, presenter, tiny_settings, wait_ready
from tests.server.tiny import TINY_SPEC

EXAMPLES = {"body": 45, "other": 12}    # per (method, path): routes that take a body get more
MIN_EXAMPLES = 500


class Raw(str):
    """A JSON literal written as it is: numbers no encoder writes (1e400, 4,301 digits)."""


# Integers no float holds (json.loads makes them ints; float() overflows), then the rest.
OVERFLOW = [Raw("1" + "0" * 400), Raw("-" + "3" * 330), Raw("7" * 309)]
HUGE = [*OVERFLOW, Raw("-" + "9" * 4301), Raw("1e400"), Raw("-1e309"), Raw("NaN"),
        Raw("Infinity"), Raw("-Infinity"), 10**20, -(2**53) - 1, 2**63]
HOSTILE = [*HUGE, None, True, False, 0, -1, 3.0, 2.5, 1e-320, -0.0, 1e308, "", "x" * 200,
           "1e400", "null", [], {}, [1, "a", None], {"a": {"b": [1]}}, "../../etc/passwd"]
LAYER_KEYS = ["type", "sx", "sy", "filters", "stride", "pad", "stride_x", "pad_y",
              "num_neurons", "num_classes", "drop_prob", "l1_decay_mul", "l2_decay_mul",
              "activation", "group_size", "out_sx", "out_sy", "out_depth", "layers", "bias",
              "mode", "rounding", "projection", "branches", "alpha", "beta", "k", "n",
              "slope", "label_smoothing", "bogus"]
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=fuzz", "image/png", "application/octet-stream",
                 None]

scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=12)
           | st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4),
                           max_leaves=10)
hostile = st.sampled_from(HOSTILE) | json_values
# Where a number belongs: mostly one no float holds, an over-long integer or NaN.
number_like = st.sampled_from(OVERFLOW) | st.sampled_from(HUGE) | hostile


def encode(value) -> str:
    """JSON text, Raw literals as they are."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(encode(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "1e400" if value > 0 else "-1e400"
    return json.dumps(value)


def leaves(doc, path=()) -> list[tuple]:
    """Paths to every number (and bool) inside a JSON document."""
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in leaves(v, path + (k,))]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in leaves(v, path + (i,))]
    return [path] if isinstance(doc, (int, float)) else []


def replaced(doc, path: tuple, value):
    """A copy of doc with the part at `path` replaced (copies along the path only)."""
    if not path:
        return value
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = replaced(doc[path[0]], path[1:], value)
    return copy


def mutate_document(data, doc):
    """Half the time one of the document's numbers made hostile, else any part changed."""
    numbers = leaves(doc)
    if numbers and data.draw(st.booleans()):
        return replaced(doc, data.draw(st.sampled_from(numbers)), data.draw(number_like))
    return mutate(data, doc)


def mutate(data, doc, depth: int = 4):
    """A copy of doc with one part (chosen by Hypothesis) replaced, removed or added."""
    if depth == 0 or not isinstance(doc, (dict, list)) or not doc:
        return data.draw(number_like)
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = data.draw(st.sampled_from(keys))
    action = data.draw(st.sampled_from(["replace", "deeper", "deeper", "remove", "add"]))
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    if action == "replace":
        copy[key] = data.draw(number_like)
    elif action == "deeper":
        copy[key] = mutate(data, doc[key], depth - 1)
    elif action == "remove":
        del copy[key]
    elif isinstance(copy, dict):
        copy[data.draw(st.sampled_from(LAYER_KEYS))] = data.draw(number_like)
    else:
        copy.append(data.draw(number_like))
    return copy


def hostile_spec(data) -> list:
    """The tiny net with a layer of any type added (or one of its own) whose key, one the
    engine knows for that type mostly, holds a hostile value."""
    from engine.spec.layers import LAYER_KEYS as KNOWN
    spec = [dict(layer) for layer in TINY_SPEC]
    kind = data.draw(st.sampled_from(sorted(KNOWN)))
    if data.draw(st.booleans()):
        spec.insert(len(spec) - 1, {"type": kind})
        layer = spec[-2]
    else:
        layer = spec[data.draw(st.integers(0, len(spec) - 1))]
    keys = [k for k in KNOWN.get(layer["type"], ()) if k != "type"] or LAYER_KEYS
    layer[data.draw(st.sampled_from(keys) | st.sampled_from(LAYER_KEYS))] = data.draw(number_like)
    return spec


def schema_body(data, schema: dict, components: dict, names: list[str]):
    """A body for a JSON-schema object with fields made hostile, or an unknown key added.
    `names`: field names to try where the schema names none (a loose schema)."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:
        schema = next((s for s in schema["anyOf"] if s.get("type") != "null"), schema)
        if "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[1]]
    fields = sorted(schema.get("properties", {})) or names
    kinds = ["number", "number", "several", "unknown"] + ["spec"] * 2 * ("spec" in fields)
    kind = data.draw(st.sampled_from(kinds))
    if kind == "spec":
        spec = hostile_spec(data)
        return {"spec": encode(spec) if data.draw(st.booleans()) else spec}
    if kind == "number":
        return {data.draw(st.sampled_from(fields)): data.draw(number_like)}
    body = {name: data.draw(hostile) for name in
            data.draw(st.lists(st.sampled_from(fields), max_size=3, unique=True))}
    if kind == "unknown" or not body:
        body[data.draw(st.sampled_from(["bogus", "__proto__", "seed", "token"]))] = 1
    return body


class Fuzzer:
    def __init__(self, client) -> None:
        self.client = client
        self.openapi = client.get("/openapi.json").json()
        self.snapshot = json.loads(client.get("/api/snapshot", headers=presenter()).content)
        self.convnetjs = json.loads(client.get("/api/snapshot", params={"format": "convnetjs"},
                                               headers=presenter()).content)
        self.problems: dict[str, Counter] = defaultdict(Counter)
        self.examples: dict[str, Counter] = defaultdict(Counter)
        self.first: dict[str, str] = {}
        self.baseline = self.fingerprint()
        # Names a loose schema would not give: the settings /api/state shows, the usual keys.
        self.names = sorted(set(client.get("/api/state").json()["settings"]) |
                            {"action", "index", "spec", "preset", "name", "events"})

    def fingerprint(self) -> tuple:
        state = self.client.get("/api/state").json()
        weights = self.client.get("/api/snapshot", headers=presenter()).content
        return (state["status"], json.dumps(state["net"]["spec"]), json.dumps(state["settings"]),
                state["metrics"]["step"], hashlib.sha256(weights).hexdigest())

    def operation(self, path: str, method: str) -> dict:
        return self.openapi["paths"].get(path, {}).get(method.lower(), {})

    def request_for(self, data, method: str, path: str) -> dict:
        """The parts of one bad request to `method path`."""
        url = re.sub(r"\{[^}]+\}", lambda _: data.draw(st.sampled_from(
            ["x", "0", "..%2F..", "%00", "a" * 300])), path)
        if path == "/static":
            url = "/static/" + data.draw(st.sampled_from(["js/app.js", "nope", "../README.md",
                                                          "js/../../pyproject.toml", "%2e%2e/x"]))
        params = data.draw(st.dictionaries(st.sampled_from(
            ["preset", "format", "events", "token", "top", "x"]), st.text(max_size=30)
            | st.sampled_from(["1" + "0" * 400, "NaN", "-1", ""]), max_size=2))
        content, content_type = b"", None
        if method in ("POST", "PUT", "PATCH"):
            content, content_type = self.body_for(data, method, path)
        headers = presenter() if data.draw(st.sampled_from([True] * 9 + [False])) else {}
        if content_type:
            headers["Content-Type"] = content_type
        return {"method": method, "url": url, "params": params, "content": content,
                "headers": headers}

    def body_for(self, data, method: str, path: str) -> tuple[bytes, str | None]:
        operation = self.operation(path, method)
        content = operation.get("requestBody", {}).get("content", {})
        kind = data.draw(st.sampled_from(["schema", "schema", "schema", "json", "bytes"]))
        if "/snapshot" in path and method == "PUT":
            doc = self.convnetjs if data.draw(st.booleans()) else self.snapshot
            raw = encode(mutate_document(data, doc)).encode()
            if data.draw(st.booleans()):
                return (b"--fuzz\r\nContent-Disposition: form-data; name=\"file\"; "
                        b"filename=\"s.json\"\r\n\r\n" + raw + b"\r\n--fuzz--\r\n",
                        "multipart/form-data; boundary=fuzz")
            return raw, "application/json"
        if "/classify" in path:
            raw = data.draw(st.sampled_from([images.png(), b"", b"GIF89a", b"\x89PNG\r\n"]) |
                            st.binary(max_size=64))
            return raw, data.draw(st.sampled_from(CONTENT_TYPES))
        if kind == "schema" and "application/json" in content:
            schema = content["application/json"]["schema"]
            body = schema_body(data, schema, self.openapi["components"]["schemas"], self.names)
            return encode(body).encode(), "application/json"
        if kind == "json":
            return encode(data.draw(json_values | st.sampled_from(HOSTILE))).encode(), \
                data.draw(st.sampled_from(CONTENT_TYPES))
        return data.draw(st.binary(max_size=64)), data.draw(st.sampled_from(CONTENT_TYPES))

    def send(self, request: dict):
        with self.client.stream(request["method"], request["url"], params=request["params"],
                                content=request["content"], headers=request["headers"],
                                follow_redirects=False) as response:
            endless = response.headers.get("content-type", "").startswith("text/event-stream")
            return response, b"" if endless else response.read()

    def check(self, route: str, request: dict) -> None:
        self.examples[route][request["method"]] += 1
        response, body = self.send(request)
        status = response.status_code
        problem = None
        if status >= 500:
            problem = f"{status}"
        elif status >= 400 and request["method"] != "HEAD":
            try:
                shape = json.loads(body)
                ok = isinstance(shape.get("error"), str) and isinstance(shape.get("detail"), str)
            except (ValueError, AttributeError):
                ok = False
            if not ok:
                problem = f"{status} not in the error shape"
        if status >= 400 and problem is None:
            if self.fingerprint() != self.baseline:
                problem = f"{status} but the run changed"
                self.rebase()
        elif status < 400:
            self.rebase()                  # accepted (not a refusal): the new normal
        if problem:
            self.problems[route][problem] += 1
            self.first.setdefault(f"{route} {problem}", f"{request} -> {body[:300]!r}")

    def rebase(self) -> None:
        self.client.post("/api/control", json={"action": "pause"}, headers=presenter())
        self.baseline = self.fingerprint()


def routes_of(app) -> list[tuple[str, str]]:
    """(method, path) of every route the app has; HEAD for each GET."""
    out = []
    for path, route in flat_routes(app.routes):
        methods = set(getattr(route, "methods", None) or {"GET"}) - {"HEAD"}
        out.extend((method, path) for method in sorted(methods))
        if "GET" in methods:
            out.append(("HEAD", path))
    return out


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    settings_ = tiny_settings(tmp_path_factory.mktemp("fuzz"), login_failures=10**6,
                              save_min_interval_s=0.0)
    # A 500 is an answer to count here, not an exception to raise in the test.
    with TestClient(create_app(settings_), raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client


def test_no_route_answers_a_bad_request_with_a_5xx_or_a_changed_run(fuzz_client):
    fuzzer = Fuzzer(fuzz_client)
    routes = routes_of(fuzz_client.app)
    assert len(routes) >= 20

    for method, path in routes:
        @settings(max_examples=EXAMPLES["body" if method in ("POST", "PUT", "PATCH")
                                        else "other"], derandomize=True, deadline=None,
                  database=None, suppress_health_check=list(HealthCheck))
        @given(st.data())
        def fuzz_one(data):
            fuzzer.check(f"{method} {path}", fuzzer.request_for(data, method, path))

        fuzz_one()

    total = sum(sum(c.values()) for c in fuzzer.examples.values())
    assert total >= MIN_EXAMPLES, total
    assert all(sum(c.values()) >= 10 for c in fuzzer.examples.values()), fuzzer.examples
    assert len(fuzzer.examples) == len(routes)
    report = {route: dict(counts) for route, counts in fuzzer.problems.items()}
    assert not report, (report, fuzzer.first)
