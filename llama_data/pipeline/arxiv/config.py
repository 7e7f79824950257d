"""`[sources.arxiv]`: arXiv LaTeX sources. Its defaults live here and nowhere else (the `arxiv` command's
options are made from these fields)."""

from __future__ import annotations

from dataclasses import dataclass

from llama_data.pipeline.config import SourceConfig, register_source, setting
from llama_data.pipeline.errors import ConfigError


@register_source("arxiv")
@dataclass(frozen=True)
class ArxivSourceConfig(SourceConfig):
    """[sources.arxiv]: bulk tars / per-paper archives / folders; limits of the LaTeX cleaning."""

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
