"""`twhin-data mock-api`: a local X API v2 tweet-lookup server for tests, the demo and benchmarks.

Serves `GET /2/tweets?ids=` (and `/2/tweets/:id`) with the real response shape: `data`,
`includes.tweets` for referenced tweets, `errors` for deleted/protected IDs; bearer-token check;
`x-rate-limit-*` headers over fixed windows; seeded fault injection; the v2.167 `post` vocabulary;
and replay of recorded tweepy cassettes.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twhin_data.core.errors import ConfigError
from twhin_data.core.hashing import unit_interval
from twhin_data.core.ids import ID_RE
from twhin_data.xapi.mock import data as md
from twhin_data.xapi.mock.compliance import ComplianceJobs

LOG = logging.getLogger("twhin_data.xapi.mock.server")
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data"

FAULTS = md.FAULTS


class MockXApi:
    """A real ThreadingHTTPServer on 127.0.0.1 in a background thread; use as a context manager.

    Args:
      tweets: JSONL/Parquet path, iterable of API-shaped tweets, or {id: tweet}.
      statuses: {id: deleted|protected|suspended|unavailable|missing|invalid} or a JSON file of it.
      token: the bearer token to require (None: any non-empty bearer token).
      rate_limit: requests per window per token (None: unlimited and no x-rate-limit headers).
      window_s: window length in seconds (windows are aligned to multiples of it).
      faults: {kind: probability}, drawn per request from a hash of (seed, IDs, attempt): deterministic.
      script: fault kinds (or "ok") for the next requests, in arrival order, before `faults` apply.
      seed: seed of the fault draws.
      slow_s: how long a "slow" response takes.
      usage_cap: tweets served after which every request gets a usage-capped 429.
      post_vocabulary: answer with the v2.167 `post` spellings and api.x.com problem URIs.
      cassettes: a tweepy cassette directory: its tweets join the store and recorded responses replay.
      compliance_events: {id: reason} (or a JSON file of it) that batch compliance jobs report, on
        top of the deleted, protected and suspended `statuses` (compliance.py).
      job_delay_s: how long a compliance job stays in_progress after its upload.
      job_fail: compliance jobs end `failed` instead of `complete`.
    """

    def __init__(
        self,
        tweets: str | Path | Iterable[dict] | dict | None = None,
        *,
        statuses: str | Path | dict | None = None,
        token: str | None = "mock-token",
        rate_limit: int | None = None,
        window_s: float = 900.0,
        faults: dict[str, float] | None = None,
        script: list[str] | None = None,
        seed: int = 0,
        slow_s: float = 2.0,
        usage_cap: int | None = None,
        post_vocabulary: bool = False,
        cassettes: str | Path | None = None,
        compliance_events: str | Path | dict | None = None,
        job_delay_s: float = 0.0,
        job_fail: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.store = md.load_tweets(tweets)
        self.replays: dict = {}
        if cassettes is not None:
            recorded, self.replays = md.load_cassettes(cassettes)
            for key, value in recorded.items():
                self.store.setdefault(key, value)
        self.statuses = md.load_statuses(statuses)
        events = md.load_json_mapping(compliance_events, "compliance events")
        self.compliance = ComplianceJobs(statuses=self.statuses, events=events, delay_s=job_delay_s, fail=job_fail)
        self.token = token
        self.rate_limit = rate_limit
        self.window_s = float(window_s)
        self.faults = dict(faults or {})
        unknown = sorted((set(self.faults) | set(script or [])) - set(FAULTS) - {"ok"})
        if unknown:
            raise ConfigError(f"unknown mock faults {unknown}; expected {', '.join(FAULTS)}")
        self.script = list(script or [])
        self.seed = seed
        self.slow_s = slow_s
        self.usage_cap = usage_cap
        self.post_vocabulary = post_vocabulary
        self.request_log: list[list[str]] = []  # the IDs of every authorized lookup request
        self.status_log: list[int] = []  # the HTTP status answered, aligned with request_log
        self.time_log: list[float] = []  # wall-clock time of each answer, aligned with status_log
        self.query_log: list[dict[str, str]] = []  # each lookup's query parameters, aligned with request_log
        self.served = 0  # tweets returned in data (for usage_cap)
        self._lock = threading.Lock()
        self._windows: Counter = Counter()
        self._attempts: Counter = Counter()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="mock-x-api", daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MockXApi:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def count_status(self, status: int) -> int:
        """How many lookup requests were answered with `status`."""
        with self._lock:
            return sum(1 for s in self.status_log if s == status)

    # -- request handling (called from server threads) --

    def _rate_headers(self, token: str) -> tuple[dict, bool]:
        """x-rate-limit-* headers for this request, and whether it is over the window's limit."""
        if self.rate_limit is None:
            return {}, False
        now = time.time()
        window = int(now // self.window_s)
        with self._lock:
            self._windows[(token, window)] += 1
            used = self._windows[(token, window)]
        reset = math.ceil((window + 1) * self.window_s)
        headers = {
            "x-rate-limit-limit": str(self.rate_limit),
            "x-rate-limit-remaining": str(max(0, self.rate_limit - used)),
            "x-rate-limit-reset": str(reset),
        }
        return headers, used > self.rate_limit

    def _draw_fault(self, ids: list[str]) -> str | None:
        with self._lock:
            if self.script:
                kind = self.script.pop(0)
                return None if kind == "ok" else kind
            key = ",".join(ids)
            attempt = self._attempts[key]
            self._attempts[key] += 1
        draw = unit_interval(f"{key}|{attempt}", salt=str(self.seed))
        total = 0.0
        for kind in sorted(self.faults):
            total += self.faults[kind]
            if draw < total:
                return kind
        return None

    def answer(self, path: str, query: dict[str, list[str]], auth: str) -> tuple[int, dict, Any]:
        """(status, headers, body) for one request; body is a dict, bytes, or ("slow", dict)."""
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        if not token or (self.token is not None and token != self.token):
            return 401, {}, md.PROBLEMS[401]
        if path.startswith("/2/compliance/jobs"):
            return self._answer_compliance(path, query)
        single = path.startswith("/2/tweets/")
        if path != "/2/tweets" and not single:
            return 404, {}, {"title": "Not Found Error", "type": "about:blank", "status": 404, "detail": path}
        ids = (
            [path.rsplit("/", 1)[1]] if single else [i for i in (query.get("ids") or [""])[0].split(",") if i]
        )
        with self._lock:
            self.request_log.append(ids)
            self.query_log.append({k: v[0] for k, v in query.items() if not k.startswith("_")})
        status, headers, body = self._answer_ids(ids, query, token)
        with self._lock:
            self.status_log.append(status)
            self.time_log.append(time.time())
        return status, headers, body

    def _answer_compliance(self, path: str, query: dict) -> tuple[int, dict, Any]:
        """The compliance-job endpoints (compliance.py); a POST's JSON body arrives as ``_body``."""
        if "_body" in query:
            status, body = self.compliance.create(query["_body"], self.base_url)
        elif job_id := path[len("/2/compliance/jobs") :].strip("/"):
            status, body = self.compliance.get(job_id)
        else:
            status, body = self.compliance.list(query)
        return status, {}, body

    def _answer_ids(self, ids: list[str], query: dict, token: str) -> tuple[int, dict, Any]:
        bad = [i for i in ids if not ID_RE.match(i) or self.statuses.get(i) == "invalid"]
        if not ids or len(ids) > 100 or bad:
            message = f"ids: {len(ids)} IDs (1 to 100 allowed)" if not bad else f"invalid ids: {bad}"
            return 400, {}, md.invalid_request(message, bad or ids[:1])
        unknown = md.unknown_parameter_values(query)
        if unknown is not None:
            parameter, values = unknown
            return (
                400,
                {},
                md.invalid_request(
                    f"The query parameter [{parameter}] has invalid values {values}", values, parameter
                ),
            )
        headers, over = self._rate_headers(token)
        fault = self._draw_fault(ids)
        if over or fault == "429":
            # A 429 always says the window is spent, with a reset time, also when the mock has no limit.
            reset = headers.get("x-rate-limit-reset", str(math.ceil(time.time() + 1)))
            headers = {**headers, "x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}
            return 429, headers, md.PROBLEMS[429]
        if fault is not None:
            return md.fault_answer(
                fault,
                headers,
                lambda: md.lookup_body(ids, self.store, self.statuses, *md.request_fields(query)),
            )
        with self._lock:
            capped = self.usage_cap is not None and self.served >= self.usage_cap
        if capped:
            return 429, headers, md.PROBLEMS["usage-cap"]
        if frozenset(ids) in self.replays and "tweet.fields" not in query:
            status, recorded, raw = self.replays[frozenset(ids)]
            return status, {**recorded, **headers}, raw
        fields, expansions = md.request_fields(query)
        body = md.lookup_body(ids, self.store, self.statuses, fields, expansions)
        with self._lock:
            self.served += len(body.get("data", []))
        if self.post_vocabulary:
            body = md.post_vocabulary(body)
        if len(ids) == 1 and "data" in body and query.get("_single"):
            body["data"] = body["data"][0]
        return 200, headers, body


def _handler_for(api: MockXApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "twhin-mock-x-api"

        def _payload(self) -> bytes:
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            try:
                body = json.loads(self._payload() or b"{}")
            except ValueError:
                body = None
            path = urlsplit(self.path).path
            self._send(*api.answer(path, {"_body": body}, self.headers.get("Authorization", "")))

        def do_PUT(self) -> None:  # noqa: N802 - upload_url: no bearer token (a signed URL in real life)
            job_id = urlsplit(self.path).path.rsplit("/", 1)[-1]
            status = api.compliance.upload(job_id, self._payload())
            self._send(status, {}, b"")

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            parts = urlsplit(self.path)
            if parts.path.startswith("/_storage/download/"):
                status, raw = api.compliance.download(parts.path.rsplit("/", 1)[-1])
                self._send(status, {"content-type": "application/json"}, raw)
                return
            query = parse_qs(parts.query, keep_blank_values=True)
            if parts.path.startswith("/2/tweets/"):
                query["_single"] = ["1"]
            self._send(*api.answer(parts.path, query, self.headers.get("Authorization", "")))

        def _send(self, status: int, headers: dict, body: Any) -> None:
            if isinstance(body, tuple):  # ("slow", body): answer late, maybe to a client that gave up
                time.sleep(api.slow_s)
                body = body[1]
            raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=True).encode("utf-8")
            try:
                self.send_response(status)
                headers = {
                    "content-type": "application/json; charset=utf-8",
                    "api-version": "2.159",
                    **headers,
                }
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server API
            LOG.debug("mock %s", format % args)

    return Handler
