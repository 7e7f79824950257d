"""The posts' steps and the question's assembly: which posts go on (`PostFilter`), HTML to text
(`PostHtmlToText`), and a question's document from its post and its answers by numeric score
(`assemble_question`, after the shuffle by `question_key`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from llama_data.pipeline.document import DeadLetter, Document, Rejected
from llama_data.pipeline.stackexchange.html import InvalidHtml, html_to_text
from llama_data.pipeline.stackexchange.reader import ANSWER, POST_TYPES, QUESTION, is_meta_site
from llama_data.pipeline.steps import Step


def question_key(doc: Document) -> str:
    """The shuffle key that brings a question and its answers together: `<site>/<question id>`."""
    meta = doc.meta
    qid = meta["post_id"] if meta.get("post_type") == QUESTION else meta.get("parent_id")
    return f"{meta['site']}/{qid}"


def answer_order(doc: Document) -> tuple[int, int]:
    """Highest score first (as a number), then the older (smaller) answer id."""
    return (-int(doc.meta.get("score") or 0), int(doc.meta["post_id"]))


def assemble_question(key: str, posts: Iterable[Document]) -> Iterator[Document | Rejected]:
    """A question's document: title, body, then its answers by numeric score. A group without
    its question (answers to a question missing from the input) is rejected as `orphan_answers`."""
    questions: list[Document] = []
    by_id: dict[int, Document] = {}
    repeated: list[Document] = []
    for d in posts:
        if d.meta.get("post_type") == QUESTION:
            questions.append(d)
        elif d.meta["post_id"] in by_id:  # the same site given twice (archive and Posts.xml)
            repeated.append(d)
        else:
            by_id[d.meta["post_id"]] = d
    answers = sorted(by_id.values(), key=answer_order)
    for dup in repeated:
        yield Rejected(dup.with_text(""), f"duplicate_of:{dup.id}")
    if not questions:
        site, _, qid = key.rpartition("/")
        meta = {"site": site, "question_id": int(qid) if qid.isdigit() else None,
                "answer_count": len(answers), "answer_ids": [a.meta["post_id"] for a in answers]}  # fmt: skip
        yield Rejected(
            Document(key, answers[0].source if answers else "stackexchange", "", meta),
            "orphan_answers",
        )
        return
    questions.sort(key=lambda d: int(d.meta["post_id"]))
    q = questions[0]
    for dup in questions[1:]:
        yield Rejected(dup.with_text(""), f"duplicate_of:{q.id}")
    parts = [q.meta.get("title", "").strip(), q.text.strip(), *(a.text.strip() for a in answers)]
    text = "\n\n".join(p for p in parts if p)
    licenses = sorted({str(d.meta.get("license")) for d in (q, *answers) if d.meta.get("license")})
    yield Document(
        id=q.id,
        source=q.source,
        text=text,
        meta={
            "site": q.meta["site"],
            "question_id": q.meta["post_id"],
            "title": q.meta.get("title", ""),
            "score": q.meta.get("score"),
            "answer_count": len(answers),
            "license": q.meta.get("license"),
            "licenses": licenses,
            "tags": q.meta.get("tags", []),
            "creation_date": q.meta.get("creation_date"),
            "answer_ids": [a.meta["post_id"] for a in answers],
            "answer_scores": [a.meta.get("score") for a in answers],
        },
    )


def group_posts(posts: Iterable[Document]) -> Iterator[Document | Rejected]:
    """In-memory grouping for tests and small inputs; the Beam job groups through a shuffle."""
    groups: dict[str, list[Document]] = defaultdict(list)
    for d in posts:
        groups[question_key(d)].append(d)
    for key in sorted(groups):
        yield from assemble_question(key, groups[key])


def top_sites(post_counts: dict[str, int], n: int) -> list[str]:
    """The `n` sites with most posts; ties by name, so the choice does not depend on order."""
    ranked = sorted(post_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [site for site, _ in ranked[:n]]


class PostFilter(Step):
    """Questions and answers of the chosen sites go on; other post types and sites are skipped."""

    name = "se_posts"

    def __init__(self, exclude_meta: bool = True, sites: Sequence[str] | None = None) -> None:
        self.exclude_meta = exclude_meta
        self.sites = None if sites is None else frozenset(sites)

    def process(self, doc: Document) -> Document | Rejected:
        site = str(doc.meta.get("site", ""))
        if self.exclude_meta and is_meta_site(site):
            return self.reject(doc, "meta_site", keep_text=False)
        if self.sites is not None and site not in self.sites:
            return self.reject(doc, "not_top_site", keep_text=False)
        ptype = doc.meta.get("post_type")
        if ptype not in (QUESTION, ANSWER):
            return self.reject(doc, f"post_type:{POST_TYPES.get(ptype, ptype)}", keep_text=False)  # type: ignore[arg-type]
        if ptype == ANSWER and doc.meta.get("parent_id") is None:
            return self.reject(doc, "answer_without_parent", keep_text=False)
        return doc


class PostHtmlToText(Step):
    """A post's HTML body to text; a body that is not readable HTML is a dead letter."""

    name = "se_html"

    def process(self, doc: Document) -> Document | DeadLetter:
        try:
            text = html_to_text(doc.text)
        except (InvalidHtml, AssertionError, ValueError) as exc:
            self.count("bad_html")
            return DeadLetter(
                file=str(doc.meta.get("file", "")),
                error=f"{type(exc).__name__}: {exc}",
                reason="bad_html",
                record_id=doc.id,
            )
        return doc.with_text(text)
