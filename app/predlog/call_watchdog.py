"""A watchdog that aborts a database call stuck longer than a limit, by shutting its socket.

PostgreSQL's ``statement_timeout`` only fires for a query the server received; TCP keepalives
and ``tcp_user_timeout`` only notice a peer whose kernel stopped answering. A connection that a
middlebox (a proxy, a NAT, a load balancer) keeps open without forwarding defeats all three,
and the client waits for an answer forever. The watchdog is the client-side bound: it shuts the
connection's socket down, the blocked driver call fails at once with a disconnect error, the
pool drops the connection and the caller retries on a fresh one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class CallWatchdog:
    """Bounds the database calls of one thread, made one at a time (the log writer's).

    ``guard()`` arms a deadline for a block; ``attach(dbapi_connection)`` names the connection
    the block uses, as soon as it exists: call it from a pool ``connect`` listener (so the
    dialect's first queries on a new connection are covered) and after each checkout.
    """

    def __init__(self, limit_s: float, name: str = "db-call-watchdog") -> None:
        self.limit_s = limit_s
        self.fired = 0
        self._name = name
        self._cond = threading.Condition()
        self._owner: int | None = None  # the thread inside guard()
        self._deadline = 0.0
        # Duplicates of the sockets attached in the current guard(): shutting one down acts on
        # the connection even if its driver already closed its own descriptor, whose number
        # the process may have reused for something else meanwhile.
        self._socks: list[socket.socket] = []
        self._closing = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5.0)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Abort the calls on attached connections if this block lasts over ``limit_s``."""
        with self._cond:
            self._owner = threading.get_ident()
            self._deadline = time.monotonic() + self.limit_s
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._owner = None
                socks, self._socks = self._socks, []
            for sock in socks:
                sock.close()

    def attach(self, dbapi_connection: Any) -> None:
        """Watch ``dbapi_connection`` if called inside ``guard()`` by its thread.

        A no-op for a driver without a socket (SQLite's file needs no such bound).
        """
        fileno = getattr(dbapi_connection, "fileno", None)
        if fileno is None or self._owner != threading.get_ident():
            return
        try:
            sock = socket.socket(fileno=os.dup(fileno()))
        except (OSError, ValueError, TypeError):  # already closed: its call fails on its own
            return
        with self._cond:
            self._socks.append(sock)
            self._cond.notify_all()

    def _run(self) -> None:
        with self._cond:
            while not self._closing:
                if self._owner is None or not self._socks:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                log.error(
                    "database call stuck for over %.0f s; dropping its connection to retry "
                    "on a fresh one",
                    self.limit_s,
                )
                for sock in self._socks:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                self.fired += 1
                # Shut once; guard() closes the duplicates when the failed call returns.
                self._owner = None
