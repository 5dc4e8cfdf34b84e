"""HTTP plumbing under XClient: the base-URL/timeout adapter and the response classification."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from twhin_data.core.errors import FatalApiError

TWEEPY_HOST = "https://api.twitter.com"  # hard-coded in tweepy.client.BaseClient.request

#: Reply kinds: final ones end a batch's attempts; the others go round again.
OK, BAD_REQUEST, FAILED = "ok", "bad_request", "failed"
RETRY, WAIT_RESET, BACKOFF_429 = "retry", "wait_reset", "backoff_429"


@dataclass
class Reply:
    """What one HTTP attempt means for the batch."""

    kind: str
    status: int | None = None
    body: dict | None = None
    api_version: str | None = None
    url: str | None = None
    problem_type: str | None = None
    title: str | None = None
    detail: str | None = None
    reset: int | None = None  # x-rate-limit-reset of a 429

    @property
    def final(self) -> bool:
        return self.kind in (OK, BAD_REQUEST, FAILED)


class BaseUrlAdapter(HTTPAdapter):
    """Sends tweepy's https://api.twitter.com requests to `base_url`, with (connect, read) timeouts.

    tweepy has neither a host nor a timeout argument (tweepy 4.14+): mounting this adapter on
    the client's session is the supported way to get both.
    """

    def __init__(self, base_url: str, timeout: tuple[float, float], **kwargs):
        super().__init__(**kwargs)
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        if self._base != TWEEPY_HOST and request.url.startswith(TWEEPY_HOST):
            request.url = self._base + request.url[len(TWEEPY_HOST) :]
            # Proxies were chosen for api.twitter.com; choose again for the real destination.
            proxies = get_environ_proxies(request.url) if proxies else proxies
        return super().send(
            request,
            stream=stream,
            timeout=self._timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


def guard_tweepy_logger() -> None:
    """tweepy logs the Authorization header at DEBUG: keep its logger at INFO or above."""
    logger = logging.getLogger("tweepy")
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)


def response_json(response: requests.Response | None) -> dict:
    """The body as a dict; {} when absent, not JSON, truncated or not an object."""
    if response is None:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def is_usage_capped(body: dict) -> bool:
    """A 429 that waiting cannot fix (a usage cap)."""
    return str(body.get("type", "")).endswith("/usage-capped") or body.get("title") == "UsageCapExceeded"


def bad_request_parameters(body: dict) -> set[str]:
    """Parameter names a 400 body blames (errors[].parameters keys, errors[].parameter)."""
    names = set()
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            names.update((error.get("parameters") or {}).keys())
            if error.get("parameter"):
                names.add(error["parameter"])
    return names


def one_line(text: object, limit: int = 300) -> str:
    """API text squeezed onto one line (FatalApiError messages are printed as one line)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def classify(response: requests.Response | None, error: Exception | None) -> Reply:
    """Maps one attempt to a Reply; raises FatalApiError for refusals that stop the whole job."""
    if response is None:
        kind = "timeout" if isinstance(error, requests.Timeout) else "connection-error"
        return Reply(RETRY, problem_type=kind, title=type(error).__name__, detail=one_line(error))
    status, version = response.status_code, response.headers.get("api-version")
    body = response_json(response)
    if 200 <= status < 300:
        if not body and response.content.strip() != b"{}":
            return Reply(
                RETRY,
                status,
                api_version=version,
                problem_type="invalid-json",
                title="Invalid JSON",
                detail="response body is not a complete JSON object",
            )
        return Reply(OK, status, body=body, api_version=version, url=response.url)
    title = one_line(body["title"]) if body.get("title") else None
    detail = body.get("detail") or (getattr(error, "api_messages", None) or [None])[0]
    detail = one_line(detail) if detail else None
    if status == 401:
        raise FatalApiError(
            "X API rejected the bearer token (401 Unauthorized): check X_BEARER_TOKEN or --bearer_token_file"
        )
    if status == 403:
        raise FatalApiError(f"X API refused access (403 {title or 'Forbidden'}): {detail or 'no detail'}")
    if status == 429:
        if is_usage_capped(body):
            raise FatalApiError(
                f"X API usage cap reached (429 {title}): {detail or 'usage capped'}; waiting will not help"
            )
        reset = getattr(error, "reset_time", None)
        return Reply(
            WAIT_RESET if reset is not None else BACKOFF_429,
            429,
            api_version=version,
            problem_type="rate-limited",
            title="Too Many Requests",
            detail="429 Too Many Requests",
            reset=None if reset is None else int(reset),
        )
    if status == 400:
        named = bad_request_parameters(body)
        if named and "ids" not in named:
            # A 400 about fields or expansions is a configuration error, not an ID's fault.
            raise FatalApiError(f"X API rejected the request parameters {sorted(named)} (400): {detail}")
        return Reply(
            BAD_REQUEST,
            400,
            api_version=version,
            problem_type="invalid-request",
            title=title or "Invalid Request",
            detail=detail,
        )
    if status == 404:
        raise FatalApiError(f"X API answered 404 for {response.url.split('?')[0]}: check --api_base_url")
    return Reply(
        RETRY,
        status,
        api_version=version,
        problem_type="server-error" if status >= 500 else "http-error",
        title=f"{status} {response.reason or ''}".strip(),
        detail=detail,
    )
