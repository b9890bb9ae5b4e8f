"""Templates and the headers every page carries.

    render(resp, "agency.html", agency=..., charts=...)
"""

from __future__ import annotations

from pathlib import Path

import falcon
from jinja2 import Environment, FileSystemLoader, select_autoescape

WEB = Path(__file__).resolve().parent
STATIC = WEB / "static"
HTML = "text/html; charset=utf-8"
# Nothing inline, nothing from elsewhere: scripts, styles and images come
# from this site's /static/ (SVG charts are markup, not images).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'; form-action 'self'")

environment = Environment(loader=FileSystemLoader(WEB / "templates"),
                          autoescape=select_autoescape(["html"], default=True),
                          trim_blocks=True, lstrip_blocks=True)
environment.filters["thousands"] = lambda value: "-" if value is None else f"{value:,}"
environment.filters["percent"] = (
    lambda value, digits=1: "-" if value is None else f"{value * 100:.{digits}f}%")


def render(resp, template: str, status: str = falcon.HTTP_200, **context) -> None:
    resp.status = status
    resp.content_type = HTML
    resp.text = environment.get_template(template).render(**context)


class PageHeaders:
    """Middleware: the security headers of every HTML answer."""

    def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        # A 304 has no content type; its resource says it is a page.
        if ((resp.content_type or "").startswith("text/html")
                or getattr(resource, "media_type", None) == HTML):
            resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            resp.set_header("X-Content-Type-Options", "nosniff")
            resp.set_header("Referrer-Policy", "same-origin")


def is_page(req) -> bool:
    """Whether the request is for a page (errors render as HTML) rather than
    the API, whose errors are JSON."""
    path = req.path
    return not ("/api/" in path or path.startswith("/static/")
                or path in ("/healthz", "/readyz", "/openapi.json"))
