"""The X API: tweepy client wrapper, pacing and retries, response parsing, and the local mock server."""
