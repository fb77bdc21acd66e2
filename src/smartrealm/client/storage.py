"""Pluggable token storage: where an app keeps its ``TokenSet``s between runs.

``TokenStore`` is the protocol; ``MemoryTokenStore`` (tests, short-lived processes) and
``FileTokenStore`` (a JSON file, e.g. the `smartrealm app` CLI's) implement it. A store maps
a key the app chooses (an alias, a user id, ``alias@server``) to one token set.

A token file holds bearer and refresh tokens, so ``FileTokenStore`` treats it like a
password file: created with mode 0600, replaced atomically (write to a private temporary
file in the same directory, then ``os.replace``) so a crash never leaves half a file, and
refused (``TokenStoreError``) when group or others may read it, like ssh does with keys.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from smartrealm.client.errors import SmartClientError, TokenError
from smartrealm.client.tokens import TokenSet

FILE_VERSION = 1
PRIVATE_MODE = 0o600


class TokenStoreError(SmartClientError):
    """The token store cannot be read or written (names the file and the problem)."""


@runtime_checkable
class TokenStore(Protocol):
    def load(self, key: str) -> TokenSet | None: ...

    def save(self, key: str, tokens: TokenSet) -> None: ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> list[str]: ...


class MemoryTokenStore:
    """Token sets in a dict: gone when the process ends."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenSet] = {}

    def load(self, key: str) -> TokenSet | None:
        return self._tokens.get(key)

    def save(self, key: str, tokens: TokenSet) -> None:
        self._tokens[key] = tokens

    def delete(self, key: str) -> None:
        self._tokens.pop(key, None)

    def keys(self) -> list[str]:
        return sorted(self._tokens)


class FileTokenStore:
    """Token sets in one JSON file ``{"version": 1, "tokens": {key: TokenSet.to_dict()}}``.
    Every call reads the file afresh, so two processes see each other's saves (the last
    writer wins; no locking)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self, key: str) -> TokenSet | None:
        entry = self._read().get(key)
        if entry is None:
            return None
        try:
            return TokenSet.from_dict(entry)
        except TokenError as exc:
            raise TokenStoreError(f"{self.path}: entry {key!r} is not a token set: {exc}") from exc

    def save(self, key: str, tokens: TokenSet) -> None:
        entries = self._read()
        entries[key] = tokens.to_dict()
        self._write(entries)

    def delete(self, key: str) -> None:
        entries = self._read()
        if entries.pop(key, None) is not None:
            self._write(entries)

    def keys(self) -> list[str]:
        return sorted(self._read())

    def _read(self) -> dict[str, Any]:
        data = read_private_json(self.path)
        if data is None:
            return {}
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("version") != FILE_VERSION or not isinstance(
            tokens, dict
        ):
            raise TokenStoreError(f"{self.path}: not a version {FILE_VERSION} token file")
        return tokens

    def _write(self, entries: dict[str, Any]) -> None:
        text = json.dumps({"version": FILE_VERSION, "tokens": entries}, indent=2, sort_keys=True)
        write_private_file(self.path, text + "\n")


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner only (0600)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # mkstemp creates the file 0600 from the start: no moment where it is readable.
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    except OSError as exc:
        raise TokenStoreError(f"{path}: cannot write: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, PRIVATE_MODE)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise TokenStoreError(f"{path}: cannot write: {exc.strerror}") from exc


def read_private_json(path: Path) -> Any:
    """The JSON in ``path`` (None when there is no file); refuses a file that group or
    others may access, since it may hold tokens."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TokenStoreError(f"{path}: {exc.strerror}") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokenStoreError(
            f"{path} is accessible by group or others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenStoreError(f"{path}: not a readable JSON file") from exc
