#!/usr/bin/env bash
# Installs Debian's `chromium` for the build report's browser test (tests/test_report.py), when
# apt is available and it is missing. Never fails `make test`: without it, that test is skipped
# with a message.
set -uo pipefail
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null; then exit 0; fi
done
exec bash "$(dirname "$0")/apt_install.sh" chromium "the report's browser test will be skipped" chromium
