"""Every setting of the platform, read from the environment in one place.

Services, the gateway, the `odp` command and the tests all receive a
`Config`; nothing else reads `os.environ`. A `.env` file in the working
directory is read first in development (values already in the environment
win), so `make run` can keep a generated operator token there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from dotenv import dotenv_values

CENSUS_API_DEFAULT = "https://api.census.gov"
# Process basics a child process needs besides the platform's settings.
PASSED_ON = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV")


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


@dataclass(frozen=True)
class Config:
    database_url: str = "postgresql:///odp"
    amqp_uri: str = "amqp://guest:guest@localhost:5672/"
    amqp_heartbeat: int = 60
    memcached_servers: tuple[str, ...] = ("127.0.0.1:11211",)
    smtp_host: str = "localhost"
    smtp_port: int = 25
    mail_from: str = "Open Data Policing <noreply@localhost>"
    data_dir: Path = Path("./data")
    allow_file_urls: bool = False
    nc_ftp_host: str = ""
    nc_ftp_user: str = ""
    nc_ftp_password: str = ""
    nc_auto_import_monitors: tuple[str, ...] = ()
    census_api_url: str = CENSUS_API_DEFAULT
    census_api_key: str = ""
    census_years: tuple[str, ...] = ()
    admin_tokens: tuple[str, ...] = ()
    odp_url: str = "http://localhost:8000"
    odp_token: str = ""
    port: int = 8000
    log_level: str = "INFO"
    # Import limits: an import fails when a file's rejected lines pass this
    # share, and a zip may not unpack to more than this many bytes.
    ingest_max_reject_share: float = 0.01
    ingest_max_unzipped_bytes: int = 64 * 1024**3
    # The data folder's disk must keep this much free after an unpack (the
    # rejects file, logs, a database sharing the disk): the unzip cap is at
    # most the free space less this.
    ingest_disk_reserve_bytes: int = 1024**3
    # Days a failed import's files stay for diagnosis; the state's next
    # successful import removes them sooner (services/ingest/import_folders.py).
    ingest_keep_failed_days: float = 7.0
    # Processes that parse nc's big files in pieces beside the import's own
    # (services/ingest/parse_pool.py); 1 parses every file in one pass.
    ingest_parse_workers: int = min(os.cpu_count() or 1, 4)
    download_timeout: float = 60.0
    # How long the gateway waits for the admin service's answer: long enough
    # for the slowest operator call, short enough to report a stopped admin.
    admin_rpc_timeout: float = 15.0
    # Signs the operator pages' session cookies and form tokens; every
    # gateway process must share it (make run writes one into .env).
    web_secret: str = ""
    # Packages of states defined outside shared/states.py (a test-only state):
    # each service's process imports them before it builds its handlers.
    state_packages: tuple[str, ...] = ()
    # The gateway's own login, which can only read; empty means DATABASE_URL
    # with the reader role's name and no password (development, trust auth).
    reader_database_url: str = ""
    # A nameko service touches this file while its broker connection is up;
    # the orchestrator's probes read its age (empty: no heartbeat).
    heartbeat_file: str = ""
    # Where Prometheus scrapes: a nameko service serves /metrics on this port,
    # and the gateway answers /metrics only on it (0: services serve none, the
    # gateway answers /metrics on its own port).
    metrics_port: int = 0
    # "text" (one readable line) or "json" (one object per line, for a log
    # collector).
    log_format: str = "text"
    # How long a gateway process trusts the stats generation it last read
    # (seconds): a cache hit then needs no database round trip, and answers
    # may lag a refresh by this much (services/gateway/generations.py).
    generation_ttl: float = 1.0
    # Wrong operator tokens one client address may send within the window
    # (seconds); then its operator requests are refused (429) until the
    # oldest of them leaves the window (services/gateway/operator_guard.py).
    operator_max_failed_tokens: int = 10
    operator_failed_token_window: float = 60.0
    # Proxies (CIDRs) whose X-Forwarded-For the gateway believes when it
    # counts wrong tokens by client address (prod's ingress controller).
    trusted_proxies: tuple[str, ...] = ()
    # Private networks (CIDRs) dataset URLs may point into; by default only
    # public addresses (shared/netguard.py).
    download_allowed_networks: tuple[str, ...] = ()
    # An event handler that fails is tried again this many times, after a
    # pause that starts here (seconds) and doubles, up to a minute, before its
    # message goes to the service's dead letters (shared/retrying.py).
    handler_retries: int = 6
    handler_retry_delay: float = 2.0
    # An import admin dispatched that no ingest run has taken up after this
    # many seconds (its request lost, say) is requested again.
    import_redispatch_after: float = 300.0

    @classmethod
    def from_env(cls, environ: dict | None = None, env_file: str | Path | None = ".env"):
        values: dict[str, str] = {}
        if env_file and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        get = values.get
        default = cls()
        return cls(
            database_url=get("DATABASE_URL", default.database_url),
            amqp_uri=get("AMQP_URI", default.amqp_uri),
            amqp_heartbeat=int(get("AMQP_HEARTBEAT", default.amqp_heartbeat)),
            memcached_servers=_list(get("MEMCACHED_SERVERS")) or default.memcached_servers,
            smtp_host=get("SMTP_HOST", default.smtp_host),
            smtp_port=int(get("SMTP_PORT", default.smtp_port)),
            mail_from=get("MAIL_FROM", default.mail_from),
            data_dir=Path(get("DATA_DIR", str(default.data_dir))),
            allow_file_urls=_flag(get("ODP_ALLOW_FILE_URLS")),
            nc_ftp_host=get("NC_FTP_HOST", ""),
            nc_ftp_user=get("NC_FTP_USER", ""),
            nc_ftp_password=get("NC_FTP_PASSWORD", ""),
            nc_auto_import_monitors=_list(get("NC_AUTO_IMPORT_MONITORS")),
            census_api_url=get("CENSUS_API_URL", default.census_api_url),
            census_api_key=get("CENSUS_API_KEY", ""),
            census_years=_list(get("CENSUS_YEARS")),
            admin_tokens=_list(get("ODP_ADMIN_TOKENS")),
            odp_url=get("ODP_URL", default.odp_url),
            odp_token=get("ODP_TOKEN", ""),
            port=int(get("PORT", default.port)),
            log_level=get("LOG_LEVEL", default.log_level).upper(),
            ingest_max_reject_share=float(
                get("INGEST_MAX_REJECT_SHARE", default.ingest_max_reject_share)),
            ingest_max_unzipped_bytes=int(
                get("INGEST_MAX_UNZIPPED_BYTES", default.ingest_max_unzipped_bytes)),
            ingest_disk_reserve_bytes=int(
                get("INGEST_DISK_RESERVE_BYTES", default.ingest_disk_reserve_bytes)),
            ingest_keep_failed_days=float(
                get("INGEST_KEEP_FAILED_DAYS", default.ingest_keep_failed_days)),
            ingest_parse_workers=int(
                get("INGEST_PARSE_WORKERS", default.ingest_parse_workers)),
            download_timeout=float(get("DOWNLOAD_TIMEOUT", default.download_timeout)),
            state_packages=_list(get("ODP_STATE_PACKAGES")),
            admin_rpc_timeout=float(get("ADMIN_RPC_TIMEOUT", default.admin_rpc_timeout)),
            web_secret=get("ODP_WEB_SECRET", ""),
            reader_database_url=get("READER_DATABASE_URL", ""),
            heartbeat_file=get("HEARTBEAT_FILE", ""),
            metrics_port=int(get("METRICS_PORT", default.metrics_port)),
            log_format=get("LOG_FORMAT", default.log_format).strip().lower(),
            generation_ttl=float(get("GENERATION_TTL", default.generation_ttl)),
            trusted_proxies=_list(get("TRUSTED_PROXIES")),
            operator_max_failed_tokens=int(
                get("OPERATOR_MAX_FAILED_TOKENS", default.operator_max_failed_tokens)),
            operator_failed_token_window=float(
                get("OPERATOR_FAILED_TOKEN_WINDOW", default.operator_failed_token_window)),
            download_allowed_networks=_list(get("DOWNLOAD_ALLOWED_NETWORKS")),
            handler_retries=int(get("HANDLER_RETRIES", default.handler_retries)),
            handler_retry_delay=float(get("HANDLER_RETRY_DELAY", default.handler_retry_delay)),
            import_redispatch_after=float(
                get("IMPORT_REDISPATCH_AFTER", default.import_redispatch_after)),
        )

    def with_changes(self, **changes) -> Config:
        return replace(self, **changes)

    def reader_url(self) -> str:
        """The gateway's database URL: its own read-only login."""
        if self.reader_database_url:
            return self.reader_database_url
        from sqlalchemy.engine import make_url

        from shared.db import READER_ROLE

        url = make_url(self.database_url).set(username=READER_ROLE, password=None)
        return url.render_as_string(hide_password=False)

    def nameko_config(self) -> dict:
        """The dictionary nameko containers and standalone proxies take."""
        return {"AMQP_URI": self.amqp_uri, "HEARTBEAT": self.amqp_heartbeat,
                "serializer": "json"}

    def as_environ(self) -> dict[str, str]:
        """The settings as environment variables, for child processes (with
        PATH and the like, so the child finds the same interpreter)."""
        environ = {key: value for key, value in os.environ.items() if key in PASSED_ON}
        for attr, name in ENVIRONMENT_NAMES.items():
            value = getattr(self, attr)
            if isinstance(value, bool):
                value = "1" if value else "0"
            elif isinstance(value, tuple):
                value = ",".join(value)
            environ[name] = str(value)
        return environ


# Every setting and its variable, for handing the settings to a child process.
ENVIRONMENT_NAMES = {
    "database_url": "DATABASE_URL", "amqp_uri": "AMQP_URI",
    "amqp_heartbeat": "AMQP_HEARTBEAT", "memcached_servers": "MEMCACHED_SERVERS",
    "smtp_host": "SMTP_HOST", "smtp_port": "SMTP_PORT", "mail_from": "MAIL_FROM",
    "data_dir": "DATA_DIR", "allow_file_urls": "ODP_ALLOW_FILE_URLS",
    "nc_ftp_host": "NC_FTP_HOST", "nc_ftp_user": "NC_FTP_USER",
    "nc_ftp_password": "NC_FTP_PASSWORD", "nc_auto_import_monitors": "NC_AUTO_IMPORT_MONITORS",
    "census_api_url": "CENSUS_API_URL", "census_api_key": "CENSUS_API_KEY",
    "census_years": "CENSUS_YEARS", "admin_tokens": "ODP_ADMIN_TOKENS", "odp_url": "ODP_URL",
    "odp_token": "ODP_TOKEN", "port": "PORT", "log_level": "LOG_LEVEL",
    "ingest_max_reject_share": "INGEST_MAX_REJECT_SHARE",
    "ingest_max_unzipped_bytes": "INGEST_MAX_UNZIPPED_BYTES",
    "ingest_disk_reserve_bytes": "INGEST_DISK_RESERVE_BYTES",
    "ingest_keep_failed_days": "INGEST_KEEP_FAILED_DAYS",
    "ingest_parse_workers": "INGEST_PARSE_WORKERS",
    "download_timeout": "DOWNLOAD_TIMEOUT", "state_packages": "ODP_STATE_PACKAGES",
    "admin_rpc_timeout": "ADMIN_RPC_TIMEOUT", "web_secret": "ODP_WEB_SECRET",
    "reader_database_url": "READER_DATABASE_URL", "heartbeat_file": "HEARTBEAT_FILE",
    "metrics_port": "METRICS_PORT", "log_format": "LOG_FORMAT",
    "generation_ttl": "GENERATION_TTL",
    "operator_max_failed_tokens": "OPERATOR_MAX_FAILED_TOKENS",
    "trusted_proxies": "TRUSTED_PROXIES",
    "operator_failed_token_window": "OPERATOR_FAILED_TOKEN_WINDOW",
    "download_allowed_networks": "DOWNLOAD_ALLOWED_NETWORKS",
    "handler_retries": "HANDLER_RETRIES", "handler_retry_delay": "HANDLER_RETRY_DELAY",
    "import_redispatch_after": "IMPORT_REDISPATCH_AFTER",
}
