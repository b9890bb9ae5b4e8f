# One image for the whole monorepo: every service, the gateway and the `odp`
# command. Each container picks its process with its command:
#
#   python -m services.ingest          ingest services (nameko)
#   odp db setup                       database, roles, Alembic migrations
#   gunicorn services.gateway.wsgi:app gateway (binds 0.0.0.0:$PORT)
#   python -m services.stats | services.admin | services.census
#
# docker-compose.yml and k8s/ set those commands; run bare, the image only
# prints the `odp` help.

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data \
    PORT=8000

# A fixed uid and gid, 10001, that the Kubernetes manifests' runAsUser and
# runAsGroup name; USER below gives them as numbers so that runAsNonRoot can
# check them without reading the image's /etc/passwd.
RUN groupadd --gid 10001 odp \
    && useradd --create-home --uid 10001 --gid odp odp \
    && mkdir -p /data \
    && chown odp:odp /data

WORKDIR /app

# The dependencies get a layer of their own, keyed on requirements.lock only,
# so a code change does not reinstall them. The lock pins every package,
# transitive ones included, with the hashes of its files (`make lock` writes
# it from pyproject.toml): pip refuses any file whose hash is not there and any
# dependency that the lock does not pin.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY . .
# Editable, not a plain `pip install .`: `odp db setup` finds alembic.ini and
# migrations/ beside the `shared` package (shared/dbsetup.py ROOT), and a
# plain install would put `shared` in site-packages without them (nor the
# bundled sample releases, which are not Python files). The sources are
# compiled here because the non-root user cannot write __pycache__ at run time.
RUN pip install --no-deps --editable . \
    && python -m compileall -q shared services odp migrations

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

CMD ["odp", "--help"]
