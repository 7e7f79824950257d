"""The README's config reference is generated from the config dataclasses and must stay in sync."""

from conftest import REPO
from llama_data.beam_jobs import build  # noqa: F401 - registers every source's config section
from llama_data.pipeline.config import load_config, reference_toml


def test_readme_config_reference_is_current():
    readme = (REPO / "README.md").read_text()
    assert reference_toml() in readme, (
        "regenerate with: python -c 'import llama_data.beam_jobs.build; from llama_data.pipeline.config import reference_toml; print(reference_toml())'"
    )


def test_reference_is_a_valid_config_shape(tmp_path):
    # Every key the reference lists is accepted by the parser (required inputs filled in).
    text = reference_toml().replace("[]  # required", '["x.jsonl"]').replace('""  # unset', '"x"')
    path = tmp_path / "ref.toml"
    path.write_text(text)
    try:
        load_config(path)
    except Exception as exc:  # value checks (e.g. github repos + inputs) may object; keys may not
        assert "unknown key" not in str(exc) and "unknown section" not in str(exc), exc


def test_readme_quotes_the_peer_benchmark_table():
    """The Performance section quotes the table `make bench` last wrote (bench_peer)."""
    readme = (REPO / "README.md").read_text()
    begin = readme.index("<!-- bench_peer: begin")
    block = readme[readme.index("-->", begin) + 3 : readme.index("<!-- bench_peer: end -->")]
    assert block.strip() == (REPO / "benchmarks" / "results.md").read_text().strip()
