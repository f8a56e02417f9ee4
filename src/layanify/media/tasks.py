"""The media downloader: files inbound media messages, then downloads each file into our storage.

Finding the work is this task's own job rather than a call in the webhook worker: it scans the inbound
media messages that have no `media_files` row yet (an anti-join on `ix_messages_inbound_media` and the
unique `media_files.message_id`) from a watermark, so the webhook path stays untouched and a message is
never lost even if it was stored by a process that knows nothing about media. The watermark only moves
past messages created more than `SCAN_LAG` ago (a transaction still open when we scanned commits well
within that), and a full rescan every `RESCAN_SECONDS` catches anything an unusually long one hid.

A claim is committed before the download (one more attempt, a lease), so two downloaders never fetch
the same file; a downloader that dies leaves its claims to be taken again when the lease runs out. The
HTTP calls happen outside any transaction; only the outcome is written, in a short unit of work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from layanify.config import Settings
from layanify.crypto.keyring import Keyring, KeyringError
from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, WriteGate, unit_of_work
from layanify.errors import log_failure
from layanify.media import repository
from layanify.media.formats import base_type, digest_matches, extension_for
from layanify.media.repository import MEDIA_ID_LIFETIME, ClaimedMedia
from layanify.media.service import content_url, storage_key
from layanify.media.storage import LocalStorage, Storage, StorageError
from layanify.messaging.tasks import backoff
from layanify.numbers import repository as numbers_repository
from layanify.numbers import service as numbers
from layanify.observability import get_logger
from layanify.runtime import defer_to_receipts
from layanify.whatsapp.client import GraphClient
from layanify.whatsapp.errors import Action, GraphError

log = get_logger(__name__)
SCAN_LAG = timedelta(minutes=2)
RESCAN_SECONDS = 600.0
ENQUEUE_BATCH = 500
RETRY_MAX_SECONDS = 3600.0


class _Retry(Exception):
    """This attempt failed in a way a later one may not."""


class _Fail(Exception):
    """This file can never be downloaded; the message says why."""


@dataclass(frozen=True, slots=True)
class _Stored:
    key: str
    size: int
    mime_type: str | None


class MediaDownloader:
    """Downloads inbound media into storage until stopped."""

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        settings: Settings,
        keyring: Keyring,
        client: GraphClient,
        *,
        storage: Storage | None = None,
        name: str = "media",
        gate: WriteGate | None = None,
        receipts_busy: Callable[[], bool] | None = None,
    ) -> None:
        """`receipts_busy` (in-process): while it is true, webhook receipts go first, before each pass."""
        self._sessionmaker = sessionmaker
        self._receipts_busy = receipts_busy
        self._settings = settings
        self._keyring = keyring
        self._client = client
        self._storage = storage or LocalStorage(settings.media_dir)
        self._name = name
        self._gate = gate or WriteGate(enabled=False)
        self._wake = asyncio.Event()
        self._after_id = 0
        self._last_full_scan = time.monotonic()

    def wake(self) -> None:
        """Media messages may have arrived: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """File and download until `stop` is set; sleep until woken or the poll interval when idle."""
        log.info("media_downloader_started", worker=self._name)
        while not stop.is_set():
            # In-process, a pass's transactions come out of the receipts' time: at saturation the
            # downloader's statements and commits had 14-19 % of the server's samples (decision 46).
            await defer_to_receipts(
                self._receipts_busy, max_seconds=self._settings.worker_max_defer_seconds, stop=stop
            )
            busy = 0
            try:
                busy += await self.enqueue_new()
                busy += await self.download_due()
            except Exception as exc:
                log_failure(log, "media_downloader_failed", exc, worker=self._name)
                busy = 0
            if busy:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            _, pending = await asyncio.wait(
                waiters, timeout=self._settings.media_poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
        log.info("media_downloader_stopped", worker=self._name)

    async def enqueue_new(self) -> int:
        """Add a pending media file for every new inbound media message; returns how many were found."""
        if time.monotonic() - self._last_full_scan > RESCAN_SECONDS:
            self._after_id = 0
            self._last_full_scan = time.monotonic()
        now = utcnow()
        async with unit_of_work(self._sessionmaker) as session:
            values = await repository.unfiled_media_messages(
                session, after_id=self._after_id, now=now, limit=ENQUEUE_BATCH
            )
        if values:
            async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
                await repository.insert_files(session, values)
        if len(values) < ENQUEUE_BATCH:
            # Everything after the watermark that existed at the scan has a row now.
            async with unit_of_work(self._sessionmaker) as session:
                self._after_id = await repository.settled_watermark(
                    session, after_id=self._after_id, created_before=now - SCAN_LAG
                )
        return len(values)

    async def download_due(self) -> int:
        """Claim due files, download them concurrently, record each outcome; returns how many."""
        now = utcnow()
        lease = now + timedelta(seconds=self._settings.media_lease_seconds)
        async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
            claimed = await repository.claim_due(
                session, now=now, lease_until=lease, limit=self._settings.media_concurrency
            )
        if not claimed:
            return 0
        tokens = await self._tokens({c.number_id for c in claimed if c.number_id is not None})
        outcomes = await asyncio.gather(*(self._download(f, tokens) for f in claimed), return_exceptions=True)
        for file, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, Exception):
                # Its outcome could not be written; the lease runs out and it is claimed again.
                log.error("media_outcome_not_recorded", media_id=file.id, error=type(outcome).__name__)
        return len(claimed)

    async def _tokens(self, number_ids: set[int]) -> dict[int, str | None]:
        """Each number's decrypted access token (None when it has no usable one)."""
        async with unit_of_work(self._sessionmaker) as session:
            found = await numbers_repository.by_ids(session, number_ids)
        tokens: dict[int, str | None] = {}
        for number_id, number in found.items():
            try:
                tokens[number_id] = numbers.access_token(number, self._keyring)
            except KeyringError:
                log.error("media_token_undecryptable", number_id=number_id)
                tokens[number_id] = None
        return tokens

    async def _download(self, file: ClaimedMedia, tokens: dict[int, str | None]) -> None:
        """One attempt at one file, and its outcome recorded."""
        try:
            stored = await self._fetch_and_store(file, tokens)
        except _Fail as reason:
            await self._record_failed(file, str(reason))
            return
        except _Retry as reason:
            await self._record_retry(file, str(reason))
            return
        except Exception:
            log.exception("media_download_crashed", media_id=file.id)
            await self._record_retry(file, "Internal error while downloading")
            return
        try:
            async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
                await repository.record_stored(
                    session,
                    file.id,
                    storage_key=stored.key,
                    file_size=stored.size,
                    mime_type=stored.mime_type,
                    media_url=content_url(file.id),
                )
        except Exception as exc:
            # The lease runs out and the next attempt writes the same key again: nothing is orphaned.
            log_failure(log, "media_record_failed", exc, media_id=file.id)
            return
        log.info("media_stored", media_id=file.id, size=stored.size)

    async def _fetch_and_store(self, file: ClaimedMedia, tokens: dict[int, str | None]) -> _Stored:
        """Ask Meta for the URL, download, check size and checksum, write atomically."""
        if file.created_at < utcnow() - MEDIA_ID_LIFETIME:
            raise _Fail("The media is older than the 7 days Meta keeps it; it can no longer be downloaded.")
        if file.meta_media_id is None:
            raise _Fail("There is no media id to download.")
        token = tokens.get(file.number_id or 0)
        if token is None:
            raise _Retry("The number has no usable access token; add it again in the number's settings.")
        max_bytes = self._settings.media_max_bytes
        try:
            info = await self._client.media_info(file.meta_media_id, token)
            if info.file_size is not None and info.file_size > max_bytes:
                raise _Fail(
                    f"The file is {info.file_size} bytes, more than LAYANIFY_MEDIA_MAX_BYTES ({max_bytes})."
                )
            content = await self._client.download_media(info.url, token, max_bytes=max_bytes)
        except GraphError as error:
            reason = f"{error}"
            # Retry what may pass later: throttling, 5xx, network, and a token the user can reconnect.
            if error.retryable or error.action is Action.RECONNECT:
                raise _Retry(reason) from None
            raise _Fail(reason) from None
        for expected in (file.sha256, info.sha256):
            if expected and not digest_matches(expected, content):
                raise _Fail(
                    "The downloaded file does not match the SHA-256 Meta gave for it; it was not kept."
                )
        mime_type = base_type(info.mime_type or file.mime_type) or None
        key = storage_key(file.workspace_id, file.created_at, str(file.id), extension_for(mime_type))
        try:
            await self._storage.write(key, content, seal=file.seal)
        except (OSError, StorageError) as error:
            raise _Retry(f"Could not write the file to storage: {type(error).__name__}") from None
        return _Stored(key=key, size=len(content), mime_type=info.mime_type or file.mime_type)

    async def _record_retry(self, file: ClaimedMedia, reason: str) -> None:
        """Try again later with backoff, or give up after the last attempt."""
        if file.attempts >= self._settings.media_max_attempts:
            await self._record_failed(file, f"Gave up after {file.attempts} attempts. {reason}")
            return
        delay = backoff(file.attempts, self._settings.media_retry_base_seconds, RETRY_MAX_SECONDS)
        log.info("media_download_retry", media_id=file.id, attempt=file.attempts, delay=round(delay, 2))
        async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
            await repository.record_retry(
                session, file.id, at=utcnow() + timedelta(seconds=delay), error=reason
            )

    async def _record_failed(self, file: ClaimedMedia, reason: str) -> None:
        log.warning("media_download_failed", media_id=file.id, attempt=file.attempts)
        async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
            await repository.record_failed(session, file.id, error=reason)
