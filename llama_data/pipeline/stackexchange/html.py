"""A post's HTML body to text: paragraphs, list items, headings and code blocks keep their lines."""

from __future__ import annotations

from html.parser import HTMLParser


class _HtmlText(HTMLParser):
    """HTML to text lines: paragraphs, list items, headings and code blocks keep their lines."""

    BLOCK = frozenset(
        [
            "p",
            "div",
            "blockquote",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "ul",
            "ol",
            "dl",
            "pre",
            "hr",
        ]
    )
    LINE = frozenset(["tr", "dt", "dd"])
    SKIP = frozenset(("script", "style"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.cur: list[str] = []
        self.pre = 0
        self.skip = 0
        self.lists: list[list[int | str]] = []  # [kind, counter]
        self.indent = ""  # of the current list item's line
        self.pending: tuple[str, str] | None = None  # (indent, marker) of an item not yet written

    # line building
    def _flush(self) -> None:
        if self.cur:
            line = "".join(self.cur)
            if self.pre:
                self.lines.append(line.rstrip())
            else:
                self.lines.append(self.indent + " ".join(line.split()))
            self.cur = []
        self.indent = ""

    def _break(self, blank: bool) -> None:
        self._flush()
        blank = blank and not self.lists  # blocks inside a list item stay tight lines
        if blank and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def _start_item_line(self) -> None:
        """The list marker goes in front of the item's first text, whatever tags come before."""
        if self.pending is not None:
            self.indent, marker = self.pending
            self.cur.append(marker)
            self.pending = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "br":
            self._flush()
        elif tag == "li":
            self._flush()
            marker = "-"
            if self.lists:
                top = self.lists[-1]
                if top[0] == "ol":
                    top[1] = int(top[1]) + 1
                    marker = f"{top[1]}."
            self.pending = ("  " * max(0, len(self.lists) - 1), marker + " ")
        elif tag in ("ul", "ol"):
            self._break(blank=not self.lists)
            self.lists.append([tag, 0])
        elif tag == "pre":
            self._break(blank=True)
            self.pre += 1
        elif tag in self.BLOCK:
            self._break(blank=True)
        elif tag in self.LINE:
            self._flush()
        elif tag in ("td", "th") and self.cur:
            self.cur.append(" | ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.cur.append(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self._flush()
        elif tag == "img":
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._break(blank=not self.lists)
        elif tag == "li":
            self._flush()
        elif tag == "pre":
            self._flush()
            self.pre = max(0, self.pre - 1)
            self._break(blank=True)
        elif tag in self.BLOCK:
            self._break(blank=True)
        elif tag in self.LINE:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            if not self.cur and not data.strip():
                return
            self._start_item_line()
            self.cur.append(data)
            return
        self._start_item_line()
        parts = data.split("\n")
        self.cur.append(parts[0])
        for part in parts[1:]:
            self.lines.append("".join(self.cur).rstrip())
            self.cur = [part]

    def text(self) -> str:
        self._flush()
        lines = self.lines
        while lines and lines[-1] == "":
            lines.pop()
        while lines and lines[0] == "":
            lines.pop(0)
        out: list[str] = []
        for line in lines:
            if line == "" and out and out[-1] == "":
                continue
            out.append(line)
        return "\n".join(out)


class InvalidHtml(ValueError):
    pass


def html_to_text(html: str) -> str:
    """A post body as text; raises InvalidHtml on markup that cannot be read (a cut-off tag)."""
    if "\x00" in html:
        raise InvalidHtml("NUL character in the body")
    parser = _HtmlText()
    parser.feed(html)
    leftover = parser.rawdata
    if leftover.lstrip().startswith("<") and ">" not in leftover:
        raise InvalidHtml(f"unterminated tag at the end: {leftover[:80]!r}")
    parser.close()
    return parser.text()
