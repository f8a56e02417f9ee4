"""Where media bytes live: a tiny interface, and the local directory that implements it."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Protocol

from layanify.crypto.content import BYTES_MAGIC, bytes_key_id, media_ad, open_bytes, seal_bytes


class StorageError(Exception):
    """The storage could not keep or find a file."""


class Storage(Protocol):
    """Keeps files by key (a relative POSIX path); writes are all or nothing.

    A file written with `seal=True` is stored encrypted with the content keyring (crypto/content.py);
    `read` gives back the plaintext of either kind.
    """

    async def write(self, key: str, content: bytes, *, seal: bool = False) -> None:
        """Store `content` at `key`, replacing what was there; a reader never sees a partial file."""
        ...

    async def sealed_with(self, key: str) -> str | None:
        """The key id a stored file is encrypted with, None for a plain file (StorageError: no file)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the file at `key`, if there is one."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file's path on this machine when the storage is a local directory (served directly)."""
        ...

    async def read(self, key: str) -> bytes:
        """The file's bytes (decrypted when it is stored encrypted)."""
        ...


class LocalStorage:
    """Files under a directory on this machine (`LAYANIFY_MEDIA_DIR`)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        """The absolute path of a key; refuses keys that would leave the root."""
        relative = PurePosixPath(key)
        if relative.is_absolute() or not relative.parts or ".." in relative.parts:
            raise StorageError(f"not a storage key: {key!r}")
        return self.root.joinpath(*relative.parts)

    async def write(self, key: str, content: bytes, *, seal: bool = False) -> None:
        """Write to a temporary file beside the target, fsync it, then rename it into place; encrypted
        first (on the same worker thread, off the event loop) when `seal`."""
        path = self._path(key)

        def work() -> None:
            self._write(path, seal_bytes(content, media_ad(key)) if seal else content)

        await asyncio.to_thread(work)

    @staticmethod
    def _write(path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-", suffix=path.suffix)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def delete(self, key: str) -> None:
        """Remove the file, if there is one."""
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        """The file's absolute path."""
        return self._path(key)

    async def read(self, key: str) -> bytes:
        """The file's bytes, decrypted when it is stored encrypted."""
        path = self._path(key)

        def work() -> bytes:
            return open_bytes(path.read_bytes(), media_ad(key))

        try:
            return await asyncio.to_thread(work)
        except FileNotFoundError as exc:
            raise StorageError(f"no file at {key!r}") from exc

    async def sealed_with(self, key: str) -> str | None:
        """The key id in the file's header, None for a plain file."""
        path = self._path(key)

        def head() -> bytes:
            with path.open("rb") as file:
                return file.read(len(BYTES_MAGIC) + 256)

        try:
            return bytes_key_id(await asyncio.to_thread(head))
        except FileNotFoundError as exc:
            raise StorageError(f"no file at {key!r}") from exc
