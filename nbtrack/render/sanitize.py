"""An allow-list HTML sanitiser for what a notebook brings into a report: markdown cells, HTML outputs, snapshots.

    sanitize_html("<p>hi<meta http-equiv=refresh content='0;url=https://x'></p>")  ->  "<p>hi</p>"

A notebook is a file someone may have mailed you, so its HTML may not send the opened report anywhere: only
listed elements and attributes are kept, everything else is dropped (its text kept, except for elements such as
``script``, ``style``, ``iframe`` or ``textarea`` whose content is not text to show). Links keep http(s), mailto,
relative and ``#fragment`` targets, never ``target``; images keep ``data:image/*`` sources; SVG may reference only
its own ``#ids``. The output is re-serialised (every tag closed, every value quoted and escaped), so the browser
parses exactly what was checked. The report's CSP (`nbtrack.reports.sections.CSP`) stays the second line of defence.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_HTML_ELEMENTS = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "address",
        "article",
        "aside",
        "b",
        "bdi",
        "bdo",
        "big",
        "blockquote",
        "br",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "details",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "font",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "i",
        "img",
        "input",
        "ins",
        "kbd",
        "li",
        "main",
        "mark",
        "nav",
        "ol",
        "p",
        "pre",
        "q",
        "rp",
        "rt",
        "ruby",
        "s",
        "samp",
        "section",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "time",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
        "wbr",
    ]
)
# Allowed only inside <svg> (names as HTMLParser gives them: lower case; browsers restore the SVG case).
_SVG_ELEMENTS = frozenset(
    [
        "svg",
        "g",
        "defs",
        "symbol",
        "use",
        "path",
        "rect",
        "circle",
        "ellipse",
        "line",
        "polyline",
        "polygon",
        "text",
        "tspan",
        "textpath",
        "clippath",
        "mask",
        "pattern",
        "marker",
        "lineargradient",
        "radialgradient",
        "stop",
        "image",
        "desc",
        "a",
    ]
)
_VOID = frozenset(["br", "col", "hr", "img", "input", "wbr"])
# Every element HTML gives no end tag: a dropped one has no content to skip.
_ANY_VOID = _VOID | {"area", "base", "embed", "frame", "keygen", "link", "meta", "param", "source", "track"}
# Dropped together with everything inside them: code, styles, frames, form fields, media, metadata.
_DROP_CONTENT = frozenset(
    [
        "script",
        "style",
        "template",
        "noscript",
        "noembed",
        "noframes",
        "xmp",
        "iframe",
        "object",
        "embed",
        "applet",
        "frame",
        "frameset",
        "textarea",
        "select",
        "title",
        "head",
        "foreignobject",
        "metadata",
        "animate",
        "animatemotion",
        "animatetransform",
        "set",
        "video",
        "audio",
        "map",
        "svg:style",
    ]
)
_GLOBAL_ATTRIBUTES = frozenset(
    ["class", "id", "title", "lang", "dir", "style", "align", "valign", "width", "height", "role"]
)
_ATTRIBUTES = {
    "a": {"href", "name", "xlink:href"},
    "img": {"src", "alt"},
    "td": {"colspan", "rowspan", "scope", "headers", "nowrap"},
    "th": {"colspan", "rowspan", "scope", "headers", "nowrap"},
    "ol": {"start", "reversed", "type"},
    "ul": {"type"},
    "li": {"value"},
    "table": {"border", "cellpadding", "cellspacing", "summary"},
    "col": {"span"},
    "colgroup": {"span"},
    "details": {"open"},
    "input": {"type", "checked"},  # always disabled: a report has nothing to submit
    "time": {"datetime"},
    "del": {"datetime"},
    "ins": {"datetime"},
    "font": {"color", "size", "face"},
}
_SVG_ATTRIBUTES = frozenset(
    [
        "viewbox",
        "preserveaspectratio",
        "xmlns",
        "xmlns:xlink",
        "version",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "cx",
        "cy",
        "r",
        "rx",
        "ry",
        "fx",
        "fy",
        "d",
        "points",
        "transform",
        "fill",
        "fill-opacity",
        "fill-rule",
        "stroke",
        "stroke-width",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-dasharray",
        "stroke-dashoffset",
        "stroke-miterlimit",
        "stroke-opacity",
        "opacity",
        "clip-path",
        "clip-rule",
        "clippathunits",
        "mask",
        "maskunits",
        "marker-start",
        "marker-mid",
        "marker-end",
        "markerwidth",
        "markerheight",
        "markerunits",
        "refx",
        "refy",
        "orient",
        "offset",
        "stop-color",
        "stop-opacity",
        "gradientunits",
        "gradienttransform",
        "spreadmethod",
        "patternunits",
        "patterncontentunits",
        "patterntransform",
        "font-family",
        "font-size",
        "font-weight",
        "font-style",
        "font-variant",
        "text-anchor",
        "dominant-baseline",
        "alignment-baseline",
        "baseline-shift",
        "letter-spacing",
        "word-spacing",
        "textlength",
        "lengthadjust",
        "dx",
        "dy",
        "rotate",
        "visibility",
        "display",
        "color",
        "vector-effect",
        "shape-rendering",
        "text-rendering",
        "xml:space",
        "href",
        "xlink:href",
        "startoffset",
    ]
)
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_DATA_IMAGE = re.compile(r"^data:image/(?:png|jpeg|jpg|gif|webp|bmp|svg\+xml)[;,]", re.IGNORECASE)
# CSS (style attributes, SVG paint values) may reference the document's own #ids and nothing else.
_CSS_FORBIDDEN = re.compile(r"expression|@import|behavior|binding|\\|/\*|url\s*\(\s*['\"]?\s*[^'\"#\s]", re.I)
# Style attributes keep these properties only: none of them can lift an element out of the flow over other
# content (no position, transform, float, z-index, overflow; no negative margins), so a link cannot cover the page.
_CSS_PROPERTIES = frozenset(
    [
        "color",
        "background",
        "background-color",
        "font",
        "font-family",
        "font-size",
        "font-style",
        "font-variant",
        "font-weight",
        "text-align",
        "text-decoration",
        "text-transform",
        "vertical-align",
        "white-space",
        "word-break",
        "overflow-wrap",
        "border",
        "border-top",
        "border-right",
        "border-bottom",
        "border-left",
        "border-color",
        "border-style",
        "border-width",
        "border-collapse",
        "border-spacing",
        "border-radius",
        "padding",
        "padding-top",
        "padding-right",
        "padding-bottom",
        "padding-left",
        "margin",
        "margin-top",
        "margin-right",
        "margin-bottom",
        "margin-left",
        "width",
        "height",
        "max-width",
        "max-height",
        "min-width",
        "min-height",
        "display",
        "opacity",
        "list-style",
        "list-style-type",
        "line-height",
        "letter-spacing",
        "word-spacing",
        "text-indent",
        "fill",
        "stroke",
        "stroke-width",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-dasharray",
        "stroke-opacity",
        "fill-opacity",
    ]
)
_NO_NEGATIVE = frozenset(
    ["margin", "margin-top", "margin-right", "margin-bottom", "margin-left", "text-indent", "letter-spacing"]
)
_DISPLAY = frozenset(
    [
        "block",
        "inline",
        "inline-block",
        "none",
        "table",
        "table-row",
        "table-cell",
        "list-item",
        "flex",
        "inline-flex",
    ]
)


def _link(value: str) -> str | None:
    """An href a click may follow: http(s), mailto, relative, #fragment; None for javascript:, data: and the rest."""
    value = re.sub(r"[\t\n\r]", "", value).strip()
    if re.search(r"[\x00-\x1f\x7f]", value):
        return None
    scheme = _SCHEME.match(value)
    return value if scheme is None or scheme[1].lower() in _LINK_SCHEMES else None


def _attribute(tag: str, name: str, value: str, in_svg: bool) -> str | None:
    """The value to keep for attribute `name` of `tag`, or None to drop it."""
    allowed = name in _GLOBAL_ATTRIBUTES or name in _ATTRIBUTES.get(tag, ()) or name.startswith("aria-")
    if in_svg and name in _SVG_ATTRIBUTES:
        allowed = True
    if not allowed:
        return None
    if name in ("href", "xlink:href"):
        if tag == "a":
            return _link(value)
        if tag == "image":
            return value if _DATA_IMAGE.match(value.strip()) else None
        return value if value.strip().startswith("#") else None  # <use>, <textPath>: this SVG's own parts
    if name == "src":
        return value if _DATA_IMAGE.match(value.strip()) else None
    if tag == "input" and name == "type":
        return value if value.lower() in ("checkbox", "radio") else None
    if name == "style":
        return _style(value)
    if "url" in value.lower() and _CSS_FORBIDDEN.search(value):
        return None
    return value


def _style(value: str) -> str | None:
    """A style attribute with only the allowed properties (`_CSS_PROPERTIES`) and safe values left."""
    kept = []
    for declaration in value.split(";"):
        name, colon, setting = declaration.partition(":")
        name, setting = name.strip().lower(), setting.strip()
        if not colon or not setting or name not in _CSS_PROPERTIES or _CSS_FORBIDDEN.search(setting):
            continue
        if (name in _NO_NEGATIVE and "-" in setting) or (
            name == "display" and setting.lower() not in _DISPLAY
        ):
            continue
        kept.append(f"{name}: {setting}")
    return "; ".join(kept) or None


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []  # allowed elements opened and not yet closed
        self.skip: tuple[str, int] | None = None  # inside a dropped element: its name and nesting depth

    def _in_svg(self) -> bool:
        return "svg" in self.open

    def _allowed(self, tag: str) -> bool:
        return tag in _HTML_ELEMENTS if not self._in_svg() else tag in _SVG_ELEMENTS or tag in _HTML_ELEMENTS

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], closed: bool) -> None:
        if self.skip is not None:
            if tag == self.skip[0] and not closed:
                self.skip = (tag, self.skip[1] + 1)
            return
        in_svg = self._in_svg() or tag == "svg"
        dropped = tag in _DROP_CONTENT or (self._in_svg() and f"svg:{tag}" in _DROP_CONTENT)
        if dropped or (self._in_svg() and tag == "style"):
            if not closed and tag not in _ANY_VOID:
                self.skip = (tag, 1)
            return
        if not (self._allowed(tag) or tag == "svg"):
            return  # the tag goes, its text stays
        if tag == "input" and (dict(attrs).get("type") or "").lower() not in ("checkbox", "radio"):
            return
        kept = []
        for name, value in attrs:
            value = _attribute(tag, name, value or "", in_svg)
            if value is not None:
                kept.append(f' {name}="{html.escape(value, quote=True)}"')
        if tag == "a" and any(k.startswith(" href=") for k in kept):
            kept.append(' rel="noopener noreferrer"')
        if tag == "input":
            kept.append(" disabled")
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag in _VOID and not in_svg:
            return
        if closed:
            self.out.append(f"</{tag}>")
        else:
            self.open.append(tag)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, closed=True)

    def handle_endtag(self, tag: str) -> None:
        if self.skip is not None:
            name, depth = self.skip
            if tag == name:
                self.skip = None if depth == 1 else (name, depth - 1)
                return
            if tag not in self.open:
                return
            self.skip = None  # an unclosed dropped element ends with its parent
        if tag not in self.open:
            return
        while self.open:
            closing = self.open.pop()
            self.out.append(f"</{closing}>")
            if closing == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.skip is None:
            self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        self.out.extend(f"</{tag}>" for tag in reversed(self.open))
        self.open = []
        return "".join(self.out)


def sanitize_html(markup: str) -> str:
    """`markup` with only allow-listed elements and attributes left, re-serialised (see the module docstring)."""
    sanitizer = _Sanitizer()
    sanitizer.feed(markup)
    return sanitizer.result()
