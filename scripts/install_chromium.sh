#!/usr/bin/env bash
# Installs Debian's `chromium` for the build report's browser test (tests/test_report.py), when
# apt is available and it is missing. Never fails `make test`: without it, that test is skipped
# with a message.
set -uo pipefail
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null; then exit 0; fi
done
if ! command -v apt-get >/dev/null; then
  echo "chromium: no apt here; the report's browser test will be skipped (install chromium to run it)"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "chromium: not root and no sudo; the report's browser test will be skipped"
  exit 0
fi
echo "chromium: installing (for the report's browser test)"
if ! { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
  echo "chromium: apt-get install failed; the report's browser test will be skipped"
fi
exit 0
