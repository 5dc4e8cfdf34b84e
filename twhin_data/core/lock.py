"""One writer per output folder: a lock file naming its holder (host, PID, start time, command).

A second run on the same output meets a one-line error; a lock left by a process that is gone (on
this host) is taken over. The lock is re-entrant within one process, so `twhin-data run` can hold
its output folder while each stage it runs takes the same lock again.

Local folders use an exclusive create (``O_EXCL``), which is atomic. Object stores have no such
primitive through Beam's FileSystems: there the lock is advisory (written and checked, not atomic),
and the completion markers (core/files.py) are what protect readers.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass

from twhin_data.core import files
from twhin_data.core.errors import ConfigError

LOCK = ".twhin-data.lock"


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started: str  # UTC, ISO 8601
    command: str

    def alive(self) -> bool:
        """False only when the holder ran on this host and its process is gone."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by someone else
            return True
        return True


def _me(command: str) -> Holder:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return Holder(socket.gethostname(), os.getpid(), started, command)


def _read(path: str) -> Holder | None:
    try:
        return Holder(**json.loads(files.read_bytes(path)))
    except (OSError, ValueError, TypeError):
        return None  # vanished or half-written: treated as no holder


def _create_local(path: str, holder: Holder) -> bool:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(holder), handle)
    return True


class OutputLock:
    """``with OutputLock(output, "prepare"):`` holds `output` for this process.

    Raises ConfigError (one line) when another live process holds it.
    """

    _held: dict[str, int] = {}  # path -> depth, for this process

    def __init__(self, output: str, command: str):
        self.path = files.join(output, LOCK)
        self._command = command

    def __enter__(self) -> OutputLock:
        if self._held.get(self.path):
            self._held[self.path] += 1
            return self
        me = _me(self._command)
        for _attempt in range(3):
            if self._try(me):
                self._held[self.path] = 1
                return self
            holder = _read(self.path)
            if holder is not None and holder.alive() and holder.pid != os.getpid():
                raise ConfigError(
                    f"{os.path.dirname(self.path)} is being written by twhin-data {holder.command} "
                    f"(pid {holder.pid} on {holder.host}, since {holder.started}); wait for it to finish, "
                    f"or remove {self.path} if that run is gone"
                )
            files.remove(self.path)  # stale: its holder is dead (or the file was half-written)
        raise ConfigError(f"could not take the lock {self.path}: another run keeps replacing it")

    def _try(self, me: Holder) -> bool:
        if not files.is_remote(self.path):
            return _create_local(self.path, me)
        if files.exists(self.path):
            return False
        files.write_json(self.path, asdict(me))
        return True

    def __exit__(self, *exc) -> None:
        depth = self._held.get(self.path, 0) - 1
        if depth > 0:
            self._held[self.path] = depth
            return
        self._held.pop(self.path, None)
        holder = _read(self.path)
        if holder is None or holder.pid == os.getpid():
            files.remove(self.path)
