#!/usr/bin/env bash
# Make sure PostgreSQL, RabbitMQ and memcached are installed and answering on
# this machine: start them when installed but stopped, install them with
# apt-get when missing and running as root, otherwise say what to install.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local name=$1 port=$2 seconds=${3:-60}
  for _ in $(seq "$seconds"); do
    port_open "$port" && return 0
    sleep 1
  done
  echo "error: $name did not start listening on port $port within ${seconds}s" >&2
  return 1
}

apt_updated=0
install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: $1 is not installed; install it (Debian/Ubuntu: sudo apt-get install $*)" >&2
    exit 1
  fi
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  echo "installing $* ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL
if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || install postgresql
  version=$(ls /etc/postgresql | sort -n | tail -1)
  echo "starting PostgreSQL $version ..."
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port PostgreSQL 5432
fi

# RabbitMQ
if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || install rabbitmq-server
  echo "starting RabbitMQ ..."
  rabbitmq-server -detached || true
  wait_port RabbitMQ 5672 120
fi

# memcached
if ! port_open 11211; then
  command -v memcached >/dev/null || install memcached
  echo "starting memcached ..."
  if [ "$(id -u)" = 0 ]; then
    memcached -d -u memcache -l 127.0.0.1 -p 11211 -m 256
  else
    memcached -d -l 127.0.0.1 -p 11211 -m 256
  fi
  wait_port memcached 11211
fi

# Chromium, for the website's browser tests (Debian's package: Playwright
# drives it; no browser is downloaded). Only `make test` asks for it.
if [ "${ODP_NEED_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null; then
  install chromium
fi

# wrk, the load generator of the API benchmark (Debian's package: its own
# process, in C). Only `make bench-api` asks for it.
if [ "${ODP_NEED_WRK:-0}" = 1 ] && ! command -v wrk >/dev/null; then
  install wrk
fi

echo "PostgreSQL, RabbitMQ and memcached are running"
