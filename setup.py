"""The one compiled part of llama-data: `llama_data.pipeline.kernels._linehash`, cc_net's line
normalization and hashing in C (see llama_data/pipeline/kernels/__init__.py for why). Everything
else is declared in setup.cfg. The extension is optional: where it cannot be compiled (no C
compiler or Python headers) the install goes on and the Python path computes the same bytes."""

import sys

from setuptools import Extension, setup

# -O3, but no -ffast-math or -march=native: the module is integer code and must run on any x86-64
# or ARM worker the wheel lands on.
COMPILE_ARGS = [] if sys.platform == "win32" else ["-O3"]

setup(
    ext_modules=[
        Extension(
            "llama_data.pipeline.kernels._linehash",
            sources=["llama_data/pipeline/kernels/linehash.c"],
            extra_compile_args=COMPILE_ARGS,
            optional=True,
        )
    ]
)
