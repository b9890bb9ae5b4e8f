"""The public HTTP gateway: a Falcon WSGI app serving the read-only API of
API.md from the stats summaries and the live state schemas, with responses
cached in memcached under the state's stats generation.

`create_app(config, deps)` in `app.py` builds it; gunicorn loads
`services.gateway.wsgi:app`.
"""
