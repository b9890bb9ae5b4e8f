"""Local servers speaking the real protocols, standing in for the states'
servers: HTTP (with error statuses and slow transfers) and FTP."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


class FileServer:
    """Serves registered paths: server.add("/x.zip", data, status=200, delay=0),
    and redirects: server.redirect("/old.zip", "http://elsewhere/new.zip")."""

    def __init__(self):
        routes: dict[str, tuple[int, bytes, float]] = {}
        locations: dict[str, str] = {}
        self.routes = routes
        self.locations = locations
        self.requests: list[str] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                status, body, delay = routes.get(self.path, (404, b"not found", 0.0))
                self.send_response(status)
                if self.path in locations:
                    self.send_header("Location", locations[self.path])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                step = 64 * 1024
                for start in range(0, len(body), step):
                    if delay:
                        time.sleep(delay)
                    try:
                        self.wfile.write(body[start:start + step])
                    except (BrokenPipeError, ConnectionResetError):
                        return

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes | Path, status: int = 200, delay: float = 0.0) -> str:
        data = body.read_bytes() if isinstance(body, Path) else body
        self.routes[path] = (status, data, delay)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.locations[path] = location
        return self.add(path, b"", status=status)

    def url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FtpServer:
    def __init__(self, root: Path, user: str, password: str):
        self.root = root
        authorizer = DummyAuthorizer()
        authorizer.add_user(user, password, str(root), perm="elr")
        handler = type("Handler", (FTPHandler,), {"authorizer": authorizer,
                                                   "passive_ports": None})
        self.server = FTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"timeout": 0.2, "blocking": True}, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.server.address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self.server.close_all()
