"""Compiled kernels (llama_data/pipeline/kernels/); everything else is in setup.cfg.

Each kernel is optional: an install without a C compiler still works, and the Python code falls
back to the library the kernel stands in for (same results, slower)."""

from setuptools import Extension, setup

# exact IEEE arithmetic in the order the C code is written: no fused multiply-add, no reassociation
FLAGS = ["-O3", "-ffp-contract=off", "-fno-fast-math"]

setup(
    ext_modules=[
        Extension(
            "llama_data.pipeline.kernels._ftlid",
            ["llama_data/pipeline/kernels/ftlid.c"],
            extra_compile_args=FLAGS,
            optional=True,
        ),
    ]
)
