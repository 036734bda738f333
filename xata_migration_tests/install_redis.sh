#!/usr/bin/env sh
# The Celery test (test_celery.py) starts Debian's redis-server as its broker. `make test`
# runs this first.
if command -v redis-server >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing redis-server for the Celery test (apt-get)..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    redis-server >/dev/null && exit 0
fi
echo "The Celery test needs redis-server: as root, apt-get install redis-server (without" \
  "it, that test is skipped)." >&2
