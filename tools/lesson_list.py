"""The README's tour: one line per lesson of `bnviz.lessons.LESSONS`, in tour order.

    python tools/lesson_list.py            # print the list
    python tools/lesson_list.py --write    # rewrite it in README.md, between its markers

The README keeps the list between BEGIN and END; tests/test_docs.py fails while it differs
from the registry, so the README never lists a lesson the app lacks (or misses one it has).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bnviz.lessons import LESSONS  # noqa: E402

README = ROOT / "README.md"
BEGIN = "<!-- lessons: made by `python tools/lesson_list.py --write` from bnviz/lessons.py -->"
END = "<!-- /lessons -->"


def lines() -> list[str]:
    """`n. **Title** (`slug`) — teaser`; a lesson with a page of its own is marked (sliders)."""
    return [
        f"{n}. **{x.title}** (`{x.slug}`{', sliders' if x.page else ''}) — {x.teaser}"
        for n, x in enumerate(LESSONS.values(), start=1)
    ]


def block() -> str:
    return "\n".join([BEGIN, *lines(), END])


def current(text: str) -> str | None:
    """The list as the README has it now, markers included; None without both markers."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(END)]


def write(path: Path = README) -> bool:
    """Put the registry's list into the README; whether it changed."""
    text = path.read_text(encoding="utf-8")
    old = current(text)
    if old is None:
        raise SystemExit(f"{path}: the markers {BEGIN!r} … {END!r} are missing")
    if old == block():
        return False
    path.write_text(text.replace(old, block()), encoding="utf-8")
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="rewrite the list in README.md")
    args = p.parse_args()
    if args.write:
        print("README.md updated" if write() else "README.md already lists every lesson")
    else:
        print(block())


if __name__ == "__main__":
    main()
