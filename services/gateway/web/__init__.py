"""The website the gateway serves beside the API: server-rendered pages
(Jinja2 templates) reading the same summaries and cache as the API, charts
drawn as SVG on the server (no chart library, no script needed to see
them), and a little JavaScript for the agency search and an import's live
progress. Every page is sent with a Content-Security-Policy that allows no
inline script or style.
"""
