"""One element of a server-rendered page, found by id, for tests that must look at one part.

A page can hold the same words in several places (the frontend embeds every cause's
words in a JSON block for its script), so "the words are in the page" proves
nothing about the part a person reads. `element(html, "degraded")` gives that part:
its attributes and its text, with tags removed and whitespace collapsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

# Elements with no end tag (HTML's void elements).
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: str

    @property
    def hidden(self) -> bool:
        return "hidden" in self.attrs


class _Finder(HTMLParser):
    def __init__(self, wanted: str) -> None:
        super().__init__(convert_charrefs=True)
        self.wanted = wanted
        self.found: Element | None = None
        self.depth = 0  # open elements inside the wanted one, itself included
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += tag not in VOID
            if tag == "br":
                self.chunks.append(" ")  # a line break separates words as a space does
        elif self.found is None and dict(attrs).get("id") == self.wanted:
            self.found = Element(tag, dict(attrs), "")
            self.depth = 0 if tag in VOID else 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.chunks.append(data)


def element(html: str, element_id: str) -> Element:
    """The element with id ELEMENT_ID; AssertionError when the page has none."""
    finder = _Finder(element_id)
    finder.feed(html)
    finder.close()
    assert finder.found is not None, f'no element with id="{element_id}" in the page'
    finder.found.text = " ".join("".join(finder.chunks).split())
    return finder.found
