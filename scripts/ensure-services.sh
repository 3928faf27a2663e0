#!/usr/bin/env bash
# Make sure the services the tests use are up: Redis and PostgreSQL on
# 127.0.0.1. Installs and starts them if missing (Debian, as root).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "need root to install $*" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! have redis-server; then apt_install redis-server; fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

if ! have pg_ctlcluster; then apt_install postgresql; fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi

for _ in $(seq 1 100); do
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q; then
    exit 0
  fi
  sleep 0.1
done
echo "Redis or PostgreSQL did not come up on 127.0.0.1" >&2
exit 1
