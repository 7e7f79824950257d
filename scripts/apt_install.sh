#!/usr/bin/env bash
# apt_install.sh WHAT WITHOUT PKG...: installs Debian packages PKG for WHAT when apt (as root or
# through sudo) is there. Never fails: where it cannot install, it says what happens WITHOUT them.
set -uo pipefail
what="$1"; without="$2"; shift 2
if ! command -v apt-get >/dev/null; then
  echo "$what: no apt here; $without (install: $*)"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "$what: not root and no sudo; $without (install: $*)"
  exit 0
fi
echo "$what: installing $*"
if ! { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }; then
  echo "$what: apt-get install failed; $without"
fi
exit 0
