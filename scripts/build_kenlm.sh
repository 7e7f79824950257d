#!/usr/bin/env bash
# Builds KenLM's lmplz and build_binary from the kenlm source distribution into the venv's bin/,
# unless both are already on PATH. Debian has no KenLM package; the sdist carries the sources.
set -euo pipefail
: "${VENV_BIN:?}" "${PYTHON:?}"
KENLM_VERSION=0.3.0
if command -v lmplz >/dev/null && command -v build_binary >/dev/null; then exit 0; fi
if [ -x "$VENV_BIN/lmplz" ] && [ -x "$VENV_BIN/build_binary" ]; then exit 0; fi

DEB_PKGS="cmake g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev libeigen3-dev zlib1g-dev libbz2-dev liblzma-dev"
missing=""
if command -v dpkg-query >/dev/null; then
  for p in $DEB_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "kenlm: installing build dependencies:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "kenlm: cannot build lmplz/build_binary: install these first (Debian names):$missing" >&2
    exit 1
  fi
elif ! command -v dpkg-query >/dev/null && ! command -v cmake >/dev/null; then
  echo "kenlm: cannot build lmplz/build_binary: need cmake, a C++ compiler, Boost (program_options, system, thread, test), Eigen3, zlib, bzip2 and lzma development files" >&2
  exit 1
fi

work="$(pwd)/.kenlm-build"
mkdir -p "$work"
if [ ! -d "$work/src" ]; then
  # Only kenlm itself as source (its build deps stay binary), no build isolation: we need the
  # archive, not a wheel.
  "$PYTHON" -m pip download --quiet --no-deps --no-binary kenlm --no-build-isolation \
    "kenlm==$KENLM_VERSION" -d "$work/dl"
  mkdir -p "$work/src.tmp"
  tar -xzf "$work"/dl/kenlm-*.tar.gz -C "$work/src.tmp" --strip-components=1
  mv "$work/src.tmp" "$work/src"
fi
mkdir -p "$work/src/build"
cd "$work/src/build"
echo "kenlm: building lmplz and build_binary (log: $work/src/build/build.log)"
if ! { cmake -DCMAKE_BUILD_TYPE=Release .. && make -j"$(nproc)" lmplz build_binary; } >build.log 2>&1; then
  tail -n 40 build.log >&2
  echo "kenlm: build failed (full log: $work/src/build/build.log)" >&2
  exit 1
fi
cp bin/lmplz bin/build_binary "$VENV_BIN/"
echo "kenlm: built $VENV_BIN/lmplz and $VENV_BIN/build_binary"
