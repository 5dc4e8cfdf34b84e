"""XClient: tweepy's v2 Client behind pacing, timeouts, retries and per-ID accounting (docs/x-api.md).

Every ID handed to `XClient.lookup` is settled exactly once: a `tweets` row (ok) or an
`unavailable` row (not_found, not_authorized, unavailable, invalid_id, failed). Only job-wide
refusals raise: `FatalApiError` on 401, 403, a usage-capped 429, or a 400/404 that blames the
configuration rather than an ID.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
import tweepy

from twhin_data.core.errors import ConfigError
from twhin_data.core.hashing import stable_hash64
from twhin_data.core.ids import ID_RE
from twhin_data.xapi import parse, transport
from twhin_data.xapi.pacing import Pacer, default_pacing_dir
from twhin_data.xapi.transport import TWEEPY_HOST, Reply

LOG = logging.getLogger("twhin_data.xapi.client")

MAX_IDS = 100

#: The request's default tweet.fields and expansions.
DEFAULT_TWEET_FIELDS = (
    "id",
    "text",
    "lang",
    "created_at",
    "author_id",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "public_metrics",
    "entities",
    "note_tweet",
    "possibly_sensitive",
    "edit_history_tweet_ids",
)
DEFAULT_EXPANSIONS = ("referenced_tweets.id",)
PRIVATE_FIELDS = frozenset({"non_public_metrics", "organic_metrics", "promoted_metrics"})


@dataclass(frozen=True)
class ClientConfig:
    """How XClient talks to the API. Picklable; holds no secret.

    Args:
      base_url: scheme://host[:port] standing in for https://api.twitter.com.
      tweet_fields, expansions, user_fields: request parameters.
      connect_timeout, read_timeout: seconds, passed to every request (tweepy sends none).
      max_retries: retries after a 5xx, timeout, connection error, bad JSON or header-less 429.
      backoff_base, backoff_cap: exponential backoff in seconds (jitter is deterministic).
      requests_per_window: window budget; None trusts the x-rate-limit-* headers.
      window_s: window length when the API sends no reset header.
      max_concurrency: in-flight requests per token on this machine.
      partitions: machines sharing the token (Dataflow: max_num_workers); budget per machine = limit // N.
      pacing_dir: shared pacing state; default a temp dir keyed by a hash of token and base URL.
      reset_margin_s: seconds waited past the reset time.
      max_rate_limit_waits: 429s with a reset header tolerated per batch before its IDs fail.
    """

    base_url: str = TWEEPY_HOST
    tweet_fields: tuple[str, ...] = DEFAULT_TWEET_FIELDS
    expansions: tuple[str, ...] = DEFAULT_EXPANSIONS
    user_fields: tuple[str, ...] = ()
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    requests_per_window: int | None = None
    window_s: float = 900.0
    max_concurrency: int = 1
    partitions: int = 1
    pacing_dir: str | None = None
    reset_margin_s: float = 1.0
    max_rate_limit_waits: int = 20
    jitter_seed: int = 0

    def validate(self) -> None:
        """ConfigError on values that cannot work."""
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigError(f"api base URL must be scheme://host[:port], got {self.base_url!r}")
        private = PRIVATE_FIELDS.intersection(self.tweet_fields)
        if private:
            raise ConfigError(f"tweet fields {sorted(private)} need user context; not for hydration")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ConfigError("timeouts must be > 0 seconds")
        if self.max_retries < 0 or self.backoff_base < 0 or self.backoff_cap < 0:
            raise ConfigError("max_retries, backoff_base and backoff_cap must be >= 0")
        if self.requests_per_window is not None and self.requests_per_window < 1:
            raise ConfigError("requests_per_window must be >= 1")
        if self.max_concurrency < 1 or self.partitions < 1:
            raise ConfigError("max_concurrency and partitions must be >= 1")


@dataclass
class LookupOutcome:
    """What one `lookup` settled, and what it cost."""

    tweets: list[dict] = field(default_factory=list)  # schemas.tweets.TWEETS rows, source="api"
    unavailable: list[dict] = field(default_factory=list)  # schemas.tweets.UNAVAILABLE rows
    requests: int = 0  # HTTP requests sent (retries and bisection included)
    reads: int = 0  # tweets returned (data + includes.tweets): a conservative billing estimate
    waited_s: float = 0.0  # seconds slept for rate-limit resets and backoff
    raw: list[dict] = field(default_factory=list)  # 200 bodies + "__twhin" request metadata
    expansion_errors: list[dict] = field(default_factory=list)  # errors[] about expansions, never IDs
    rate_limited: int = 0  # 429 responses seen (usage caps raise instead)
    retries: int = 0  # retries after transient failures


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class XClient:
    """Looks up ≤100 tweet IDs per call through tweepy, settling every ID (see module docstring).

    Build it in `DoFn.setup()` (it opens a session and reads shared pacing state); never pickle it.
    """

    def __init__(self, config: ClientConfig, token: str, *, sleep: Callable[[float], None] = time.sleep):
        config.validate()
        if not token:
            raise ConfigError("XClient needs a bearer token")
        transport.guard_tweepy_logger()
        self.config = config
        self._sleep = sleep
        self._client = tweepy.Client(
            bearer_token=token, return_type=requests.Response, wait_on_rate_limit=False
        )
        adapter = transport.BaseUrlAdapter(
            config.base_url,
            (config.connect_timeout, config.read_timeout),
            pool_maxsize=max(10, config.max_concurrency),
        )
        self._client.session.mount(TWEEPY_HOST + "/", adapter)
        self._pacer = Pacer(
            config.pacing_dir or default_pacing_dir(token, config.base_url),
            requests_per_window=config.requests_per_window,
            window_s=config.window_s,
            max_concurrency=config.max_concurrency,
            partitions=config.partitions,
            margin_s=config.reset_margin_s,
            sleep=sleep,
        )

    def __repr__(self) -> str:  # never show the token
        return f"XClient(base_url={self.config.base_url!r})"

    def __reduce__(self):
        # Pickling would copy the token into the pickle (and a Dataflow job's staged DoFns).
        raise TypeError("XClient holds the bearer token and is not picklable: build it in DoFn.setup()")

    def close(self) -> None:
        self._client.session.close()

    def __enter__(self) -> XClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def lookup(self, ids: list[str]) -> LookupOutcome:
        """Settles every ID in `ids` (≤100 distinct); duplicates collapse; malformed ones are invalid_id."""
        wanted = list(dict.fromkeys(str(i).strip() for i in ids))
        if len(wanted) > MAX_IDS:
            raise ValueError(f"lookup takes at most {MAX_IDS} IDs per call, got {len(wanted)}")
        outcome = LookupOutcome()
        valid = [i for i in wanted if ID_RE.match(i)]
        for bad in (i for i in wanted if not ID_RE.match(i)):
            outcome.unavailable.append(
                parse.unavailable_row(
                    bad,
                    "invalid_id",
                    problem_type=None,
                    title="Invalid ID",
                    detail="not 1-19 decimal digits; never sent",
                    http_status=None,
                    api_version=None,
                    retrieved_at=_now(),
                )
            )
        pacer_waited = self._pacer.waited_s
        if valid:
            self._settle(valid, outcome)
        outcome.waited_s += self._pacer.waited_s - pacer_waited
        return outcome

    def _settle(self, ids: list[str], outcome: LookupOutcome) -> None:
        reply = self._send(ids, outcome)
        if reply.kind == transport.OK:
            self._accept(ids, reply, outcome)
        elif reply.kind == transport.BAD_REQUEST and len(ids) > 1:
            # A 400 naming `ids` in a batch: bisect until the offending ID stands alone.
            middle = len(ids) // 2
            self._settle(ids[:middle], outcome)
            self._settle(ids[middle:], outcome)
        else:
            retrieved = _now()
            for tweet_id in ids:
                outcome.unavailable.append(
                    parse.unavailable_row(
                        tweet_id,
                        "failed",
                        problem_type=reply.problem_type,
                        title=reply.title,
                        detail=reply.detail,
                        http_status=reply.status,
                        api_version=reply.api_version,
                        retrieved_at=retrieved,
                    )
                )

    def _accept(self, ids: list[str], reply: Reply, outcome: LookupOutcome) -> None:
        retrieved = _now()
        tweets, unavailable, expansion_errors = parse.parse_lookup(
            reply.body, ids, http_status=reply.status, api_version=reply.api_version, retrieved_at=retrieved
        )
        outcome.tweets.extend(tweets)
        outcome.unavailable.extend(unavailable)
        outcome.expansion_errors.extend(expansion_errors)
        outcome.reads += len(tweets) + len(parse.included_tweets(reply.body))
        meta = {
            "url": reply.url,
            "ids": ids,
            "http_status": reply.status,
            "api_version": reply.api_version,
            "retrieved_at": retrieved.isoformat().replace("+00:00", "Z"),
        }
        outcome.raw.append({**reply.body, "__twhin": meta})

    def _request(self, ids: list[str]) -> tuple[requests.Response | None, Exception | None]:
        config = self.config
        try:
            response = self._client.get_tweets(
                ids=ids,
                tweet_fields=list(config.tweet_fields) or None,
                expansions=list(config.expansions) or None,
                user_fields=list(config.user_fields) or None,
            )
            return response, None
        except tweepy.HTTPException as exc:
            return exc.response, exc
        except requests.RequestException as exc:
            return None, exc

    def _send(self, ids: list[str], outcome: LookupOutcome) -> Reply:
        """One batch through pacing and retries; raises FatalApiError for job-wide refusals."""
        attempt = rate_waits = 0
        while True:
            with self._pacer.slot():
                response, error = self._request(ids)
            outcome.requests += 1
            if response is not None:
                self._pacer.update(response.headers, response.status_code)
            reply = transport.classify(response, error)
            if reply.final:
                return reply
            if reply.status == 429:
                outcome.rate_limited += 1
            if reply.kind == transport.WAIT_RESET:
                rate_waits += 1
                if rate_waits <= self.config.max_rate_limit_waits:
                    self._pacer.on_rate_limited(reply.reset)  # the next slot() sleeps until the reset
                    continue
                reply.kind, reply.detail = (
                    transport.FAILED,
                    f"still rate limited after {rate_waits - 1} resets",
                )
                return reply
            attempt += 1
            if attempt > self.config.max_retries:
                reply.kind, reply.detail = (
                    transport.FAILED,
                    f"gave up after {attempt} attempts: {reply.detail}",
                )
                return reply
            outcome.retries += 1
            delay = self._backoff(ids, attempt, rate=reply.kind == transport.BACKOFF_429)
            LOG.info("retrying %d IDs in %.2f s after %s", len(ids), delay, reply.title)
            self._sleep(delay)
            outcome.waited_s += delay

    def _backoff(self, ids: list[str], attempt: int, *, rate: bool = False) -> float:
        """Exponential backoff with deterministic jitter (same batch and attempt, same delay)."""
        base = self.config.backoff_base * (5 if rate else 1)  # a 429 without reset headers backs off longer
        delay = min(self.config.backoff_cap, base * 2 ** (attempt - 1))
        rng = random.Random(stable_hash64(",".join(ids), salt=f"{self.config.jitter_seed}:{attempt}"))
        return delay * (0.5 + 0.5 * rng.random())
