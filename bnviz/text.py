"""User-supplied text (link values, group names, file contents) made safe to show.

Streamlit renders alert and markdown bodies as Markdown (links, images, `:red[...]`
directives, LaTeX, autolinked addresses) and Plotly renders a subset of HTML in labels
(`<a href>` is clickable). What a link or a stored file says must reach the page as the
characters it holds, never as markup.
"""

from __future__ import annotations

import html
import re

# What makes Markdown active: link and image brackets, HTML and <autolinks>, code, LaTeX,
# `:red[...]` directives (their brackets). Bare autolinks (`http://`, `www.`, `a@b.c`) ignore
# backslashes (seen in Chromium): a zero-width space breaks them, invisibly.
# Emphasis (*, _) and lone ':' '(' '!' only format or mean nothing: left as they are, so
# messages such as "batch_size=x: ..." read as typed.
_MD_ACTIVE = re.compile(r"([\\`\[\]<>$])")
ZWSP = "\u200b"


def plain_markdown(text: object, most: int = 500) -> str:
    """`text` for a Markdown body, shown as the characters it holds: one line, at most `most`
    characters, every character that could make a link, image, HTML or LaTeX escaped."""
    s = " ".join(str(text).split())  # no new blocks (headings, lists) from line breaks
    if len(s) > most:
        s = s[: most - 1] + "…"
    s = _MD_ACTIVE.sub(r"\\\1", s).replace("://", f":{ZWSP}//").replace("@", f"{ZWSP}@")
    return re.sub(r"(?i)(www)\.", rf"\1{ZWSP}.", s)


def plain_label(text: object, most: int = 120) -> str:
    """`text` for a Plotly label (trace name, title): its HTML subset shown as characters."""
    s = " ".join(str(text).split())
    if len(s) > most:
        s = s[: most - 1] + "…"
    return html.escape(s, quote=False)
