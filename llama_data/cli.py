"""Command line: click commands that parse and validate, then call one function each."""

from __future__ import annotations

import click

from llama_data import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llama-data")
def main() -> None:
    """Build LLaMA-style pre-training data: sources, filters, tokenizer and mixture shards."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llama-train")
def train_main() -> None:
    """Train the LLaMA architecture on llama-data token shards."""
