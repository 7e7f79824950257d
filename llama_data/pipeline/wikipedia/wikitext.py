"""Wikitext to plain text with mwparserfromhell, and the page filter in front of it.

The parser gives a tree (links, templates, tags, headings ...), so each construct is handled by
what it is rather than by what a regex guesses: a link becomes its anchor text, a file or
category link disappears (localized namespace names included), a template is dropped whole even
when it spans lines or nests. Regexes only tidy what markup leaves behind (bold/italic quotes,
`__MAGIC__` words, stray brackets of broken markup, spacing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import mwparserfromhell
import pyarrow as pa
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode

from llama_data.pipeline.config import PAPER_WIKIPEDIA_LANGUAGES
from llama_data.pipeline.document import DeadLetter, Document, Rejected
from llama_data.pipeline.schema import DocumentSchema
from llama_data.pipeline.steps import Step

# The 20 languages of LLaMA's Wikipedia (Touvron et al. 2023, §2.1); one list, in config.
PAPER_LANGUAGES: tuple[str, ...] = PAPER_WIKIPEDIA_LANGUAGES

# File/Image/Media and Category namespace names and aliases; English names work on every wiki.
FILE_NAMESPACES: dict[str, tuple[str, ...]] = {
    "": ("file", "image", "media"),
    "bg": ("файл", "картинка", "медия"),
    "ca": ("fitxer", "imatge", "arxiu", "multimèdia"),
    "cs": ("soubor", "obrázek", "média"),
    "da": ("fil", "billede", "medie"),
    "de": ("datei", "bild", "medium"),
    "es": ("archivo", "imagen", "medio"),
    "fr": ("fichier", "image", "média"),
    "hr": ("datoteka", "slika", "mediji"),
    "hu": ("fájl", "kép", "média"),
    "it": ("file", "immagine", "media"),
    "ja": ("ファイル", "画像", "メディア"),
    "nl": ("bestand", "afbeelding", "media"),
    "pl": ("plik", "grafika", "media"),
    "pt": ("ficheiro", "arquivo", "imagem", "multimédia"),
    "ro": ("fișier", "fişier", "imagine", "media"),
    "ru": ("файл", "изображение", "медиа"),
    "sl": ("slika", "datoteka", "media"),
    "sr": ("датотека", "слика", "медиј", "datoteka", "slika"),
    "sv": ("fil", "bild", "media"),
    "uk": ("файл", "зображення", "медіа"),
}
CATEGORY_NAMESPACES: dict[str, tuple[str, ...]] = {
    "": ("category",),
    "bg": ("категория",),
    "ca": ("categoria",),
    "cs": ("kategorie",),
    "da": ("kategori",),
    "de": ("kategorie",),
    "es": ("categoría",),
    "fr": ("catégorie",),
    "hr": ("kategorija",),
    "hu": ("kategória",),
    "it": ("categoria",),
    "ja": ("カテゴリ",),
    "nl": ("categorie",),
    "pl": ("kategoria",),
    "pt": ("categoria",),
    "ro": ("categorie",),
    "ru": ("категория",),
    "sl": ("kategorija",),
    "sr": ("категорија", "kategorija"),
    "sv": ("kategori",),
    "uk": ("категорія",),
}
# Templates that mark a disambiguation page (the Disambiguator extension's __DISAMBIG__ is set
# inside them; pages-articles dumps have no page_props, so the transclusion is the signal).
DISAMBIGUATION_TEMPLATES: frozenset[str] = frozenset(
    name.casefold()
    for name in (
        # en
        "disambiguation", "disambig", "dab", "disamb", "hndis", "geodis", "numberdis",
        "letter-number combination disambiguation", "set index article",
        # others of the 20
        "пояснителна страница", "пояснение", "desambiguació", "desambiguacio", "rozcestník",
        "flertydig", "begriffsklärung", "desambiguación", "des", "homonymie", "patronymie",
        "razdvojba", "egyért", "disambigua", "dp", "dpintro", "ujednoznacznienie",
        "desambiguação", "desambig", "dezambiguizare", "dezambig", "неоднозначность",
        "многозначность", "razločitev", "вишезначна одредница", "višeznačna odrednica",
        "förgrening", "gren", "неоднозначність", "багатозначність",
        # ja (a test language outside the 20)
        "aimai", "曖昧さ回避",
    )
)  # fmt: skip
DISAMBIGUATION_TITLE = re.compile(
    r"\((?:disambiguation|begriffsklärung|homonymie|desambiguación|desambiguação|значения|"
    r"значення|ujednoznacznienie|disambigua|razdvojba|dezambiguizare)\)$",
    re.IGNORECASE,
)
# Interlanguage link prefixes beyond plain 2-3 letter codes; prefixes that look like language
# codes but are interwiki prefixes (their links render as text) are excluded.
LONG_LANGUAGE_PREFIXES = frozenset(
    [
        "simple",
        "be-tarask",
        "be-x-old",
        "zh-yue",
        "zh-min-nan",
        "zh-classical",
        "roa-rup",
        "map-bms",
        "bat-smg",
        "fiu-vro",
        "cbk-zam",
        "nds-nl",
        "roa-tara",
    ]
)
NOT_LANGUAGE_PREFIXES = frozenset(["mw", "doi", "rfc", "wmf", "arxiv", "irc"])
LANGUAGE_PREFIX = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]+)*$")

# Tags whose whole content is not prose.
DROP_TAGS = frozenset(
    [
        "ref",
        "references",
        "gallery",
        "table",
        "math",
        "chem",
        "ce",
        "score",
        "timeline",
        "graph",
        "imagemap",
        "templatedata",
        "templatestyles",
        "mapframe",
        "maplink",
        "indicator",
        "includeonly",
        "noinclude",
        "hiero",
        "inputbox",
        "categorytree",
        "section",
        "charinsert",
        "div-col-end",
        "style",
        "script",
    ]
)
BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "blockquote",
        "center",
        "pre",
        "poem",
        "syntaxhighlight",
        "source",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "dl",
    ]
)
LINE_TAGS = frozenset(["li", "dt", "dd", "tr", "caption"])
# Inline templates whose argument is ordinary text (everything else in {{...}} is dropped).
TEXT_TEMPLATES: dict[str, int] = {
    "nowrap": 1,
    "nobr": 1,
    "lang": 2,
    "small": 1,
    "smaller": 1,
    "big": 1,
    "abbr": 1,
    "sic": 1,
    "nowrap begin": 0,
}
LITERAL_TEMPLATES: dict[str, str] = {
    "'": "'",
    "ndash": "–",
    "mdash": "—",
    "snd": " – ",
    "spaced ndash": " – ",
    "nbsp": " ",
    "·": " · ",
    "dot": " · ",
}

_HEADING = "\x00H"  # marks heading lines until empty sections are dropped
_PRE = "\x01"  # brackets the number of a code block kept verbatim
_ITEM = "\x02"  # starts a list item's line (never joined to the line before)
_BREAK = "\x03"  # a hard line break (<br>, block tags)
_PRE_SLOT = re.compile(r"\x01(\d+)\x01")
_QUOTES = re.compile(r"'{5}|'{3}|'{2}")
_MAGIC = re.compile(r"__[^\W_a-z](?:[^\W_a-z]|_(?!_))*__")
_LEFTOVER_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>\n]*)?/?>")
_LEFTOVER_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_BRACKETS = re.compile(r"\[\[|\]\]|\{\{|\}\}|\{\||\|\}")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?)\]»])")
_EMPTY_PARENS = re.compile(r"\(\s*[,;]?\s*\)")
_BLANKS = re.compile(r"\n{3,}")


def _norm_name(name: str) -> str:
    return name.replace("_", " ").strip().casefold()


class WikitextCleaner:
    """Renders a page's wikitext as plain text for one language (namespace names differ)."""

    def __init__(self, lang: str = "en") -> None:
        self.lang = lang
        self._pre: list[str] = []
        self.file_ns = frozenset((*FILE_NAMESPACES[""], *FILE_NAMESPACES.get(lang, ())))
        self.category_ns = frozenset((*CATEGORY_NAMESPACES[""], *CATEGORY_NAMESPACES.get(lang, ())))

    def clean(self, wikitext: str, title: str = "") -> str:
        """Title as the first line, then the article's prose, headings and list items as lines."""
        code = mwparserfromhell.parse(wikitext, skip_style_tags=True)
        out: list[str] = []
        self._pre = []
        self._render(code, out)
        body = _tidy("".join(out))
        if self._pre:
            body = _PRE_SLOT.sub(lambda m: self._pre[int(m.group(1))], body)
        if title:
            return f"{title}\n\n{body}" if body else title
        return body

    # -- tree walk -----------------------------------------------------------------------------

    def _render(self, code: Wikicode | Iterable, out: list[str]) -> None:
        nodes = code.nodes if isinstance(code, Wikicode) else code
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.value)
            elif isinstance(node, Wikilink):
                self._link(node, out)
            elif isinstance(node, Template):
                self._template(node, out)
            elif isinstance(node, Tag):
                self._tag(node, out)
            elif isinstance(node, Heading):
                inner: list[str] = []
                self._render(node.title, inner)
                text = " ".join("".join(inner).split())
                out.append(f"\n{_HEADING}{node.level}\x00{text}\n")
            elif isinstance(node, ExternalLink):
                if node.brackets:
                    if node.title is not None:
                        self._render(node.title, out)
                else:
                    out.append(str(node.url))
            elif isinstance(node, HTMLEntity):
                try:
                    out.append(node.normalize())
                except (ValueError, OverflowError):
                    out.append(" ")
            elif isinstance(node, Comment | Argument):
                continue
            else:  # unknown node types: their visible text
                out.append(str(node))

    def _link(self, node: Wikilink, out: list[str]) -> None:
        target = str(node.title).strip()
        if target.startswith(":"):
            target = target[1:].lstrip()  # [[:Category:X]] / [[:fr:X]] are ordinary links
        else:
            prefix, sep, _ = target.partition(":")
            if sep:
                p = prefix.strip().replace("_", " ").casefold()
                if p in self.file_ns or p in self.category_ns:
                    return
                if (
                    prefix == prefix.lower()
                    and p not in NOT_LANGUAGE_PREFIXES
                    and (LANGUAGE_PREFIX.match(p) or p in LONG_LANGUAGE_PREFIXES)
                    and node.text is None
                ):
                    return  # interlanguage link: rendered in the sidebar, not the text
        if node.text is not None:
            inner: list[str] = []
            self._render(node.text, inner)
            text = "".join(inner)
            if text.strip():
                out.append(text)
                return
            # pipe trick: [[Paris (band)|]] shows "Paris"
            target = re.sub(r"\s*\([^)]*\)$", "", target.partition("#")[0])
        out.append(target.lstrip("#") if target.startswith("#") else target)

    def _template(self, node: Template, out: list[str]) -> None:
        name = _norm_name(str(node.name))
        if name in LITERAL_TEMPLATES:
            out.append(LITERAL_TEMPLATES[name])
            return
        index = 1 if name.startswith("lang-") else TEXT_TEMPLATES.get(name, -1)
        if index > 0:
            positional = [p for p in node.params if not p.showkey]
            if len(positional) >= index:
                self._render(positional[index - 1].value, out)

    def _tag(self, node: Tag, out: list[str]) -> None:
        tag = str(node.tag).strip().lower()
        if tag in DROP_TAGS:
            return
        if tag in ("br", "hr"):
            out.append(f"\n{_BREAK}")
            return
        markup = node.wiki_markup
        if markup and tag in LINE_TAGS:  # "*", "#", ";", ":" list markers: the line stays a line
            out.append(_ITEM)
            return
        if node.self_closing or node.contents is None:
            return
        if tag == "nowiki":
            out.append(str(node.contents))
            return
        block = tag in BLOCK_TAGS or tag in LINE_TAGS
        if block:
            out.append(f"\n{_BREAK}")
        if tag in ("pre", "syntaxhighlight", "source"):
            # Code keeps its exact lines: a placeholder rides through the tidying regexes.
            code = str(node.contents).strip("\n")
            self._pre.append(code)
            out.append(f"\n{_PRE}{len(self._pre) - 1}{_PRE}\n")
        else:
            self._render(node.contents, out)
        if block:
            out.append(f"\n{_BREAK}")


def _tidy(text: str) -> str:
    """Remove what markup leaves behind, then drop headings of sections left empty."""
    text = _QUOTES.sub("", text)
    text = _MAGIC.sub("", text)
    text = _drop_broken_tables(text)
    for _ in range(3):  # nested remnants of unbalanced templates
        new = _LEFTOVER_TEMPLATE.sub("", text)
        if new == text:
            break
        text = new
    text = _LEFTOVER_TAG.sub("", text)
    text = _BRACKETS.sub("", text)
    lines: list[str] = []
    joinable = False  # the last line is paragraph text a soft line break may continue
    for line in text.split("\n"):
        if line.startswith((_HEADING, _PRE)):
            lines.append(line)
            joinable = False
            continue
        hard = line.lstrip(" \t").startswith((_ITEM, _BREAK))
        line = line.replace(_ITEM, "").replace(_BREAK, "")
        line = _EMPTY_PARENS.sub("", line)
        line = _SPACES.sub(" ", line).strip()
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", line).strip()
        if line[:1] in (",", ";", "."):  # the citation template before it was dropped
            line = line.lstrip(",;. ")
        if line and not line.strip("*#:;-–—•·|,. "):
            line = ""  # a list marker or separator whose item was all markup
        if line and joinable and not hard:
            lines[-1] += " " + line  # MediaWiki renders a single newline in a paragraph as a space
            continue
        lines.append(line)
        joinable = bool(line) and not hard
    lines = _drop_empty_sections(lines)
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _drop_broken_tables(text: str) -> str:
    """A `{| ... |}` the parser could not read as a table is still a table: drop its lines."""
    if "{|" not in text:
        return text
    out: list[str] = []
    depth = 0
    for line in text.split("\n"):
        s = line.lstrip()
        if s.startswith("{|"):
            depth += 1
            continue
        if depth:
            if s.startswith("|}"):
                depth -= 1
            continue
        out.append(line)
    return "\n".join(out)


def _drop_empty_sections(lines: list[str]) -> list[str]:
    """Headings whose section (subsections included) has no text left, e.g. 'References'."""
    levels = [
        int(line[len(_HEADING) : line.index("\x00", 2)]) if line.startswith(_HEADING) else 0
        for line in lines
    ]
    keep = [True] * len(lines)
    for i, level in enumerate(levels):
        if not level:
            continue
        has_text = False
        for j in range(i + 1, len(lines)):
            if levels[j] and levels[j] <= level:
                break
            if not levels[j] and lines[j]:
                has_text = True
                break
        keep[i] = has_text
    out = []
    after_heading = False
    for line, level, k in zip(lines, levels, keep, strict=True):
        if not k:
            continue
        if level:
            title = line[line.index("\x00", 2) + 1 :].strip()
            if title:
                out.extend(["", title])
                after_heading = True
        elif line or not after_heading:  # a heading sits right above its first line
            out.append(line)
            after_heading = False
    return out


_TEMPLATE_NAME = re.compile(r"\{\{\s*([^|{}<>\n]+?)\s*(?:\||\}\})")


def is_disambiguation(title: str, wikitext: str, extra_templates: Iterable[str] = ()) -> bool:
    """A disambiguation page by its templates, `__DISAMBIG__`, or a `(disambiguation)` title."""
    if "__DISAMBIG__" in wikitext or DISAMBIGUATION_TITLE.search(title):
        return True
    names = DISAMBIGUATION_TEMPLATES | {_norm_name(t) for t in extra_templates}
    for m in _TEMPLATE_NAME.finditer(wikitext):
        name = _norm_name(m.group(1))
        if name.startswith("template:") or name.startswith("шаблон:"):
            name = name.partition(":")[2].strip()
        if name in names or name.endswith(" disambiguation"):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Steps


class WikipediaPageFilter(Step):
    """Keeps namespace-0 wikitext articles of the chosen languages; redirects and
    disambiguation pages and other wikis are rejected with their reason (and counted)."""

    name = "wikipedia_filter"

    def __init__(
        self,
        languages: Iterable[str] | None = PAPER_LANGUAGES,
        namespaces: Iterable[int] = (0,),
        disambiguation_templates: Iterable[str] = (),
    ) -> None:
        self.languages = None if languages is None else frozenset(languages)
        self.namespaces = frozenset(namespaces)
        self.disambiguation_templates = tuple(disambiguation_templates)

    def process(self, doc: Document) -> Document | Rejected:
        meta = doc.meta
        dbname = str(meta.get("dbname", ""))
        if dbname and not dbname.endswith("wiki"):
            return self.reject(doc, "not_wikipedia", keep_text=False)
        lang = str(meta.get("lang", ""))
        if self.languages is not None and lang not in self.languages:
            return self.reject(doc, f"lang:{lang or 'unknown'}", keep_text=False)
        if int(meta.get("ns", 0)) not in self.namespaces:
            return self.reject(doc, f"namespace:{meta.get('ns')}", keep_text=False)
        if meta.get("redirect"):
            return self.reject(doc, "redirect", keep_text=False)
        model = meta.get("model") or "wikitext"
        if model != "wikitext":
            return self.reject(doc, f"content_model:{model}", keep_text=False)
        if is_disambiguation(str(meta.get("title", "")), doc.text, self.disambiguation_templates):
            return self.reject(doc, "disambiguation", keep_text=False)
        return doc


class CleanWikitext(Step):
    """Wikitext -> plain text (title first). Output meta: title, lang, url, revision id, timestamp."""

    name = "wikitext"
    _cleaners: dict[str, WikitextCleaner] | None = None

    def __init__(self, min_chars: int = 1) -> None:
        self.min_chars = min_chars

    def cleaner(self, lang: str) -> WikitextCleaner:
        if self._cleaners is None:
            self._cleaners = {}
        if lang not in self._cleaners:
            self._cleaners[lang] = WikitextCleaner(lang)
        return self._cleaners[lang]

    def process(self, doc: Document) -> Document | Rejected | DeadLetter:
        meta = doc.meta
        title = str(meta.get("title", ""))
        try:
            text = self.cleaner(str(meta.get("lang", ""))).clean(doc.text, title)
        except Exception as exc:  # noqa: BLE001 - mwparserfromhell on pathological markup
            self.count("bad_wikitext")
            return DeadLetter(
                file=str(meta.get("file", "")),
                error=f"{type(exc).__name__}: {exc}",
                reason="bad_wikitext",
                record_id=doc.id,
            )
        kept = {
            "title": title,
            "lang": meta.get("lang"),
            "url": meta.get("url"),
            "revision_id": meta.get("revision_id"),
            "timestamp": meta.get("timestamp"),
            "dbname": meta.get("dbname"),
            "page_id": meta.get("page_id"),
            "wikitext_chars": len(doc.text),
        }
        out = Document(doc.id, doc.source, text, kept)
        body = text[len(title) :].strip()
        if len(body) < self.min_chars:
            self.count("empty")
            return Rejected(out, "empty")
        self.count("kept")
        return out


WIKIPEDIA_SCHEMA = DocumentSchema(
    extra=(
        pa.field("title", pa.string()),
        pa.field("lang", pa.string()),
        pa.field("url", pa.string()),
        pa.field("revision_id", pa.int64()),
        pa.field("timestamp", pa.string()),
    )
)
"""The Wikipedia stage's columns: id is `<dbname>/<page id>` (`enwiki/12`)."""
