"""The emulator's HTTP server: HTTP/1.1 with keep-alive on 127.0.0.1, in a daemon thread,
handing each request to one function (`handle`) and sending back its `Response`."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.emulator.core import Request, Response


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients' keep-alive sessions behave as against the real API.
    protocol_version = "HTTP/1.1"
    server_version = "WhoopEmulator/1.0"
    sys_version = ""
    # Headers and body leave in one segment; two small writes on a keep-alive socket
    # meet Nagle plus delayed ACK and cost ~40 ms per call.
    wbufsize = -1
    disable_nagle_algorithm = True
    handle_request: Callable[[Request], Response]  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: test output must stay readable, and request lines could carry ids.
        return

    def _dispatch(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        try:
            body = self._read_body()
        except ValueError:
            # The stream position is unknown now, so the connection cannot be reused.
            self.close_connection = True
            self._send(Response(400, {"error": "invalid_request", "message": "malformed request body framing"}))
            return
        request = Request(self.command, parsed.path, parsed.query, self.headers, body)
        self._send(self.handle_request(request))

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        # Exactly Content-Length bytes: reading more would block on a keep-alive socket.
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        # Streaming clients (e.g. requests with a generator body) send chunked bodies.
        chunks = []
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass  # skip trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            if self.rfile.readline(1024).strip():
                raise ValueError("chunk not followed by CRLF")

    # Every method reaches the route table (405 for a path that lacks it).
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _send(self, response: Response) -> None:
        body = response.encode()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if body and not any(k.lower() == "content-type" for k in response.headers):
            self.send_header("Content-Type", "application/json")
        if response.status not in (204, 304) and not (100 <= response.status < 200):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD" and response.status not in (204, 304):
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True


class HttpServer:
    """Serves `handle` on `host`:`port` (0 picks a free port) once `start()` is called."""

    def __init__(self, handle: Callable[[Request], Response], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handle = handle
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Bind and serve in a daemon thread; `port` is the bound port afterwards."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("emulator already started")
            handler = type("WhoopEmulatorHandler", (_RequestHandler,), {"handle_request": staticmethod(self.handle)})
            server = ThreadingHTTPServer((self.host, self.port), handler)
            server.daemon_threads = True
            self._server = server
            self.port = server.server_address[1]
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"whoop-emulator-{self.port}",
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket (safe to call twice)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        """Root URL of the running server, e.g. `http://127.0.0.1:54321`."""
        if self._server is None:
            raise RuntimeError("emulator not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
