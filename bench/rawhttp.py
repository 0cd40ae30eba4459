"""A minimal HTTP/1.1 keep-alive client for load generation (what `wrk` does, in Python).

The benchmarks share two cores with the server they measure, so the client must cost as
little as possible: requests are assembled as bytes, responses are read by Content-Length,
and nothing else happens (no cookies, redirects, decoding or retries). It understands only
what Tipline's server sends: a status line, headers, and a body with Content-Length.
"""

from __future__ import annotations

import base64
import socket
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class RawClient:
    def __init__(self, base_url: str, auth: tuple[str, str] | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._host = f"{self._address[0]}:{self._address[1]}".encode()
        self._timeout = timeout
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()) if auth else b""
        self._auth = b"Authorization: Basic " + token + b"\r\n" if auth else b""
        self._sock: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def get(self, path: str) -> Response:
        return self.request(b"GET", path, b"", b"")

    def post(self, path: str, body: bytes, content_type: str) -> Response:
        return self.request(b"POST", path, body, content_type.encode())

    def post_form(self, path: str, fields: dict[str, str]) -> Response:
        body = "&".join(f"{name}={value}" for name, value in fields.items()).encode()
        return self.post(path, body, "application/x-www-form-urlencoded")

    def post_multipart(self, path: str, fields: dict[str, str], file_field: str, filename: str,
                       data: bytes, media_type: str) -> Response:
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        ]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                     f'filename="{filename}"\r\nContent-Type: {media_type}\r\n\r\n'.encode())
        body = b"".join(parts) + data + f"\r\n--{boundary}--\r\n".encode()
        return self.post(path, body, f"multipart/form-data; boundary={boundary}")

    def request(self, method: bytes, path: str, body: bytes, content_type: bytes) -> Response:
        head = b"".join((
            method, b" ", path.encode(), b" HTTP/1.1\r\nHost: ", self._host, b"\r\n", self._auth,
            b"Content-Type: " + content_type + b"\r\n" if content_type else b"",
            b"Content-Length: %d\r\n\r\n" % len(body) if method != b"GET" else b"\r\n",
        ))
        sock = self._connected()
        try:
            sock.sendall(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                sock.sendall(body)
            return self._read_response(sock)
        except (OSError, ValueError):
            self.close()
            raise

    def _connected(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection(self._address, timeout=self._timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buffer = b""
        return self._sock

    def _read_response(self, sock: socket.socket) -> Response:
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._recv(sock)
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
            elif lowered == b"transfer-encoding":
                raise ValueError("chunked responses are not supported by this client")
        while len(rest) < length:
            rest += self._recv(sock)
        self._buffer = rest[length:]
        if close:
            self.close()
        return Response(status, rest[:length])

    @staticmethod
    def _recv(sock: socket.socket) -> bytes:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        return data
