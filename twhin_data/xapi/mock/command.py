"""`twhin-data mock-api`: the command line of the local mock X API (server.py)."""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from twhin_data.core.errors import ConfigError
from twhin_data.xapi.mock.server import FAULTS, SAMPLE_DIR, MockXApi

NAME = "mock-api"


def _fault_arg(text: str) -> tuple[str, float]:
    kind, _, rate = text.partition("=")
    if kind not in FAULTS:
        raise argparse.ArgumentTypeError(f"unknown fault {kind!r}; expected one of {', '.join(FAULTS)}")
    try:
        value = float(rate or "1")
    except ValueError:
        raise argparse.ArgumentTypeError(f"fault rate must be a number in [0, 1], got {rate!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"fault rate must be a number in [0, 1], got {rate!r}")
    return kind, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sample = SAMPLE_DIR / "sample_tweets.jsonl"
    parser.add_argument(
        "--tweets",
        default=str(sample),
        help=f"Tweets to serve: JSONL of API-shaped tweets or Parquet (default: {sample}).",
    )
    parser.add_argument(
        "--statuses",
        default=None,
        help="JSON {id: deleted|protected|suspended|unavailable|missing|invalid} (default: the bundled sample_status.json when --tweets is the sample).",
    )
    parser.add_argument(
        "--cassettes",
        default=None,
        help="Directory of tweepy vcrpy cassettes: serve their recorded tweets and replay recorded lookups.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8080, help="Port (default 8080; 0 picks a free one).")
    parser.add_argument(
        "--token_from_env",
        action="store_true",
        help="Require the bearer token in X_BEARER_TOKEN (default: accept any non-empty token).",
    )
    parser.add_argument(
        "--rate_limit",
        type=int,
        default=None,
        help="Requests per window per token; sends x-rate-limit-* headers (default: unlimited, no headers).",
    )
    parser.add_argument(
        "--window_s", type=float, default=900.0, help="Rate-limit window in seconds (default 900)."
    )
    parser.add_argument(
        "--fault",
        type=_fault_arg,
        action="append",
        default=[],
        metavar="KIND=RATE",
        help=f"Inject a fault with a probability, repeatable. Kinds: {', '.join(FAULTS)}.",
    )
    parser.add_argument(
        "--fault_seed",
        type=int,
        default=0,
        help="Seed of the fault draws (deterministic per batch and attempt).",
    )
    parser.add_argument(
        "--slow_s",
        type=float,
        default=35.0,
        help="Delay of a 'slow' response in seconds (default 35, past a 30 s read timeout).",
    )
    parser.add_argument(
        "--usage_cap", type=int, default=None, help="After this many tweets served, answer 429 usage-capped."
    )
    parser.add_argument(
        "--compliance_events",
        default=None,
        help="JSON {id: reason} that batch compliance jobs report, besides the deleted, protected and "
        "suspended --statuses (default: none).",
    )
    parser.add_argument(
        "--job_delay_s", type=float, default=0.0, help="Seconds a compliance job stays in_progress after its upload."
    )
    parser.add_argument("--job_fail", action="store_true", help="Compliance jobs end failed instead of complete.")
    parser.add_argument(
        "--post_vocabulary",
        action="store_true",
        help="Answer with the v2.167 'post' spellings and api.x.com problem URIs.",
    )


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(args: argparse.Namespace, extra_args: list[str]) -> int:
    if extra_args:
        raise ConfigError(f"unknown flags for mock-api: {' '.join(extra_args)}")
    import os

    statuses = args.statuses
    if statuses is None and Path(args.tweets) == SAMPLE_DIR / "sample_tweets.jsonl":
        default = SAMPLE_DIR / "sample_status.json"
        statuses = str(default) if default.is_file() else None
    token = None
    if args.token_from_env:
        token = os.environ.get("X_BEARER_TOKEN", "").strip()
        if not token:
            raise ConfigError("--token_from_env: X_BEARER_TOKEN is empty or unset")
    try:
        api = MockXApi(
            args.tweets,
            statuses=statuses,
            token=token,
            rate_limit=args.rate_limit,
            window_s=args.window_s,
            faults=dict(args.fault),
            seed=args.fault_seed,
            slow_s=args.slow_s,
            usage_cap=args.usage_cap,
            post_vocabulary=args.post_vocabulary,
            cassettes=args.cassettes,
            compliance_events=args.compliance_events,
            job_delay_s=args.job_delay_s,
            job_fail=args.job_fail,
            host=args.host,
            port=args.port,
        )
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print(f"mock X API serving {len(api.store)} tweets at {api.base_url} (Ctrl-C to stop)", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops it as cleanly as Ctrl-C
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell
        signal.signal(signal.SIGINT, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        api.close()
        print(f"served {len(api.request_log)} requests", flush=True)
    return 0
