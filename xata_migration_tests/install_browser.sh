#!/usr/bin/env sh
# The browser test (test_ui_browser.py) drives Debian's chromium through chromium-driver:
# a test tool's own browser download would need the internet. `make test` runs this first.
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing chromium and chromium-driver for the browser test (apt-get)..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    chromium chromium-driver >/dev/null && exit 0
fi
echo "The browser test needs chromium and chromium-driver: as root, apt-get install chromium" \
  "chromium-driver (or run XATA_MIGRATION_SKIP_BROWSER=1 make test to leave that test out)." >&2
