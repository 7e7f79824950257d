#!/usr/bin/env bash
# Installs a C compiler (Debian's gcc) for the compiled kernels in llama_data/pipeline/kernels/,
# which `pip install` builds through setup.py, when apt is available and there is none. Never
# fails the install: without one the kernels are skipped and the same results come slower (and
# tests/test_*_kernel.py say so).
set -uo pipefail
if command -v cc >/dev/null || command -v gcc >/dev/null; then exit 0; fi
exec bash "$(dirname "$0")/apt_install.sh" "C kernels" \
  "the kernels will not be built (same results, slower)" gcc libc6-dev
