"""A TCP proxy a test can cut and restore, to take a database away from the code under test."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``.

    ``cut()`` drops every open connection and resets new ones until ``restore()``, as a
    database going away and coming back looks to a client. The listening socket stays bound
    throughout, so no other process can take the port during the cut. ``frozen = True`` holds
    every byte instead (a database that hangs without closing); ``stall()`` holds the bytes of
    the connections open now but serves new ones (a middlebox that lost track of a connection
    yet keeps it open); ``close()`` ends it all.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.frozen = False
        self._cut = False
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._stalled: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Reset every open connection, and each new one until ``restore()``."""
        with self._lock:
            self._cut = True
            conns, self._conns = self._conns, set()
        for conn in conns:
            _reset(conn)

    def stall(self) -> None:
        """From now on, hold every byte of the connections open now, forever."""
        with self._lock:
            self._stalled |= self._conns

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Cut, and stop listening: the port then refuses connections."""
        self.cut()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below on Linux
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                refused = self._cut
            if refused:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._cut:  # cut while connecting upstream
                    _reset(client)
                    _reset(upstream)
                    continue
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while (self.frozen or src in self._stalled) and src.fileno() != -1:
                    time.sleep(0.01)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._conns -= {src, dst}


def _reset(sock: socket.socket) -> None:
    """Close at once (RST, no lingering); wakes a thread blocked reading it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
