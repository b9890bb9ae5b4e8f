"""`create_app(config, deps)`: the gateway's Falcon WSGI app.

    app = create_app(Config.from_env())             # what wsgi.py does
    app = create_app(config, Deps(engine, cache))   # a test's own backends

Middleware runs in this order: the request metrics (outermost, so they
time the rest), trailing-slash redirects, the guard against operator-token
guessing (before any operator route reads its request), the state check
(which also reads the state's stats generation), then the response cache.
"""

from __future__ import annotations

import falcon
from falcon.routing import CompiledRouter

from services.gateway import errors, openapi
from services.gateway.backends import Deps, build_deps
from services.gateway.caching import ResponseCache
from services.gateway.generations import Generations
from services.gateway.observability import RequestMetrics
from services.gateway.operator_guard import FailedTokens, OperatorGuard
from services.gateway.resources.service import OpenApi
from services.gateway.routes import (
    metrics_route,
    operator_routes,
    service_routes,
    state_routes,
)
from services.gateway.routing import ServedStates, TrailingSlashRedirect
from services.gateway.web.rendering import STATIC, PageHeaders
from services.gateway.web.routes import web_routes
from shared.config import Config

STATIC_PREFIX = "/static"


def create_app(config: Config, deps: Deps | None = None) -> falcon.App:
    deps = deps or build_deps(config)
    router = CompiledRouter()
    metrics = metrics_route(config)
    app = falcon.App(router=router, middleware=[
        RequestMetrics(uncounted=metrics.resource, static_prefix=f"{STATIC_PREFIX}/"),
        TrailingSlashRedirect(router),
        OperatorGuard(FailedTokens.from_config(config), config.trusted_proxies),
        ServedStates(Generations(deps.engine, config.generation_ttl)),
        ResponseCache(deps.cache),
        PageHeaders(),
    ])
    errors.install(app)
    routes = [*state_routes(deps.engine), *operator_routes(deps.admin),
              *service_routes(deps, config)]
    for route in routes:
        app.add_route(route.template, route.resource)
    app.add_route(openapi.DOCUMENT_PATH, OpenApi(openapi.document(routes)))
    # For Prometheus, not the API's clients: not in the document either.
    app.add_route(metrics.template, metrics.resource)
    # The website: not part of the API's document.
    for route in web_routes(deps, config):
        app.add_route(route.template, route.resource)
    app.add_static_route(STATIC_PREFIX, str(STATIC))
    return app
