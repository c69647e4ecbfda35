"""The presenter's token and sessions, kept across restarts of `convnet-demo serve`.

A restart (a crash, a laptop lid, a new version) must not lock the presenter out of the page
that is open on the projector. Both live in the user's cache directory (CONVNET_DEMO_CACHE,
else XDG_CACHE_HOME/convnet-demo or ~/.cache/convnet-demo), mode 0600:

- `presenter-token`: the token, one line. `serve` reuses it, so the presenter address stays
  the same; `--token T` is used for one run and not stored; `--new-token` makes and stores
  a new one, which ends every session (below).
- `presenter-sessions-PORT.json`: {"token": sha256(token), "sessions": [sha256(session id)
  ...]}, the hashes of the live presenter cookies of the server on PORT (a cookie is named
  per port, server/auth.py). Neither a token nor a session id can be read back from it.
  Sessions count only under the token they were made with: a new token ends them all.

The files hold nothing a request chose; their names are fixed here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import threading
from pathlib import Path

from server.settings import new_token

logger = logging.getLogger("server")

TOKEN_FILE = "presenter-token"
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_\-]{16,512}")
SECRET_MODE = 0o600
MAX_FILE_BYTES = 64 * 1024        # a sessions file holds at most max_sessions hashes


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def state_dir() -> Path:
    """Where the presenter's files live: the user's cache directory."""
    from engine.data.cache import cache_root
    return cache_root()


def _read_small(path: Path) -> str | None:
    """A regular file's text (at most MAX_FILE_BYTES), made private (0600) if it was not; None
    when there is none or it cannot be read."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, SECRET_MODE)         # a secret others could read: not any more
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _write_secret(path: Path, text: str) -> None:
    from engine.fsutil import atomic_write_bytes
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_bytes(path, text.encode("utf-8"), mode=SECRET_MODE)


def presenter_token(directory: Path, given: str | None = None,
                    renew: bool = False) -> tuple[str, str]:
    """(token, how it came): "given" (--token, not stored), "kept" (the stored one), "new"
    (made and stored: --new-token, a first start, or a stored file that is no token), or
    "unsaved" (made, but the directory cannot be written: this run only)."""
    if given is not None:
        return given, "given"
    path = Path(directory) / TOKEN_FILE
    if not renew:
        text = _read_small(path)
        token = text.strip() if text is not None else None
        if token and TOKEN_PATTERN.fullmatch(token):
            return token, "kept"
    token = new_token()
    try:
        _write_secret(path, token + "\n")
    except OSError as exc:
        logger.warning("cannot keep the presenter token in %s (%s): it lasts this run only",
                       path, exc.strerror or exc)
        return token, "unsaved"
    return token, "new"


class SessionStore:
    """The file behind one server's Sessions (server/sessions.py): written after each new
    session, in whatever thread calls save(); the newest data wins a race."""

    def __init__(self, path: Path, token: str) -> None:
        self.path = Path(path)
        self.token_digest = digest(token)
        self._lock = threading.Lock()
        self._written = -1

    @classmethod
    def for_server(cls, directory: Path | None, port: int, token: str) -> SessionStore | None:
        """None (sessions in memory only) without a directory or on port 0 (another port
        at every start: nothing to come back to)."""
        if directory is None or not port:
            return None
        return cls(Path(directory) / f"presenter-sessions-{port}.json", token)

    def load(self, limit: int) -> list[bytes]:
        """The stored session hashes made under this token, oldest first (at most `limit`);
        none when the file is missing, damaged or of another token."""
        text = _read_small(self.path)
        if text is None:
            return []
        try:
            doc = json.loads(text)
            if doc.get("token") != self.token_digest:
                return []
            hashes = [bytes.fromhex(h) for h in doc["sessions"] if isinstance(h, str)]
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning("ignoring %s: it is not a sessions file this server wrote",
                           self.path)
            return []
        return [h for h in hashes if len(h) == 32][-limit:]

    def save(self, version: int, hashes: list[bytes]) -> None:
        """Write the hashes of version `version` of the sessions, unless a newer one was."""
        text = json.dumps({"token": self.token_digest, "sessions": [h.hex() for h in hashes]})
        with self._lock:
            if version <= self._written:
                return
            try:
                _write_secret(self.path, text)
            except OSError as exc:
                logger.warning("cannot keep the presenter sessions in %s (%s): a restart will "
                               "ask the presenter to log in again", self.path,
                               exc.strerror or exc)
            self._written = version
