"""The README and docs/ stay true: every image, relative link and #anchor they use exists, every
repository path they name in code exists, the README lists exactly the registry's lessons and
stays a two-minute read, and the make targets it names exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools import lesson_list

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 150
MAX_IMAGE_BYTES = 300_000

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
# Repository paths named in code spans, e.g. `benchmarks/bench_engine.py`, `bnviz/lessons.py`.
REPO_PATH = re.compile(
    r"(?<![\w/.~<-])((?:bnviz|dashboard|views|tests|benchmarks|tools|assets|docs|\.ci|"
    r"\.streamlit)/[\w./<>-]+|app\.py|Makefile)"
)


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (links there are not links)."""
    return CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces → hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for h in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        s = slug(h)
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """Every relative link or image of `path` whose file, or #anchor in it, does not exist."""
    problems = []
    for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            problems.append(f"{path.name}: {target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{path.name}: {target} (no heading #{anchor} in {dest.name})")
    return problems


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_link_and_image_exists(path: Path) -> None:
    assert not broken_links(path), "\n".join(broken_links(path))


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# Here it is\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md#here-it-is) ![gone](img/none.png) [bad](there.md#nowhere) "
        "[web](https://example.org/x.md) `[code](missing.md)`\n",
        encoding="utf-8",
    )
    problems = [p.split(" (")[0] for p in broken_links(page)]
    assert problems == ["page.md: img/none.png", "page.md: there.md#nowhere"]


def test_slugs_follow_github() -> None:
    assert slug("Ioffe & Szegedy's Fig. 1") == "ioffe--szegedys-fig-1"
    assert slug("The run description: `RunConfig`") == "the-run-description-runconfig"
    assert slug("The measures' cost") == "the-measures-cost"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_repository_path_named_exists(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    named = {m.rstrip(".").split("::")[0] for m in REPO_PATH.findall(text)}
    # Patterns (`views/<slug>.py`) and places made at run time are not files of the repository.
    missing = sorted(p for p in named if "<" not in p and "*" not in p and not (ROOT / p).exists())
    assert not missing, f"{path.name} names paths that do not exist: {missing}"


def test_readme_lists_every_lesson_in_order() -> None:
    text = README.read_text(encoding="utf-8")
    assert lesson_list.current(text) == lesson_list.block(), (
        "README.md's lesson list differs from bnviz/lessons.py: run "
        "`python tools/lesson_list.py --write`"
    )


def test_readme_is_short_and_has_its_pictures() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "docs/img/lesson_present.png" in images and "docs/img/train_live.png" in images
    for image in (ROOT / "docs" / "img").glob("*.png"):
        assert image.stat().st_size < MAX_IMAGE_BYTES, image.name


def test_make_targets_named_exist() -> None:
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        named = set(re.findall(r"(?:`|^)make ([a-z][\w-]*)", text, re.M))  # commands, not prose
        assert named <= targets, f"{path.name}: make {sorted(named - targets)}"
