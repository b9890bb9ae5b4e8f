"""`python -m bench.operator`: the operator API's RPC path, pooled against a
new proxy per call.

Starts the admin service and the gateway under gunicorn (2 sync workers),
then measures sequential GET /admin/api/imports/?limit=5 through HTTP (the
gateway's pooled RPC client), and the same admin call made with a new
nameko ClusterRpcProxy per call (what a gateway without the pool would do).

    python -m bench.operator --requests 500
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import time
from pathlib import Path

from nameko.standalone.rpc import ClusterRpcProxy

from bench.api import HOST, free_port, percentile, start_gateway, stop_gateway
from bench.ingest import ROOT
from shared.config import Config
from shared.operator import token_digest

TOKEN = "bench-operator-token"


def start_admin(config: Config, log_path: Path) -> subprocess.Popen:
    environ = config.as_environ() | {"ODP_ADMIN_TOKENS": TOKEN}
    log = open(log_path, "w+")
    process = subprocess.Popen([sys.executable, "-m", "services.admin"], cwd=ROOT,
                               env=environ, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "services ready" in log_path.read_text():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the admin service did not start; see {log_path}")


def through_gateway(port: int, requests: int) -> list[float]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        connection.request("GET", "/admin/api/imports/?limit=5", headers=headers)
        response = connection.getresponse()
        body = response.read()
        times.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {body[:200]!r}")
    connection.close()
    return times


def proxy_per_call(config: Config, calls: int) -> list[float]:
    digest = token_digest(TOKEN)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        with ClusterRpcProxy(config.nameko_config(), timeout=30) as rpc:
            rpc.admin.list_imports(digest, {"limit": 5})
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(name: str, times: list[float]) -> float:
    rate = len(times) / (sum(times) / 1000)
    print(f"{name:<32} {rate:8.1f} req/s   p50 {percentile(times, 0.5):6.1f} ms   "
          f"p99 {percentile(times, 0.99):6.1f} ms")
    return rate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args(argv)
    config = Config.from_env()
    logs = ROOT / "bench-data"
    logs.mkdir(exist_ok=True)
    admin = start_admin(config, logs / "bench-operator-admin.log")
    port = free_port()
    gateway = start_gateway(config, port, 2, "sync", logs / "bench-operator-gateway.log")
    try:
        through_gateway(port, 20)  # both workers' pools filled
        pooled = report("HTTP, pooled RPC client", through_gateway(port, args.requests))
        fresh = report("new proxy per call (no HTTP)",
                       proxy_per_call(config, max(20, args.requests // 10)))
        print(f"the pool answers {pooled / fresh:.1f} times as many calls per second")
    finally:
        stop_gateway(gateway)
        admin.terminate()
        admin.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
