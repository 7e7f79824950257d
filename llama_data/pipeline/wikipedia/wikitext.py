"""Wikitext to plain text with mwparserfromhell, and the page filter in front of it.

The parser gives a tree (links, templates, tags, headings ...), so each construct is handled by
what it is rather than by what a regex guesses: a link becomes its anchor text, a file, category
or interlanguage link disappears (namespace names from the dump's <siteinfo>), an external link
keeps only its label and a bare URL goes, a template is dropped whole even when it spans lines or
nests, and an entity is decoded where it stands in the tree, as text. Regexes only tidy what
markup leaves behind (bold/italic quotes, `__MAGIC__` words, stray brackets of broken markup,
spacing); characters that are text rather than markup (decoded entities, <nowiki>) are shielded
from them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from html.entities import html5

import mwparserfromhell
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

from llama_data.pipeline.document import DeadLetter, Document, Rejected
from llama_data.pipeline.steps import Step
from llama_data.pipeline.wikipedia.config import PAPER_WIKIPEDIA_LANGUAGES
from llama_data.pipeline.wikipedia.languages import WIKIPEDIA_LANGUAGE_CODES

# The 20 languages of LLaMA's Wikipedia (Touvron et al. 2023, §2.1); one list, in config.
PAPER_LANGUAGES: tuple[str, ...] = PAPER_WIKIPEDIA_LANGUAGES

# Namespace names. A dump's own names come from its <siteinfo> (`-2` Media, `6` File, `14`
# Category: see `namespace_names`); MediaWiki's canonical English names work on every wiki. The
# tables below add what a dump does not carry: the aliases each wiki also accepts (`Image:`,
# `Bild:`, `Зображення:` ...), and the names of other wikis, needed for inline interlanguage
# links such as `[[:de:Kategorie:X]]`.
CANONICAL_FILE = ("file", "image")
CANONICAL_MEDIA = ("media",)
CANONICAL_CATEGORY = ("category",)
FILE_NAMESPACES: dict[str, tuple[str, ...]] = {
    "bg": ("файл", "картинка"),
    "ca": ("fitxer", "imatge", "arxiu"),
    "cs": ("soubor", "obrázek"),
    "da": ("fil", "billede"),
    "de": ("datei", "bild"),
    "es": ("archivo", "imagen"),
    "fr": ("fichier", "image"),
    "hr": ("datoteka", "slika"),
    "hu": ("fájl", "kép"),
    "it": ("file", "immagine"),
    "ja": ("ファイル", "画像"),
    "nl": ("bestand", "afbeelding"),
    "pl": ("plik", "grafika"),
    "pt": ("ficheiro", "arquivo", "imagem"),
    "ro": ("fișier", "fişier", "imagine"),
    "ru": ("файл", "изображение"),
    "sl": ("slika", "datoteka"),
    "sr": ("датотека", "слика", "datoteka", "slika"),
    "sv": ("fil", "bild"),
    "uk": ("файл", "зображення"),
}
MEDIA_NAMESPACES: dict[str, tuple[str, ...]] = {
    "bg": ("медия",),
    "ca": ("multimèdia",),
    "cs": ("média",),
    "da": ("medie",),
    "de": ("medium",),
    "es": ("medio",),
    "fr": ("média",),
    "hr": ("mediji",),
    "hu": ("média",),
    "ja": ("メディア",),
    "pt": ("multimédia",),
    "ru": ("медиа",),
    "sr": ("медиј", "medij"),
    "uk": ("медіа",),
}
CATEGORY_NAMESPACES: dict[str, tuple[str, ...]] = {
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
# Characters that are literal text, not markup: those decoded from an entity (`&#91;&#91;`,
# `&lt;ref&gt;`) or written inside <nowiki>. They ride through the tidying regexes as C0 controls
# that XML 1.0 forbids in a dump (so never in real wikitext, nor whitespace to str.split) and are
# turned back at the very end: a decoded `&lt;ref&gt;` stays the text "<ref>", it never becomes a
# tag that the tidying would then remove.
_LITERAL = "'_<>{}[]|"
_SHIELD = "\x04\x05\x06\x07\x08\x0e\x0f\x10\x11"
_PROTECT = str.maketrans(_LITERAL, _SHIELD)
_UNPROTECT = str.maketrans(_SHIELD, _LITERAL)
_SHIELDED = re.compile(f"[{_SHIELD}]")
# C0 controls other than tab/LF/CR: invalid in XML, so absent from dumps; removed from any other
# input so that they cannot be taken for the markers above.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
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
# An entity mwparserfromhell leaves as text: HTML5 names outside its HTML 4 table (`&apos;`),
# and numeric references to invalid code points (`&#0;`).
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")
# A URL written as text: what MediaWiki turns into a free external link (any scheme of
# $wgUrlProtocols that takes `//`, plus mailto:), up to whitespace or a character a URL cannot hold.
_URL = re.compile(
    r"(?i)\b(?:(?:https?|ftps?|sftp|git|gopher|irc|ircs|mms|nntp|redis|ssh|svn|telnet|worldwind)"
    r"://|mailto:)[^\s\[\]<>\"{}|\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]*"
)
# Where MediaWiki ends the URL of a bracketed link: a Unicode space separator (mwparserfromhell
# only splits at ASCII whitespace), or an escaped `<`/`>`.
_URL_END = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]|&(?:lt|gt);")


# The Document meta key under which the reader passes a dump's <siteinfo> namespace table
# (key -> local name) to the cleaner; the cleaned document no longer carries it.
SITE_NAMESPACES = "namespaces"


def _norm_name(name: str) -> str:
    return name.replace("_", " ").strip().casefold()


def decode_entity(entity: str) -> str:
    """One character reference (`&nbsp;`, `&#160;`, `&#xA0;`) as the text it renders.

    Named references use the HTML5 table (which MediaWiki's sanitizer accepts), numeric ones
    Python's HTML5 rules; an unknown name stays as written, as MediaWiki shows it. The whitespace
    controls become a space, an invalid code point nothing; a no-break space stays U+00A0 until
    `clean` makes every one an ordinary space. The result is shielded (see `_LITERAL`).
    """
    if entity[1] != "#":
        text = html5.get(entity[1:])  # the whole name: html.unescape would also read `&notit;`
        if text is None:
            return entity.translate(_PROTECT)  # `&foo;`: not an entity, shown as written
    else:
        text = html.unescape(entity)
        digits = entity[2:-1]
        code_point = int(digits[1:], 16) if digits[0] in "xX" else int(digits)
        if text == "\ufffd" and code_point != 0xFFFD:
            return ""  # `&#0;`, a surrogate, beyond U+10FFFF
    if text in ("\t", "\n", "\r"):
        return " "
    return _CONTROLS.sub("", text).translate(_PROTECT)


def _decode_text(text: str) -> str:
    """Entities mwparserfromhell left in a text node, decoded."""
    return _ENTITY.sub(lambda m: decode_entity(m.group(0)), text) if "&" in text else text


def namespace_names(namespaces: Mapping[int | str, str] | None, key: int) -> tuple[str, ...]:
    """The normalized name of namespace `key` in a dump's <siteinfo> (keys may be JSON strings)."""
    if not namespaces:
        return ()
    name = namespaces.get(key, namespaces.get(str(key)))  # type: ignore[call-overload]
    return (_norm_name(name),) if name else ()


class WikitextCleaner:
    """Renders a page's wikitext as plain text for one wiki (namespace names differ).

    `namespaces` is the dump's <siteinfo> namespace table (key -> local name): file, media and
    category links are recognized under those names, MediaWiki's canonical English ones, and the
    known aliases of `lang`; `[[xx:...]]` is an interlanguage link when `xx` is a Wikipedia
    language code and not one of those namespaces.
    """

    def __init__(self, lang: str = "en", namespaces: Mapping[int | str, str] | None = None) -> None:
        self.lang = lang
        self._pre: list[str] = []
        ns = namespaces
        self.file_ns = frozenset(
            (*CANONICAL_FILE, *FILE_NAMESPACES.get(lang, ()), *namespace_names(ns, 6))
        )
        self.media_ns = frozenset(
            (*CANONICAL_MEDIA, *MEDIA_NAMESPACES.get(lang, ()), *namespace_names(ns, -2))
        )
        self.category_ns = frozenset(
            (*CANONICAL_CATEGORY, *CATEGORY_NAMESPACES.get(lang, ()), *namespace_names(ns, 14))
        )
        local = {_norm_name(n) for n in (namespaces or {}).values() if n}
        local |= self.file_ns | self.media_ns | self.category_ns
        self.language_prefixes = WIKIPEDIA_LANGUAGE_CODES - local

    def clean(self, wikitext: str, title: str = "") -> str:
        """Title as the first line, then the article's prose, headings and list items as lines."""
        if _CONTROLS.search(wikitext):
            wikitext = _CONTROLS.sub("", wikitext)
        code = mwparserfromhell.parse(wikitext, skip_style_tags=True)
        out: list[str] = []
        self._pre = []
        self._render(code, out)
        body = _tidy("".join(out))
        if "\u00a0" in body:  # one spelling of a space in prose (code blocks are kept as written)
            body = body.replace("\u00a0", " ")
        if self._pre:
            body = _PRE_SLOT.sub(lambda m: self._pre[int(m.group(1))], body)
        if _SHIELDED.search(body):  # str.translate walks every character: only when needed
            body = body.translate(_UNPROTECT)
        if title:
            return f"{title}\n\n{body}" if body else title
        return body

    # -- tree walk -----------------------------------------------------------------------------

    def _render(self, code: Wikicode | Iterable, out: list[str]) -> None:
        nodes = code.nodes if isinstance(code, Wikicode) else code
        for node in nodes:
            if isinstance(node, Text):
                value = node.value
                out.append(_decode_text(value) if "&" in value else value)
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
                if node.brackets:  # [url label] shows the label, [url] nothing
                    self._external_label(node, out)
                # a free URL in the text is a hyperlink too: removed
            elif isinstance(node, HTMLEntity):
                out.append(decode_entity(str(node)))
            elif isinstance(node, Comment | Argument):
                continue
            else:  # unknown node types: their visible text
                out.append(str(node))

    def _external_label(self, node: ExternalLink, out: list[str]) -> None:
        url = str(node.url)
        end = _URL_END.search(url)
        if end:  # [http://x.org\u00a0label]: MediaWiki ends the URL at any space separator
            rest = url[end.end() :] if end.group(0)[0] != "&" else url[end.start() :]
            out.append(_decode_text(rest))
            if node.title is not None:
                out.append(" ")
        if node.title is not None:
            self._render(node.title, out)

    def _link_kind(self, target: str, lang: str = "") -> tuple[str, str]:
        """("file" | "media" | "category" | "language" | "", the rest after the prefix).

        `lang` names another wiki (the target of an inline interlanguage link): its namespace
        names are MediaWiki's canonical ones plus the known aliases of that language.
        """
        prefix, sep, rest = target.partition(":")
        if not sep:
            return "", target
        p = _norm_name(prefix)
        if not lang:
            if p in self.file_ns:
                return "file", rest
            if p in self.media_ns:
                return "media", rest
            if p in self.category_ns:
                return "category", rest
            if p in self.language_prefixes:
                return "language", rest
            return "", target
        if p in CANONICAL_FILE or p in FILE_NAMESPACES.get(lang, ()):
            return "file", rest
        if p in CANONICAL_MEDIA or p in MEDIA_NAMESPACES.get(lang, ()):
            return "media", rest
        if p in CANONICAL_CATEGORY or p in CATEGORY_NAMESPACES.get(lang, ()):
            return "category", rest
        return "", target

    def _link(self, node: Wikilink, out: list[str]) -> None:
        inner: list[str] = []
        self._render(node.title, inner)
        target = "".join(inner).strip()
        colon = target.startswith(":")
        if colon:
            target = target[1:].lstrip()
        kind, rest = self._link_kind(target)
        if kind and not colon and kind != "media":
            return  # an image, the page's categories, an interlanguage link: not in the text
        lang = ""
        if kind == "language":  # [[:fr:Page]], [[:de:Kategorie:X]]: a page of another wiki
            lang = _norm_name(target.partition(":")[0])
            target = rest.strip()
            kind, rest = self._link_kind(target, lang)
        label = None
        if node.text is not None:
            inner = []
            self._render(node.text, inner)
            label = "".join(inner)
            if label.strip():
                if lang or kind == "category":  # [[:Category:X|Category:X]] shows X
                    label = self._strip_prefixes(label.strip(), lang)
                out.append(label)
                return
        # No label: the link shows its target, without the namespace or language prefix
        # ([[:Category:X]] shows the category name X); a file or media link shows nothing.
        if kind in ("file", "media"):
            return
        if kind:
            target = rest.strip()
        if label is not None:  # pipe trick: [[Paris (band)|]] shows "Paris"
            target = re.sub(r"\s*\([^)]*\)$", "", target.partition("#")[0])
        out.append(target.lstrip("#") if target.startswith("#") else target)

    def _strip_prefixes(self, label: str, lang: str) -> str:
        """A label that repeats its link's language or category prefix, without it."""
        kind, rest = self._link_kind(label)
        if kind == "language":
            lang, label = _norm_name(label.partition(":")[0]), rest.strip()
            kind, rest = self._link_kind(label, lang)
        elif lang and not kind:
            kind, rest = self._link_kind(label, lang)
        return rest.strip() if kind == "category" else label

    def _template(self, node: Template, out: list[str]) -> None:
        name = _norm_name(str(node.name))
        if name in LITERAL_TEMPLATES:  # {{'}} is an apostrophe, never half of a '' quote
            out.append(LITERAL_TEMPLATES[name].translate(_PROTECT))
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
        if tag == "nowiki":  # literal text (entities still render); a URL in it is removed
            out.append(_literal(node.contents, drop_urls=True))
            return
        block = tag in BLOCK_TAGS or tag in LINE_TAGS
        if block:
            out.append(f"\n{_BREAK}")
        if tag in ("pre", "syntaxhighlight", "source"):
            # Code keeps its exact lines: a placeholder rides through the tidying regexes. <pre>
            # renders entities (MediaWiki escapes only its tags); a highlighter shows them as typed.
            code = str(node.contents) if tag != "pre" else _literal(node.contents)
            code = code.strip("\n")
            self._pre.append(code)
            out.append(f"\n{_PRE}{len(self._pre) - 1}{_PRE}\n")
        else:
            self._render(node.contents, out)
        if block:
            out.append(f"\n{_BREAK}")


def _literal(code: Wikicode, drop_urls: bool = False) -> str:
    """The text of <nowiki> or <pre> contents: entities decoded, markup characters shielded."""
    parts: list[str] = []
    for node in code.nodes:
        if isinstance(node, HTMLEntity):
            parts.append(decode_entity(str(node)))
            continue
        text = str(node)
        if drop_urls and ":" in text:
            text = _URL.sub("", text)
        parts.append(_decode_text(text).translate(_PROTECT))
    return "".join(parts)


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

    def reject(self, doc: Document, reason: str, keep_text: bool = True) -> Rejected:
        """As Step.reject, without the reader's namespace table (for the cleaner, not `rejected/`)."""
        out = super().reject(doc, reason, keep_text)
        if SITE_NAMESPACES in out.doc.meta:
            meta = {k: v for k, v in out.doc.meta.items() if k != SITE_NAMESPACES}
            out = Rejected(Document(doc.id, doc.source, out.doc.text, meta), reason)
        return out

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
    _cleaners: dict[tuple, WikitextCleaner] | None = None

    def __init__(self, min_chars: int = 1) -> None:
        self.min_chars = min_chars

    def cleaner(
        self, lang: str, namespaces: Mapping[int | str, str] | None = None
    ) -> WikitextCleaner:
        """One cleaner per wiki: its language and its dump's <siteinfo> namespace names."""
        if self._cleaners is None:
            self._cleaners = {}
        key = (lang, frozenset(namespaces.items()) if namespaces else None)
        if key not in self._cleaners:
            self._cleaners[key] = WikitextCleaner(lang, namespaces)
        return self._cleaners[key]

    def process(self, doc: Document) -> Document | Rejected | DeadLetter:
        meta = doc.meta
        title = str(meta.get("title", ""))
        try:
            cleaner = self.cleaner(str(meta.get("lang", "")), meta.get(SITE_NAMESPACES))
            text = cleaner.clean(doc.text, title)
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
