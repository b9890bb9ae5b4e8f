"""A bound on operator-token guessing: after `limit` wrong tokens within
`window` seconds from one client address, that address's operator requests
(every route under /admin/, the API and the pages) are refused with a 429
and a Retry-After until the oldest of those wrong tokens has left the
window. A refused request is answered before its token is checked or its
body read, and is not counted itself.

    guard = OperatorGuard(FailedTokens.from_config(config))   # app.py's middleware
    token_refused(req)        # where admin refused the request's token

Only a wrong token counts: a request without one guesses nothing (its 401
costs nothing either), and a signed session cookie cannot be guessed. A
request that succeeds neither counts nor forgives earlier failures, or a
guesser sharing an address with an operator (a NAT) would be reset by the
operator's calls.

The address is REMOTE_ADDR (falcon's `req.remote_addr`), unless that is a
proxy named in TRUSTED_PROXIES: then it is the nearest address in
X-Forwarded-For that is not such a proxy (what the proxy itself appended;
anything further left is the client's to write). Behind a proxy not named
there (prod's ingress, unless configured) every client shares its address,
so one guesser holds every operator off for a window.

Each wrong token and each refusal is logged as a warning with the address;
a token is never logged.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
from collections import OrderedDict, deque
from time import monotonic

from services.gateway.errors import TooManyAttempts
from shared.config import Config
from shared.netguard import networks

log = logging.getLogger(__name__)

OPERATOR_PREFIX = "/admin/"
# Clients remembered at once: about 1 KB each at the default limit, so at
# most some megabytes whoever sends the wrong tokens.
MAX_TRACKED_CLIENTS = 10_000


class FailedTokens:
    """The times of each client's latest wrong tokens (at most `limit` of
    them), oldest client first.

    Kept in this process's memory: every gunicorn worker counts on its own.
    No shared store is needed for that, and a bound per process is still a
    bound (a guesser gets at most `limit` tries per window from each worker).
    """

    def __init__(self, limit: int, window: float, max_clients: int = MAX_TRACKED_CLIENTS):
        if limit < 1 or window <= 0:
            raise ValueError("OPERATOR_MAX_FAILED_TOKENS must be at least 1 and "
                             "OPERATOR_FAILED_TOKEN_WINDOW more than 0 seconds")
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self.clients: OrderedDict[str, deque[float]] = OrderedDict()
        # A sync worker has one thread; a threaded one would share the map.
        self.lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config) -> FailedTokens:
        return cls(config.operator_max_failed_tokens, config.operator_failed_token_window)

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until `client` may try again; None when it may now."""
        with self.lock:
            times = self.clients.get(client)
            if times is None or len(times) < self.limit:
                return None
            wait = times[0] + self.window - monotonic()
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, client: str) -> int:
        """Count a wrong token of `client`; its wrong tokens within the window."""
        now = monotonic()
        with self.lock:
            times = self.clients.pop(client, None) or deque(maxlen=self.limit)
            times.append(now)
            self.clients[client] = times  # last: the map stays ordered by latest failure
            self._forget(now)
            return sum(1 for moment in times if moment > now - self.window)

    def _forget(self, now: float) -> None:
        # Clients whose latest failure left the window count for nothing any
        # more; they are the oldest, at the front.
        while self.clients:
            oldest = next(iter(self.clients.values()))
            if oldest[-1] > now - self.window:
                break
            self.clients.popitem(last=False)
        # Past the cap the least recent guesser is forgotten: the map cannot
        # be grown without bound by guessing from ever new addresses.
        while len(self.clients) > self.max_clients:
            self.clients.popitem(last=False)


def token_refused(req) -> None:
    """Say that admin refused this request's token: OperatorGuard counts it
    when the answer goes out."""
    req.context.token_refused = True


class OperatorGuard:
    """Middleware refusing the operator routes to a client with too many
    wrong tokens, and counting the wrong tokens resources report."""

    def __init__(self, failed: FailedTokens, trusted_proxies=()):
        self.failed = failed
        self.trusted = networks(trusted_proxies)

    def client(self, req) -> str:
        peer = req.remote_addr
        if not self._trusted(peer):
            return peer
        forwarded = [hop.strip() for hop in (req.get_header("X-Forwarded-For") or "")
                     .split(",") if hop.strip()]
        for hop in reversed(forwarded):
            if not self._trusted(hop):
                return hop
        return forwarded[0] if forwarded else peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def process_resource(self, req, resp, resource, params) -> None:
        if not req.path.startswith(OPERATOR_PREFIX):
            return
        client = self.client(req)
        wait = self.failed.retry_after(client)
        if wait is None:
            return
        log.warning("operator request from %s refused: %d wrong operator tokens within "
                    "%g s; it may try again in %d s", client, self.failed.limit,
                    self.failed.window, wait)
        raise TooManyAttempts(f"too many wrong operator tokens from this address; try again "
                              f"in {wait} s", wait)

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        if not req.context.get("token_refused"):
            return
        client = self.client(req)
        count = self.failed.failed(client)
        log.warning("wrong operator token from %s (%d of %d allowed within %g s)", client,
                    count, self.failed.limit, self.failed.window)
