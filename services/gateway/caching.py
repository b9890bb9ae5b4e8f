"""Response caching for the state routes, as middleware.

A GET whose state has a generation (see routing.ServedStates) gets an ETag
made of the state, its generation and the path with its query (the
parameters the route knows, in one order: `cache_uri`), and
`Cache-Control: public, max-age=60`. A matching If-None-Match is answered
304 before any query runs; otherwise a body rendered earlier for the same
generation comes from memcached, and a fresh 200 body goes into it.

Keys carry the generation, so a refresh makes every older entry
unreachable without flushing anything. A cache that fails is a cache
miss: the request goes to the database.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

import falcon
from pymemcache.exceptions import MemcacheError

from services.gateway.csv_bodies import set_csv_headers, wants_csv
from shared.metrics import CACHE_LOOKUPS

log = logging.getLogger(__name__)

MAX_AGE = 60
# odp_cache_lookups_total: a body found in memcached, or not (a failed read too).
CACHE_HIT = CACHE_LOOKUPS.labels(result="hit")
CACHE_MISS = CACHE_LOOKUPS.labels(result="miss")


def _code_version() -> str:
    """A digest of the code that renders what is cached (the gateway's and
    shared/'s Python files, templates and static files, and the template
    engine's version): a new version never serves, or answers 304 for, what
    an older one rendered for the same generation."""
    from importlib.metadata import version

    gateway = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"{version('Jinja2')} {version('MarkupSafe')}".encode())
    for root in (gateway, gateway.parent.parent / "shared"):
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".html", ".css", ".js") and path.is_file():
                digest.update(path.relative_to(root.parent).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


CODE_VERSION = _code_version()
# Old generations' entries are never read again; this only bounds how long
# they take memory before memcached's LRU would evict them anyway.
ENTRY_SECONDS = 24 * 3600


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _matches(etag: str, if_none_match) -> bool:
    # If-None-Match compares weakly: W/"x" matches "x". "*" is not honoured:
    # it would answer 304 before anyone checked that the agency exists.
    return any(str(tag) == etag for tag in if_none_match or () if tag != "*")


def cache_uri(req, resource) -> str:
    """The request as the cache and the ETag know it. For a route that
    declares its query parameters (`resource.query`), only those count,
    sorted and without empty values: a parameter the route ignores (a
    cache-buster) cannot make a key of its own and send every request to
    the database, and the same question asked in another order is one
    entry. Other routes keep their query as sent."""
    query = getattr(resource, "query", None)
    path, _, _ = req.relative_uri.partition("?")
    if query is None:
        return req.relative_uri
    known = _parameter_names(query)
    pairs = sorted((name, value) for name, values in req.params.items() if name in known
                   for value in (values if isinstance(values, list) else [values])
                   if value != "")
    return path + ("?" + urlencode(pairs) if pairs else "")


@cache
def _parameter_names(query) -> frozenset[str]:
    return frozenset(field.data_key or name for name, field in query().fields.items())


class ResponseCache:
    def __init__(self, cache):
        self.cache = cache

    def process_resource(self, req, resp, resource, params) -> None:
        generation = req.context.get("generation")
        if generation is None or req.method != "GET":
            return
        state = params["state"]
        # The same path answers JSON or, asked by Accept, CSV: the format is
        # part of what is cached and tagged.
        csv = getattr(resource, "csv", False) and wants_csv(req)
        uri = cache_uri(req, resource) + ("\ncsv" if csv else "")
        req.context.etag = (f"{state}-{generation.number}-"
                            f"{_digest(state, generation.tag, CODE_VERSION, uri)[:20]}")
        if _matches(req.context.etag, req.if_none_match):
            resp.status = falcon.HTTP_304
            resp.complete = True
            return
        key = f"odp:{state}:{generation.tag}:{CODE_VERSION}:{_digest(uri)[:40]}"
        body = self._get(key)
        if body is not None:
            CACHE_HIT.inc()
            resp.data = body
            if csv:
                set_csv_headers(req, resp)
            else:
                # Pages (services/gateway/web/) say what they are.
                resp.content_type = getattr(resource, "media_type", falcon.MEDIA_JSON)
            resp.complete = True
            # Tells operators (and the stats service's cache priming) what answered.
            resp.set_header("X-Cache", "hit")
        else:
            CACHE_MISS.inc()
            req.context.cache_key = key
            resp.set_header("X-Cache", "miss")

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        etag = req.context.get("etag")
        if etag is None or resp.status_code not in (200, 304):
            return
        resp.etag = etag
        resp.cache_control = ["public", f"max-age={MAX_AGE}"]
        if getattr(resource, "csv", False):
            # JSON or CSV by Accept: caches between us and the client must know.
            resp.vary = ["Accept"]
        key = req.context.get("cache_key")
        if key is not None and resp.status_code == 200 and req_succeeded:
            self._set(key, resp.render_body())

    def _get(self, key: str) -> bytes | None:
        try:
            return self.cache.get(key)
        except (MemcacheError, OSError) as error:
            log.warning("cache read failed, answering from the database: %s", error)
            return None

    def _set(self, key: str, body: bytes) -> None:
        try:
            self.cache.set(key, body, expire=ENTRY_SECONDS)
        except (MemcacheError, OSError) as error:
            log.warning("cache write failed: %s", error)
