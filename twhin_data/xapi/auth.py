"""Where the X bearer token lives: a picklable description, read on workers, never stored."""

from __future__ import annotations

import os
from dataclasses import dataclass

from twhin_data.core.errors import ConfigError

DEFAULT_ENV_VAR = "X_BEARER_TOKEN"


@dataclass(frozen=True)
class TokenSource:
    """Describes where the bearer token is; holds no secret, so it may travel in a pickled DoFn.

    Precedence: `secret` (Google Secret Manager resource name), then `file`, then the
    environment variable `env_var`. `read()` is called on workers in `DoFn.setup()`.

    Args:
      env_var: environment variable holding the token (default X_BEARER_TOKEN).
      file: path (local or any Beam filesystem, e.g. gs://) of a file holding the token.
      secret: Secret Manager name, ``projects/P/secrets/S[/versions/V]`` (latest version by default).
    """

    env_var: str = DEFAULT_ENV_VAR
    file: str | None = None
    secret: str | None = None

    def describe(self) -> str:
        """Where the token comes from, for messages (never the token itself)."""
        if self.secret:
            return f"Secret Manager secret {self.secret}"
        if self.file:
            return f"token file {self.file}"
        return f"environment variable {self.env_var}"

    def read(self) -> str:
        """Returns the token, stripped; ConfigError when missing or empty."""
        if self.secret:
            token = _read_secret(self.secret)
        elif self.file:
            token = _read_file(self.file)
        else:
            token = os.environ.get(self.env_var, "")
        token = token.strip()
        if not token:
            raise ConfigError(
                f"no X bearer token: {self.describe()} is empty or unset "
                f"(set {DEFAULT_ENV_VAR} or pass --bearer_token_file PATH)"
            )
        if any(ch.isspace() for ch in token):
            raise ConfigError(f"the X bearer token from {self.describe()} contains whitespace")
        return token


def _read_file(path: str) -> str:
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems

        try:
            with FileSystems.open(path) as handle:
                return handle.read().decode("utf-8")
        except Exception as exc:  # Beam wraps every filesystem error differently
            raise ConfigError(f"cannot read the bearer token file {path}: {type(exc).__name__}") from None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the bearer token file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the bearer token file {path} is not UTF-8 text") from None


def _read_secret(name: str) -> str:
    try:
        from google.cloud import secretmanager  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError(
            "reading the token from Secret Manager needs google-cloud-secret-manager "
            "(pip install google-cloud-secret-manager)"
        ) from None
    resource = name if "/versions/" in name else f"{name}/versions/latest"
    try:
        response = secretmanager.SecretManagerServiceClient().access_secret_version(name=resource)
    except Exception as exc:  # permission, not found, network: all are configuration problems here
        raise ConfigError(f"cannot access Secret Manager secret {resource}: {type(exc).__name__}") from None
    return response.payload.data.decode("utf-8")
