"""Raw TCP destinations for what an HTTP server library will not do: drip, hold, never answer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Handler = Callable[[socket.socket, threading.Event], None]


@dataclass
class TcpServer:
    url: str
    accepted: list[float] = field(default_factory=list)  # time.monotonic() of each connection


@contextmanager
def tcp_server(handle: Handler) -> Iterator[TcpServer]:
    """A server on 127.0.0.1 handing each connection to handle(conn, stop) in its own thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.settimeout(0.1)
    server = TcpServer(f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            server.accepted.append(time.monotonic())
            threading.Thread(target=handle, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def read_request(conn: socket.socket) -> None:
    """Read one HTTP request with a Content-Length body, whole."""
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += conn.recv(65536)


def drip(answer: bytes) -> Handler:
    """A handler that reads the request, then sends `answer` one byte every 0.3 s."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        try:
            read_request(conn)
            for byte in answer:
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(0.3)
        except OSError:
            pass
        finally:
            conn.close()

    return handle


def hold(conn: socket.socket, stop: threading.Event) -> None:
    """Read a request and never answer; the client gives up and closes."""
    try:
        conn.settimeout(30)
        while conn.recv(65536) and not stop.is_set():
            pass
    except OSError:
        pass
    finally:
        conn.close()


def keep_alive(head: bytes, body: bytes = b"", *, then_hold: bool = False) -> Handler:
    """A handler answering each request on the connection with `head` and `body`, for as long
    as the client keeps it open; with then_hold, after the head and body it sends nothing more
    and keeps the connection (a body its Content-Length says is longer never ends)."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                read_request(conn)
                conn.sendall(head + body)
                if then_hold:
                    stop.wait(30)
                    return
        except (OSError, StopIteration):
            pass  # the client closed the connection
        finally:
            conn.close()

    return handle
