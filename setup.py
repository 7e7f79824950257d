"""The compiled kernels of llama-data (llama_data/pipeline/kernels/; its __init__ says why each
exists): `_linehash`, cc_net's line normalization and hashing, and `_ftlid`, fastText's k=1
prediction for lid.176. Everything else is declared in setup.cfg. Each extension is optional:
where it cannot be compiled (no C compiler or Python headers) the install goes on, and the Python
code computes the same results through its twin (the Python path, or the fasttext binding)."""

import sys

from setuptools import Extension, setup

# -O3, but no -ffast-math or -march=native: the modules must run on any x86-64 or ARM worker the
# wheel lands on, and `_ftlid` must do fastText's float arithmetic in fastText's order (no fused
# multiply-add, no reassociation), so that its scores equal fastText's bit for bit.
COMPILE_ARGS = [] if sys.platform == "win32" else ["-O3", "-ffp-contract=off", "-fno-fast-math"]

setup(
    ext_modules=[
        Extension(
            f"llama_data.pipeline.kernels._{name}",
            sources=[f"llama_data/pipeline/kernels/{name}.c"],
            extra_compile_args=COMPILE_ARGS,
            optional=True,
        )
        for name in ("linehash", "ftlid")
    ]
)
