"""The GitHub source: export/checkout readers, licences, header stripping and quality filters.

`reader` reads BigQuery `github_repos` exports and local git checkouts, `licenses` names and
classifies licences, `boilerplate` strips licence headers, `quality` holds the filter steps and
dedup keys, `languages` the extension allow-list, `schema` the stage's columns, and `bigquery`
the SQL for `--bigquery` (GitHub's download: an export made in BigQuery).
"""

from llama_data.pipeline.github.boilerplate import strip_license_header
from llama_data.pipeline.github.languages import ALLOWED_EXTENSIONS, language_of
from llama_data.pipeline.github.licenses import (
    ALLOWED_LICENSES,
    classify_license_text,
    normalize_license_key,
)
from llama_data.pipeline.github.quality import content_key, github_steps, keep_order_key
from llama_data.pipeline.github.reader import (
    GitCheckoutReader,
    GithubRowReader,
    file_document,
    read_license_rows,
)

__all__ = [
    "ALLOWED_EXTENSIONS",
    "ALLOWED_LICENSES",
    "GitCheckoutReader",
    "GithubRowReader",
    "classify_license_text",
    "content_key",
    "file_document",
    "github_steps",
    "keep_order_key",
    "language_of",
    "normalize_license_key",
    "read_license_rows",
    "strip_license_header",
]
