"""The gateway's RPC client of the admin service: started nameko proxies kept
in a pool per process (gunicorn worker), each with its reply queue already
declared and consuming, so a call costs one round trip instead of a new
connection and queue (a new proxy per request manages a handful of requests
per second).

    admin = AdminClient(config)
    admin.call("list_datasets", digest)     # raises shared.operator errors

A proxy whose call failed for any reason but the admin's own answer is
dropped, not reused: its connection may be half gone.

A call must not run after the gateway stopped waiting for it (its client
was told 503 and may try again): its message expires in admin's queue
after the timeout, and it carries its deadline, which admin checks before
doing anything (a message admin had already taken when it stalled).
"""

from __future__ import annotations

import logging
import queue
import time

from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko.rpc import ServiceProxy
from nameko.standalone.rpc import ClusterRpcProxy

from services.gateway.errors import Unavailable
from shared.config import Config
from shared.events import ADMIN_SOURCE
from shared.operator import CALL_DEADLINE, OperatorError

log = logging.getLogger(__name__)

class AdminClient:
    def __init__(self, config: Config):
        self.nameko_config = config.nameko_config()
        self.timeout = config.admin_rpc_timeout
        self.idle: queue.LifoQueue = queue.LifoQueue()

    def _take(self):
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            standalone = ClusterRpcProxy(self.nameko_config, timeout=self.timeout)
            standalone.start()
            # nameko's cluster proxy passes no publish options to its service
            # proxies: this one, on the same reply queue, sets the TTL.
            admin = ServiceProxy(standalone._worker_ctx, ADMIN_SOURCE,
                                 standalone._reply_listener, expiration=self.timeout)
            return standalone, admin

    def _drop(self, entry) -> None:
        try:
            entry[0].stop()
        except Exception:  # already broken; nothing more to release
            log.debug("stopping a broken admin proxy failed", exc_info=True)

    def call(self, method: str, *args):
        try:
            entry = self._take()
        except Exception as error:
            log.warning("cannot connect to the broker for the admin service: %s", error)
            raise Unavailable("the message broker is unreachable") from None
        try:
            # Sent as the call's context data (a message header).
            entry[0]._worker_ctx.data[CALL_DEADLINE] = time.time() + self.timeout
            result = getattr(entry[1], method)(*args)
        except (OperatorError, RemoteError):
            self.idle.put(entry)  # the admin answered; the proxy is sound
            raise
        except (RpcTimeout, UnknownService):
            self._drop(entry)
            raise Unavailable("the admin service did not answer") from None
        except Exception as error:
            self._drop(entry)
            log.warning("admin call %s failed: %s: %s", method, type(error).__name__, error)
            raise Unavailable("the admin service could not be reached") from None
        self.idle.put(entry)
        return result

    def close(self) -> None:
        while True:
            try:
                self._drop(self.idle.get_nowait())
            except queue.Empty:
                return
