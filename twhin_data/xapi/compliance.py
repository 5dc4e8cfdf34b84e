"""X API v2 batch compliance jobs through tweepy: create a job, upload IDs, poll, download events.

The steps (tweepy ``Client.create_compliance_job`` / ``get_compliance_job``):

1. ``POST /2/compliance/jobs`` ``{"type": "tweets", "name": ...}`` returns the job: its ``id``, an
   ``upload_url`` (valid 15 minutes) and a ``download_url`` (valid 7 days);
2. ``PUT`` the IDs, one per line, as text/plain, to ``upload_url`` (a signed storage URL: no
   bearer token goes there);
3. poll ``GET /2/compliance/jobs/:id`` until ``status`` is ``complete`` (or ``failed``/``expired``);
4. ``GET download_url``: JSONL, one event per ID that has one:
   ``{"id", "action": "delete"|"scrub_geo", "created_at", "redacted_at", "reason"}``.

The token is handled as in hydrate: read once by the caller (`TokenSource.read()`), handed to
tweepy, never logged or stored; `ComplianceClient` refuses to be pickled.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import requests
import tweepy

from twhin_data.core.errors import ConfigError, FatalApiError
from twhin_data.core.ids import ID_RE
from twhin_data.xapi import transport
from twhin_data.xapi.transport import TWEEPY_HOST

LOG = logging.getLogger("twhin_data.xapi.compliance")
TERMINAL = ("complete", "failed", "expired")
#: Event actions that mean "delete your copy"; scrub_geo only asks to drop geo data (not stored here).
REMOVING_ACTIONS = ("delete",)


@dataclass(frozen=True)
class ComplianceEvent:
    tweet_id: str
    action: str
    reason: str


@dataclass
class Download:
    """A job's result file: the events, and its lines that were not events (counted, never fatal)."""

    events: list[ComplianceEvent]
    bad_lines: int = 0


class ComplianceClient:
    """Talks to ``base_url`` (the real API or the local mock) with tweepy; build it where it is used."""

    def __init__(self, base_url: str, token: str, *, timeout: tuple[float, float] = (10.0, 60.0)):
        if not token:
            raise ConfigError("the compliance client needs a bearer token")
        transport.guard_tweepy_logger()
        self._timeout = timeout
        self._client = tweepy.Client(bearer_token=token, return_type=requests.Response, wait_on_rate_limit=False)
        self._client.session.mount(TWEEPY_HOST + "/", transport.BaseUrlAdapter(base_url, timeout))
        self._storage = requests.Session()  # upload/download URLs: signed, no Authorization header

    def __repr__(self) -> str:
        return "ComplianceClient()"

    def __reduce__(self):
        raise TypeError("ComplianceClient holds the bearer token and is not picklable")

    def close(self) -> None:
        self._client.session.close()
        self._storage.close()

    def _call(self, what: str, fn: Callable[[], requests.Response]) -> dict:
        try:
            response = fn()
        except tweepy.TweepyException as exc:
            response = getattr(exc, "response", None)
            if response is None:
                raise FatalApiError(f"compliance job: {what} failed: {type(exc).__name__}: {exc}") from None
        except requests.RequestException as exc:
            raise FatalApiError(f"compliance job: {what} failed: {type(exc).__name__}: {exc}") from None
        body = transport.response_json(response)
        if response.status_code != 200 or not isinstance(body.get("data"), dict | list):
            detail = body.get("detail") or body.get("title") or response.reason
            raise FatalApiError(f"compliance job: {what} answered HTTP {response.status_code}: {detail}")
        return body

    def create(self, name: str) -> dict:
        """A new tweets job (one active job per type is allowed by X)."""
        return self._call("create", lambda: self._client.create_compliance_job("tweets", name=name))["data"]

    def get(self, job_id: str) -> dict:
        return self._call(f"get {job_id}", lambda: self._client.get_compliance_job(job_id))["data"]

    def upload(self, job: dict, ids: Iterable[str]) -> int:
        """PUTs the IDs to the job's upload URL; returns how many were sent."""
        lines = [str(i) for i in ids]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            response = self._storage.put(
                job["upload_url"], data=data, headers={"Content-Type": "text/plain"}, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise FatalApiError(f"compliance job {job['id']}: upload failed: {type(exc).__name__}") from None
        if response.status_code not in (200, 201):
            raise FatalApiError(
                f"compliance job {job['id']}: upload answered HTTP {response.status_code} "
                "(the upload URL is valid 15 minutes after the job is created)"
            )
        return len(lines)

    def wait(
        self,
        job_id: str,
        *,
        poll_s: float,
        timeout_s: float,
        on_status: Callable[[dict], None] = lambda job: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict:
        """Polls until the job is complete; FatalApiError when it failed, expired or took too long."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get(job_id)
            on_status(job)
            if job.get("status") == "complete":
                return job
            if job.get("status") in ("failed", "expired"):
                raise FatalApiError(
                    f"compliance job {job_id} ended {job['status']}: rerun with --new_job to start another"
                )
            if time.monotonic() >= deadline:
                raise FatalApiError(
                    f"compliance job {job_id} still {job.get('status')} after {timeout_s:.0f} s: rerun the same "
                    "command later, it resumes this job"
                )
            sleep(poll_s)

    def download(self, job: dict) -> Download:
        try:
            response = self._storage.get(job["download_url"], timeout=self._timeout)
        except requests.RequestException as exc:
            raise FatalApiError(f"compliance job {job['id']}: download failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise FatalApiError(f"compliance job {job['id']}: download answered HTTP {response.status_code}")
        return parse_events(response.content.decode("utf-8", errors="replace").splitlines())


def parse_events(lines: Iterable[str]) -> Download:
    """Compliance result lines -> events; a line that is not an event with a valid ID is counted."""
    out = Download(events=[])
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            tweet_id, action = str(event["id"]), str(event.get("action", "delete"))
        except (ValueError, KeyError, TypeError):
            out.bad_lines += 1
            continue
        if not ID_RE.match(tweet_id):
            out.bad_lines += 1
            continue
        out.events.append(ComplianceEvent(tweet_id, action, str(event.get("reason") or action)))
    return out
