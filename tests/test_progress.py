import io
import time
from pathlib import Path

from llama_data.beam_jobs.progress import ProgressDisplay, ProgressWriter


def test_workers_progress_is_summed_and_logged(tmp_path: Path):
    a, b = ProgressWriter(str(tmp_path), interval=0), ProgressWriter(str(tmp_path), interval=0)
    a.add(10, 1000)
    b.add(5, 500)
    stream = io.StringIO()
    with ProgressDisplay(str(tmp_path), "stage", stream=stream, log_every=0.2) as display:
        assert display.totals() == (15, 1500)
        time.sleep(1.0)
    text = stream.getvalue()
    assert "[stage] 15 docs  1.5 KB" in text and "docs/s" in text and "elapsed 0:00:0" in text
    assert "\r" not in text  # not a TTY: plain log lines


def test_writer_without_folder_is_a_no_op():
    w = ProgressWriter(None)
    w.add(1, 1)
    w.flush()
    assert w.docs == 1
