"""The admin service driven in process for interface tests: nameko's
`worker_factory` builds an AdminService whose dependencies are the test's
real settings and database, and the gateway calls its rpc methods as the
pooled RPC client would, answers passing through the same JSON
serialization the broker applies. No process, no broker round trip: what
the broker adds (the RPC transport, a stopped admin) is tested end to end
in test_operator_api.py and test_admin_flow.py."""

from __future__ import annotations

from kombu.utils.json import dumps, loads
from nameko.testing.services import worker_factory

from services.admin.service import AdminService
from services.admin.tokens import sync_from_config


class InProcessAdmin:
    """Stands where services/gateway/admin_rpc.AdminClient stands."""

    def __init__(self, config, engine):
        sync_from_config(engine, config.admin_tokens)
        self.service = worker_factory(AdminService, config=config, db=engine, call_deadline=None)

    def call(self, method: str, *args):
        # Arguments and answers cross as JSON, as over RPC (dates become text).
        args = loads(dumps(args))
        return loads(dumps(getattr(self.service, method)(*args)))

    def close(self) -> None:
        pass
