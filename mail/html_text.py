"""HTML to readable plain text with the standard library's `html.parser` (no BeautifulSoup).

Decisions:
- Block elements (p, div, headings, tables rows, blockquote, ...) start new lines; `<br>` is a line
  break; paragraphs and headings are separated by a blank line.
- List items become "- item" (numbered "1. item" inside `<ol>`).
- Table cells on one row are separated by two spaces, so Thunderbird's forwarded-header table
  ("Subject: | Re: ...") reads as "Subject:  Re: ...".
- A link keeps its URL in parentheses when the URL differs from its text ("pricing
  (https://...)"); mailto: links whose text is the address, "#" anchors, cid: and javascript: URLs
  are not repeated.
- script, style, head, title, template and Outlook's conditional comments are dropped; images
  are dropped (their alt text is usually a logo name).
- Entities are decoded (`convert_charrefs`); runs of whitespace collapse to one space (inside
  `<pre>` line breaks are kept); at most one blank line in a row; lines are stripped.

The standard library on purpose: inscriptis 2.7 (issue 16), given the same line stripping, failed
3 of the HTML tests in tests/test_inbox_parse.py: links come out as "[text](url)" and repeat mailto:
addresses, list items as "* item". It is faster (7 ms against 83 ms for 250 KB of HTML), which a
mail body's size does not need.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {
    "address", "article", "aside", "blockquote", "center", "dd", "details", "dialog", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li", "main", "nav", "ol", "pre",
    "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul", "caption",
}
_PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}
_DROP = {"script", "style", "head", "title", "template", "noscript", "object", "svg"}
_CELL = {"td", "th"}
# Block boundaries are markers, resolved at the end, so that whitespace between tags and nested
# blocks do not pile up blank lines; "\n" in the output is a real line break (<br>, <pre>).
_NEWLINE = "\x00"
_PARA_BREAK = "\x01"
_RUN = re.compile(r"[ \t\n]*[\x00\x01][\x00\x01\s]*")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._drop_depth = 0
        self._pre_depth = 0
        self._links: list[tuple[str, int]] = []  # (href, index in out where the link text starts)
        self._lists: list[list[int]] = []  # per open list: [counter] (-1 for <ul>)
        self._cells_in_row = 0

    # -- tags ------------------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self._drop_depth += 1
            return
        if self._drop_depth:
            return
        if tag == "br":
            self.out.append("\n")
        elif tag in _PARAGRAPH:
            self.out.append(_PARA_BREAK)
        elif tag in ("ul", "ol"):
            self._lists.append([0 if tag == "ol" else -1])
            self.out.append(_NEWLINE)
        elif tag == "li":
            self.out.append(_NEWLINE + self._bullet())
        elif tag == "tr":
            self._cells_in_row = 0
            self.out.append(_NEWLINE)
        elif tag in _CELL:
            if self._cells_in_row:
                self.out.append("  ")
            self._cells_in_row += 1
        elif tag in _BLOCK:
            self.out.append(_NEWLINE)
        if tag == "pre":
            self._pre_depth += 1
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self.out)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr", "img"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self._drop_depth = max(0, self._drop_depth - 1)
            return
        if self._drop_depth:
            return
        if tag in _PARAGRAPH:
            self.out.append(_PARA_BREAK)
        elif tag in ("ul", "ol"):
            if self._lists:
                self._lists.pop()
            self.out.append(_NEWLINE)
        elif tag in _BLOCK:
            self.out.append(_NEWLINE)
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
        elif tag == "a" and self._links:
            self._close_link(*self._links.pop())

    def handle_data(self, data: str) -> None:
        if self._drop_depth:
            return
        if self._pre_depth:
            self.out.append(data)
        else:
            self.out.append(re.sub(r"\s+", " ", data))

    # -- helpers ---------------------------------------------------------------------------------
    def _bullet(self) -> str:
        if not self._lists or self._lists[-1][0] < 0:
            return "- "
        self._lists[-1][0] += 1
        return f"{self._lists[-1][0]}. "

    def _close_link(self, href: str, start: int) -> None:
        href = href.strip()
        text = " ".join(re.sub(r"[\x00\x01]", " ", "".join(self.out[start:])).split())
        if not href or href.startswith(("#", "cid:", "javascript:")):
            return
        shown = href.removeprefix("mailto:").split("?")[0] if href.startswith("mailto:") else href
        if _same(shown, text):
            return
        self.out.append(f" ({shown})")


def _same(url: str, text: str) -> bool:
    def norm(s: str) -> str:
        return re.sub(r"^(https?://)?(www\.)?", "", s.strip().lower()).rstrip("/")

    return norm(url) == norm(text)


def _resolve(run: str) -> str:
    """A run of block markers and whitespace -> one line break, or a blank line.

    A <br> right before a block's end adds nothing (as in a browser); a <br> alone in a block
    (Gmail's <div><br></div>) is an empty line; a paragraph or heading boundary is a blank line."""
    first_marker = min(i for i in (run.find(_NEWLINE), run.find(_PARA_BREAK)) if i >= 0)
    breaks = max(1, run[:first_marker].count("\n")) + run[first_marker:].count("\n")
    if _PARA_BREAK in run:
        breaks = max(breaks, 2)
    return "\n" * min(breaks, 2)


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    text = _RUN.sub(lambda match: _resolve(match.group(0)), text)
    lines = [re.sub(r"[ \t\f\v]+", " ", line).strip() for line in text.split("\n")]
    tidy = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return tidy.strip()


def html_to_text(html: str) -> str:
    """Readable text from an HTML document or fragment. Never raises on bad markup."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001  (html.parser is lenient; this is a last resort)
        return _tidy(re.sub(r"<[^>]*>", " ", html))
    return _tidy("".join(parser.out))
