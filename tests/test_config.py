from pathlib import Path

import pytest

from llama_data.pipeline.config import DocumentsSourceConfig, load_config, parse_config
from llama_data.pipeline.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "build.toml"
    path.write_text(text)
    return path


def test_valid_config_resolves_relative_paths(tmp_path: Path):
    path = _write(
        tmp_path,
        '[build]\nworkers = 2\noutput = "out"\n'
        '[sources.notes]\nformat = "documents"\ninputs = ["data/*.jsonl", "gs://bucket/x.jsonl"]\n',
    )
    cfg = load_config(path)
    assert cfg.build.workers == 2 and cfg.build.output == str(tmp_path / "out")
    src = cfg.sources["notes"]
    assert isinstance(src, DocumentsSourceConfig)
    assert src.inputs == [str(tmp_path / "data" / "*.jsonl"), "gs://bucket/x.jsonl"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[build]\nworkres = 2\n[sources.a]\nformat="documents"\ninputs=["x"]',
            r"build\.workres: unknown key",
        ),
        (
            '[build]\nworkers = "two"\n[sources.a]\nformat="documents"\ninputs=["x"]',
            r"build\.workers: expected an integer",
        ),
        (
            "[build]\nworkers = 0\n[sources.a]\nformat='documents'\ninputs=['x']",
            r"build\.workers: must be in \[1, 1024\]",
        ),
        (
            "[build]\nrunner = 'Local'\n[sources.a]\nformat='documents'\ninputs=['x']",
            r"build\.runner: 'Local' is not one of",
        ),
        ("[sources.a]\nformat='documents'\ninptus=['x']", r"sources\.a\.inptus: unknown key"),
        ("[sources.a]\nformat='documents'", r"sources\.a\.inputs: missing required key"),
        (
            "[sources.a]\nformat='documents'\ninputs='x.jsonl'",
            r"sources\.a\.inputs: expected a list",
        ),
        (
            "[sources.a]\nformat='documents'\ninputs=[]",
            r"sources\.a\.inputs: must name at least one",
        ),
        ("[sources.a]\nformat='pdf'\ninputs=['x']", r"sources\.a: unknown source"),
        (
            "[sources.a]\nformat='documents'\ninputs=['x']\n[mixtrue]\nx=1",
            r"mixtrue: unknown section",
        ),
        ("[build]\nworkers = 1\n", r"sources: the config names no source"),
        ("[sources.My_Src]\nformat='documents'\ninputs=['x']", r"sources\.My_Src: source names"),
    ],
)
def test_bad_configs_name_the_key(tmp_path: Path, text: str, message: str):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


def test_not_toml_and_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[build\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_parse_without_a_file_keeps_paths():
    cfg = parse_config({"sources": {"a": {"format": "documents", "inputs": ["rel/*.jsonl"]}}})
    assert cfg.sources["a"].inputs == ["rel/*.jsonl"]
