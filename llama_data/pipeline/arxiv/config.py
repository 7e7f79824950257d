"""`[sources.arxiv]`: arXiv LaTeX sources. Every setting's default and help live here and nowhere
else: the `arxiv` command's options, the config reference and the stage all read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from llama_data.pipeline.config import SourceConfig, register_source, setting
from llama_data.pipeline.errors import ConfigError

COMMAND_HELP = """arXiv LaTeX sources -> cleaned papers (LLaMA: no preamble, comments, bibliography; macros expanded).

    Inputs: bulk tars (arXiv_src_YYMM_NNN.tar, also straight from s3://arxiv/src/ with
    `pip install llama-data[aws]`, --requester-pays and AWS credentials; Beam S3 options such as
    `-- --s3_region_name=us-east-1` go after `--`), per-paper .gz/.tar.gz, or extracted folders.
    """


@register_source("arxiv")
@dataclass(frozen=True)
class ArxivSourceConfig(SourceConfig):
    """[sources.arxiv]: bulk tars / per-paper archives / folders; limits of the LaTeX cleaning."""

    # `llama-data arxiv`, the command made from these settings (cli.py)
    command_help: ClassVar[str] = COMMAND_HELP

    max_input_depth: int = setting(16, help="Nesting limit of \\input/\\include/\\subfile.")
    max_macro_depth: int = setting(
        32, help="Nesting limit of user macro expansion (a recursive \\def stops here)."
    )
    max_paper_mb: int = setting(
        256, help="Decompressed size limit of one paper (gzip bombs are cut here)."
    )
    requester_pays: bool = setting(
        False,
        help="Send RequestPayer=requester on S3 reads (needed for s3://arxiv/src/; you pay the "
        "transfer).",
    )

    def validate(self, where: str) -> None:
        super().validate(where)
        for key in ("max_input_depth", "max_macro_depth", "max_paper_mb"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be >= 1")
