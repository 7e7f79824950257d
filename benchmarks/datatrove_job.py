"""datatrove's `WarcReader -> LanguageFilter -> JsonlWriter`, the peer `bench_peer` measures.

Runs inside the benchmark's own datatrove environment (never imports llama_data):

    python datatrove_job.py INPUT_DIR OUTPUT_DIR LOGS_DIR LID_MODEL

One task, one worker, in this process (as our stages run with `--workers 1`). The language filter
is datatrove's own `LanguageFilter` (ft176 backend, default threshold 0.65, English), its model
pointed at the same lid.176 file our `ccnet` stage loads: a `file://` URL, which datatrove's
asset cache copies into place instead of downloading.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    input_dir, output_dir, logs_dir, lid_model = argv
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import LanguageFilter
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.lid import FT176LID

    FT176LID.MODEL_URL = f"file://{lid_model}"
    LocalPipelineExecutor(
        pipeline=[
            WarcReader(input_dir, glob_pattern="*.warc.wet.gz"),
            LanguageFilter(languages=["en"]),
            JsonlWriter(output_dir),
        ],
        tasks=1,
        workers=1,
        logging_dir=logs_dir,
    ).run()


if __name__ == "__main__":
    main(sys.argv[1:])
