"""Middleware deciding whether a path is answered at all, before any
resource runs:

- `TrailingSlashRedirect`: every public path ends with a slash; the same
  path without it gets a 301 to the slashed path, query string kept.
- `ServedStates`: a `{state}` in the path must be a known state that has
  data and has this route; its current stats generation (generations.py:
  remembered for a second per process) goes into `req.context.generation`
  for the cache.
"""

from __future__ import annotations

from urllib.parse import quote

import falcon

from services.gateway.errors import NotFound
from services.gateway.generations import Generations
from shared.states import STATES


class TrailingSlashRedirect:
    def __init__(self, router: falcon.routing.CompiledRouter):
        self.router = router

    def process_request(self, req, resp) -> None:
        path = req.path
        # "//host/..." as a Location would send the browser to another site.
        if path.endswith("/") or path.startswith("//") or self.router.find(path) is not None:
            return
        if self.router.find(path + "/") is not None:
            location = req.root_path + quote(path + "/")
            if req.query_string:
                location += "?" + req.query_string
            raise falcon.HTTPMovedPermanently(location)


class ServedStates:
    def __init__(self, generations: Generations):
        self.generations = generations

    def process_resource(self, req, resp, resource, params) -> None:
        code = params.get("state")
        # Only the public routes declare the states they serve; the operator
        # routes take any state and let admin answer for it.
        if code is None or not hasattr(resource, "states"):
            return
        state = STATES.get(code)
        if state is None:
            raise NotFound(f"there is no state {code!r}; the states are "
                           f"{', '.join(STATES)}")
        if code not in resource.states:
            raise NotFound(f"{state.name} ({code}) has no such route")
        generation = self.generations.current(code)
        if generation is None:
            raise NotFound(f"{state.name} ({code}) has no data yet")
        req.context.generation = generation
