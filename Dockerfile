# A custom Beam SDK container for llama-data's workers on Dataflow, Flink and Spark
# (docs/cluster.md): Beam's own Python 3.11 SDK image at the release setup.cfg pins, the project
# with its pinned dependencies, and KenLM's lmplz and build_binary. Not built in this project's
# sandbox (no Docker Hub there); every step is the one `make install kenlm` runs.
#
#   docker build -t REGISTRY/llama-data-worker:0.1.0 .
#   docker push REGISTRY/llama-data-worker:0.1.0
#
# Beam's entrypoint (/opt/apache/beam/boot) is kept: the image is an SDK harness container.
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION}

# KenLM's programs (the CCNet LM is trained with them; workers only score with the kenlm
# module): scripts/build_kenlm.sh installs its Debian build dependencies and builds both.
WORKDIR /opt/kenlm
COPY scripts/build_kenlm.sh scripts/build_kenlm.sh
RUN mkdir -p /usr/local/bin \
    && VENV_BIN=/usr/local/bin PYTHON=python bash scripts/build_kenlm.sh \
    && rm -rf /opt/kenlm/.kenlm-build /var/lib/apt/lists/*

# torch first and pinned (as the Makefile installs it), then the project and its pinned
# dependencies; apache-beam==2.77.0 is already the image's. The aws and gcp extras give the
# workers Beam's s3:// and gs:// filesystems, through which they read inputs and models. That
# install also compiles the two C kernels (llama_data/pipeline/kernels/; the SDK image has gcc),
# and the build stops if they did not compile: without them workers give the same output slower.
WORKDIR /opt/llama-data
COPY . .
RUN python -m pip install --no-cache-dir torch==2.13.0 \
    && python -m pip install --no-cache-dir ".[aws,gcp]" \
    && python -c "import llama_data, kenlm, sentencepiece, fasttext; print(llama_data.__version__)" \
    && python -c "from llama_data.pipeline import kernels as k; assert all(map(k.available, k.KERNELS))" \
    && command -v lmplz && command -v build_binary
WORKDIR /
