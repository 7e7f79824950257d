"""Runs inside the langdetect reference environment (langdetect 1.0.9, the detector C4 used):
answers with langdetect's own functions, seeded as C4 seeds it (`DetectorFactory.seed = 0`).

Request on stdin: {"op": ..., "cases": [...], "params": {...}}; answer: a JSON list.
"""

import json
import sys

import langdetect
from langdetect.lang_detect_exception import LangDetectException


def detect_langs(cases, params):
    """`langdetect.detect_langs` of each text: [[language, probability], ...], best first, or
    {"exception": message} when langdetect raises (a text without letters)."""
    out = []
    for text in cases:
        langdetect.DetectorFactory.seed = 0
        try:
            out.append([[p.lang, p.prob] for p in langdetect.detect_langs(text)])
        except LangDetectException as exc:
            out.append({"exception": str(exc)})
    return out


OPS = {"detect_langs": detect_langs}

if __name__ == "__main__":
    request = json.load(sys.stdin)
    json.dump(OPS[request["op"]](request["cases"], request.get("params", {})), sys.stdout)
