#!/usr/bin/env sh
# The least-privilege delta test (test_delta.py) also runs its source on Debian's
# PostgreSQL 15, as users' servers often are. `make test` runs this first.
if [ -x /usr/lib/postgresql/15/bin/postgres ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing postgresql-15 for the least-privilege test (apt-get)..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    postgresql-15 >/dev/null && exit 0
fi
echo "The least-privilege test needs Debian's postgresql-15: as root, apt-get install" \
  "postgresql-15 (or run XATA_MIGRATION_SKIP_PG15=1 make test to leave that case out)." >&2
