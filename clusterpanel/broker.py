"""The embedded default's Celery broker: kombu's filesystem transport, made safe to share.

kombu 5.7's filesystem transport creates each message file in the queue folder and then writes
into it, and its reader moves any file it lists to the temp directory and parses it at once. A
reader can therefore take a file that is still being written: the worker dies with
``Unrecoverable error: JSONDecodeError``. When the temp directory is on another file system the
move copies the half-written file and the rest of the message is lost. Its exchange tables
(``control/*.exchange``) are truncated before they are locked, so a publisher can read an
empty one while a worker binds its queues. Here:

- **Writes are atomic.** A message is written to a hidden temporary file in the queue folder,
  flushed to disk and renamed into place; exchange tables are rewritten the same way under a
  lock. A reader sees a whole file or none.
- **A message is claimed, not moved away.** A reader takes a file by renaming it into its own
  folder under ``unacked/`` (same file system, so exactly one reader wins) and parses it there.
  A file that cannot be parsed is moved to ``quarantine/`` with an error in the log; the worker
  carries on with the next message.
- **Unacknowledged messages survive their reader.** A claimed file stays until the message is
  acknowledged (tasks are acknowledged late), requeued, or restored at shutdown. Each reader
  holds a lock on its own ``unacked/<id>.lock``; the kernel drops it when the process dies,
  even by SIGKILL, and the next reader to start (and every running one, once a minute) moves
  the files of dead readers back into the queue.
- **No idle sleep on a busy queue.** An acknowledgement that frees a prefetch slot wakes the
  consumer at once instead of after a polling interval, and one sorted listing of the queue
  folder is shared by all queues of a connection until a queue runs dry.

Transport options (``CELERY_BROKER_TRANSPORT_OPTIONS``): kombu's ``data_folder_in``,
``data_folder_out``, ``control_folder``, ``processed_folder``, ``store_processed`` and
``polling_interval``, plus ``unacked_folder`` and ``quarantine_folder`` (by default siblings of
the queue folder). The folders are created on first use.
"""

from __future__ import annotations

import atexit
import binascii
import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from contextlib import suppress
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

#: The URL scheme of this transport: ``CELERY_BROKER_URL = "clusterpanel-filesystem://"``.
SCHEME = "clusterpanel-filesystem"
TRANSPORT_ALIASES.setdefault(SCHEME, "clusterpanel.broker:Transport")

# How often a running consumer looks for claims left behind by dead readers.
RECOVER_EVERY = 60.0
# A queue with nothing pending lists the folder again at most this often.
RELIST_EVERY = 0.05
# Temporary files of a writer that died mid-write are removed after this long.
STALE_TEMP_SECONDS = 3600.0


def _write_atomically(folder: str, name: str, data: bytes) -> None:
    """Write ``data`` to ``folder/name`` so that no reader ever sees a partial file."""
    temp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, os.path.join(folder, name))
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise


class _Reader:
    """One process's claim folder, alive as long as the process holds its lock file.

    POSIX record locks (``lockf``) belong to the process and are not inherited by forked
    children, so a Celery pool child never keeps a dead worker's claims locked.
    """

    def __init__(self, root: Path) -> None:
        self.pid = os.getpid()
        self.name = f"{socket.gethostname()}-{self.pid}-{uuid.uuid4().hex[:8]}"
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.lock_path = root / f"{self.name}.lock"
        # Locked before it shows up under its name, so no one ever finds it unlocked.
        locking = root / f".{self.name}.locking"
        self._fd = os.open(locking, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(locking, self.lock_path)
        self.folder = root / self.name
        self.folder.mkdir(mode=0o700)
        atexit.register(self.remove_if_empty)

    def remove_if_empty(self) -> None:
        """At exit: nothing left unacknowledged, nothing for the next reader to recover."""
        if os.getpid() != self.pid:
            return
        try:
            self.folder.rmdir()  # fails while it holds a claimed file
        except OSError:
            return
        self.lock_path.unlink(missing_ok=True)


_readers: dict[tuple[Path, int], _Reader] = {}
_readers_lock = threading.Lock()


def _reader_for(root: Path) -> _Reader:
    key = (root, os.getpid())
    with _readers_lock:
        reader = _readers.get(key)
        if reader is None:
            reader = _readers[key] = _Reader(root)
        return reader


def recover_claims(root: Path, queue_folder: str) -> int:
    """Move the claimed files of readers that are no longer running back into the queue.

    Returns how many messages went back. Readers of this process are left alone (opening
    and closing their lock file here would drop this process's own lock).
    """
    if not root.is_dir():
        return 0
    with _readers_lock:
        own = {reader.name for (_, pid), reader in _readers.items() if pid == os.getpid()}
    moved = 0
    for lock_path in sorted(root.glob("*.lock")):
        name = lock_path.name[: -len(".lock")]
        if name in own:
            continue
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # that reader is alive
            folder = root / name
            with suppress(FileNotFoundError):
                for entry in sorted(os.listdir(folder)):
                    with suppress(FileNotFoundError):
                        os.rename(folder / entry, os.path.join(queue_folder, entry))
                        moved += 1
                folder.rmdir()
            lock_path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    if moved:
        logger.warning(
            "broker: moved %d unacknowledged message(s) of a stopped worker back to the queue",
            moved,
        )
    return moved


class _Listing:
    """A sorted listing of the queue folder, split by queue, shared by a connection's channels.

    A queue lists the folder again when its share runs out, but not more often than
    ``RELIST_EVERY`` while the folder holds nothing for it.
    """

    def __init__(self) -> None:
        self.by_queue: dict[str, deque[str]] = {}
        self.empty_at: dict[str, float] = {}
        self.folder = ""

    def pending(self, folder: str, queue: str) -> deque[str]:
        names = self.by_queue.get(queue)
        if names:
            return names
        now = time.monotonic()
        if folder == self.folder and now - self.empty_at.get(queue, float("-inf")) < RELIST_EVERY:
            return deque()
        self.refresh(folder)
        names = self.by_queue.get(queue)
        if not names:
            self.empty_at[queue] = now
            return deque()
        return names

    def refresh(self, folder: str) -> None:
        by_queue: defaultdict[str, deque[str]] = defaultdict(deque)
        # Names start with the time they were written, so sorting gives FIFO order.
        for name in sorted(os.listdir(folder)):
            if name.startswith(".") or not name.endswith(".msg"):
                continue
            by_queue[name.partition(".")[2][: -len(".msg")]].append(name)
        self.by_queue = dict(by_queue)
        self.folder = folder


class QoS(virtual.QoS):
    """Settles a message's claimed file when it is acknowledged or rejected."""

    channel: Channel

    def ack(self, delivery_tag: str) -> None:
        self.channel.settle(delivery_tag)
        super().ack(delivery_tag)
        self.channel.wake()

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        # With requeue, kombu writes the message back to its queue (``_restore``) first.
        super().reject(delivery_tag, requeue=requeue)
        self.channel.settle(delivery_tag)
        self.channel.wake()


class Channel(filesystem.Channel):
    QoS = QoS
    connection: Transport

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._pid = os.getpid()
        self._claims: dict[str, list[Path]] = {}
        self._no_ack_queues: set[str] = set()
        # Resolved once: kombu restores unacknowledged messages at exit, when the
        # transport options may no longer be reachable.
        options = self.transport_options
        queue_parent = Path(self.data_folder_in).resolve().parent
        self._control = Path(options.get("control_folder", "control"))
        self.unacked_folder = Path(options.get("unacked_folder") or queue_parent / "unacked")
        self.quarantine_folder = Path(
            options.get("quarantine_folder") or queue_parent / "quarantine"
        )
        folders = [self.data_folder_in, self.data_folder_out, self._control,
                   self.unacked_folder, self.quarantine_folder]  # fmt: skip
        if self.store_processed:
            folders.append(self.processed_folder)
        for folder in folders:
            os.makedirs(folder, mode=0o700, exist_ok=True)

    @property
    def control_folder(self) -> Path:
        return self._control

    # Writing -------------------------------------------------------------------------------

    # kombu's two base classes call the second argument ``message`` and ``payload``.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # Wall-clock nanoseconds, zero-padded: sorts in order, also across reboots.
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
        try:
            _write_atomically(self.data_folder_out, name, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to {self.data_folder_out}") from exc

    # Exchange tables -----------------------------------------------------------------------

    def get_table(self, exchange: str) -> list[Any]:
        file = self._exchange_file(exchange)
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return [filesystem.exchange_queue_t(*q) for q in loads(bytes_to_str(raw))]

    def _update_table(self, exchange: str, change: Any) -> None:
        """Apply ``change(list) -> bool`` to an exchange table under a lock, atomically."""
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.control_folder / f".{file.name}.lock"
        try:
            with open(lock_path, "ab") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                queues = self.get_table(exchange)
                if change(queues):
                    _write_atomically(str(file.parent), file.name, str_to_bytes(dumps(queues)))
        except OSError as exc:
            raise ChannelError(f"Cannot update {file}") from exc

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")

        def add(queues: list[Any]) -> bool:
            if binding in queues:
                return False
            queues.insert(0, binding)
            return True

        self._update_table(exchange, add)

    def _delete(self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any,
                **kwargs: Any) -> None:  # fmt: skip
        virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")

        def remove(queues: list[Any]) -> bool:
            if binding not in queues:
                return False
            queues.remove(binding)
            return True

        self._update_table(exchange, remove)

    # Reading -------------------------------------------------------------------------------

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_cancel(self, consumer_tag: str) -> Any:
        queue = self._tag_to_queue.get(consumer_tag)
        result = super().basic_cancel(consumer_tag)
        if queue is not None and queue not in self._active_queues:
            self._no_ack_queues.discard(queue)
        return result

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        message = super().basic_get(queue, no_ack=no_ack, **kwargs)
        if message is not None and no_ack:
            self.settle(message.delivery_tag)
        return message

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        self.connection.maybe_recover(self.unacked_folder, self.data_folder_in)
        listing = self.connection.listing
        # Twice: names left from an older listing may all have been taken by other readers.
        for _ in range(2):
            pending = listing.pending(self.data_folder_in, queue)
            while pending:
                payload = self._claim(pending.popleft(), queue)
                if payload is not None:
                    return payload
        raise Empty()

    def _claim(self, name: str, queue: str) -> Any:
        """Take ``name`` from the queue folder; the parsed message, or None if it is gone or bad."""
        reader = _reader_for(self.unacked_folder)
        claimed = reader.folder / name
        try:
            os.rename(os.path.join(self.data_folder_in, name), claimed)
        except FileNotFoundError:
            return None  # another reader took it first
        except OSError as exc:
            raise ChannelError(f"Cannot claim {name!r} from {self.data_folder_in}") from exc
        try:
            payload = loads(bytes_to_str(claimed.read_bytes()))
            tag = self._check(payload)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            self._quarantine(claimed, exc)
            return None
        if queue in self._no_ack_queues:
            self._dispose(claimed)
        else:
            self._claims.setdefault(tag, []).append(claimed)
        return payload

    def _check(self, payload: Any) -> str:
        """The delivery tag of a well-formed message; raises ValueError otherwise."""
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
        properties = payload.get("properties")
        if not isinstance(properties, dict) or not isinstance(
            properties.get("delivery_info"), dict
        ):
            raise ValueError("no message properties")
        tag = properties.get("delivery_tag")
        if not isinstance(tag, str) or not tag:
            raise ValueError("no delivery tag")
        encoding = properties.get("body_encoding")
        if payload.get("body") and encoding and encoding.lower() != "utf-8":
            codec = self.codecs.get(encoding)
            if codec is None:
                raise ValueError(f"unknown body encoding {encoding!r}")
            try:
                codec.decode(payload["body"])
            except (binascii.Error, TypeError) as exc:
                raise ValueError(f"body is not {encoding}") from exc
        return tag

    def _quarantine(self, claimed: Path, error: Exception) -> None:
        target = self.quarantine_folder / claimed.name
        try:
            os.replace(claimed, target)
        except OSError:
            target = claimed
        logger.error(
            "broker: skipped message file %s: it cannot be read as a message (%s); kept as %s",
            claimed.name,
            error,
            target,
        )

    def _dispose(self, claimed: Path) -> None:
        try:
            if self.store_processed:
                os.replace(claimed, os.path.join(self.processed_folder, claimed.name))
            else:
                os.unlink(claimed)
        except FileNotFoundError:
            pass
        except OSError as exc:
            # Left where it is: delivered once more after this reader stops, never lost.
            logger.error("broker: cannot remove settled message file %s: %s", claimed, exc)

    # Settling ------------------------------------------------------------------------------

    def settle(self, delivery_tag: str) -> None:
        """The message is acknowledged, rejected or back in its queue: drop its claimed file."""
        for claimed in self._claims.pop(delivery_tag, ()):
            self._dispose(claimed)

    def wake(self) -> None:
        transport = self.connection
        if transport is not None:
            transport.wakeup.set()

    def _restore(self, message: Any) -> None:
        # Requeue and shutdown: kombu writes the message back to its queue, then the claim goes.
        super()._restore(message)
        self.settle(message.delivery_tag)

    def close(self) -> None:
        super().close()  # restores unacknowledged messages
        if os.getpid() != self._pid:
            return  # a forked child: the claims belong to the parent
        # Claimed but never handed to a consumer: straight back into the queue.
        for tag in list(self._claims):
            for claimed in self._claims.pop(tag, ()):
                with suppress(FileNotFoundError):
                    os.rename(claimed, os.path.join(self.data_folder_in, claimed.name))


class Transport(filesystem.Transport):
    Channel = Channel
    polling_interval = 0.2
    driver_name = SCHEME

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        # kombu shares declared bindings between all connections of a process and then skips
        # writing them; a connection to other folders would route to nobody. The tables on
        # disk are the shared state, so each connection declares its own.
        self.state = virtual.BrokerState()
        self.wakeup = threading.Event()
        self.listing = _Listing()
        self._recovered_at = float("-inf")

    def maybe_recover(self, unacked_folder: Path, queue_folder: str) -> None:
        now = time.monotonic()
        if now - self._recovered_at < RECOVER_EVERY:
            return
        self._recovered_at = now
        recover_claims(unacked_folder, queue_folder)
        _remove_stale_temp_files(queue_folder)

    def drain_events(self, connection: Any, timeout: float | None = None, **kwargs: Any) -> None:
        cycle = self.cycle
        assert cycle is not None
        started = time.monotonic()
        while True:
            try:
                cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                waited = time.monotonic() - started
                if timeout is not None and waited >= timeout:
                    raise TimeoutError() from None
                pause = self.polling_interval or 0.0
                if timeout is not None:
                    pause = min(pause, timeout - waited)
                self.wakeup.wait(pause)
                self.wakeup.clear()


def _remove_stale_temp_files(folder: str) -> None:
    """Temporary files of writers that died mid-write; never renamed, never read."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    with suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                with suppress(FileNotFoundError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
