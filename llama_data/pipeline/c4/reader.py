"""The public C4 release as Documents."""

from __future__ import annotations

import json
from typing import Any

from llama_data.pipeline.document import DeadLetter, Document
from llama_data.pipeline.io import JsonLinesReader, base_name, loads_json_line

SOURCE = "c4"


class C4JsonReader(JsonLinesReader):
    """The public C4 release (`c4-<split>.<n>-of-<m>.json.gz`): one JSON object a line with
    `text`, `url`, `timestamp`. Documents are kept unchanged; the id is `<file>:<line>`, stable
    across reruns because the release files are immutable.
    """

    name = "c4"

    def __init__(self, source: str = SOURCE) -> None:
        super().__init__(source)

    def file_stem(self, path: str) -> str:
        fname = base_name(path)
        for suffix in (".json.gz", ".json", ".jsonl.gz", ".jsonl"):
            if fname.endswith(suffix):
                return fname[: -len(suffix)]
        return fname

    def _parse(self, line: bytes, path: str, fname: str, lineno: int) -> Document | DeadLetter:
        try:
            obj, repaired = loads_json_line(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            return DeadLetter(
                file=path, offset=lineno, reason="bad_json", error=f"{type(exc).__name__}: {exc}"
            )
        self.count("read.surrogates_replaced", repaired)
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            return DeadLetter(
                file=path, offset=lineno, reason="missing_text", error="no string 'text' field"
            )
        for key in ("url", "timestamp"):  # the release schema's string columns
            value = obj.get(key)
            if value is not None and not isinstance(value, str):
                return DeadLetter(
                    file=path,
                    offset=lineno,
                    reason="bad_field",
                    error=f"'{key}' is {type(value).__name__}, not a string",
                    record_id=f"{fname}:{lineno}",
                )
        meta: dict[str, Any] = {"url": obj.get("url"), "timestamp": obj.get("timestamp")}
        meta.update({k: v for k, v in obj.items() if k not in ("text", "url", "timestamp")})
        return Document(id=f"{fname}:{lineno}", source=self.source, text=obj["text"], meta=meta)
