"""What `python -m bnviz check LESSON [--seeds …]` reads and prints (the command is in
`bnviz.cli`, which imports this module: imports flow one way).

Anyone can audit a lesson from a shell: the lesson's runs at every seed train in one group (as
the dashboard's lesson page trains them), then it prints each seed's check (held or not, and
what its records show), the figures with one column per seed, and the verdict over the seeds
by `checks.RULE`. Exit codes: 0 the claim holds, 1 it does not (or a run failed), 2 bad input,
130 interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence

from .checks import RULE, Check
from .lessons import LESSONS, Lesson

EXIT_HOLDS, EXIT_DOES_NOT_HOLD = 0, 1
MAX_SEEDS = 20


class AuditError(Exception):
    """Bad input (lesson name, seeds): the CLI prints it as one line, exit 2."""


def training_lessons() -> list[str]:
    return [slug for slug, x in LESSONS.items() if x.trains]


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0,1,2', '100-104' or a mix ('7,13,20-22'): distinct seeds in the order given."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                a, b = int(lo), int(hi)
                if b < a:
                    raise AuditError(f"--seeds {part}: the range must go up, e.g. 100-104")
                seeds += range(a, b + 1)
            else:
                seeds.append(int(part))
        except ValueError:
            raise AuditError(
                f"--seeds {text}: expected seeds such as 0,1,2 or 100-104 (integers ≥ 0)"
            ) from None
    if not seeds:
        raise AuditError("--seeds needs at least one seed, e.g. --seeds 0,1,2")
    if any(not 0 <= s < 2**31 for s in seeds):
        raise AuditError(f"--seeds {text}: seeds are integers in [0, 2147483647]")
    seeds = list(dict.fromkeys(seeds))
    if len(seeds) > MAX_SEEDS:
        raise AuditError(f"--seeds {text}: at most {MAX_SEEDS} seeds at a time")
    return tuple(seeds)


def find_lesson(name: str) -> Lesson:
    lesson = LESSONS.get(name)
    if lesson is None or not lesson.trains:
        known = ", ".join(training_lessons())
        what = "computes on its own page and has no runs to check" if lesson else "is unknown"
        raise AuditError(f"lesson '{name}' {what}: lessons that train are {known}")
    return lesson


def seed_table(result: Check) -> str:
    """The figures with one column per seed (figures that are the same label in every seed)."""
    seeds = [s for s, _ in result.seeds]
    per_seed = [dict(c.figures) for _, c in result.seeds]
    labels = list(dict.fromkeys(label for c in per_seed for label in c))
    head = ["figure", *(f"seed {s}" for s in seeds)]
    rows = [[label, *(c.get(label, "–") for c in per_seed)] for label in labels]
    rows.append(["claim holds", *("yes" if c.passed else "no" for _, c in result.seeds)])
    rows.append(
        ["effect", *(c.effect.text() if c.effect else "–" for _, c in result.seeds)],
    )
    widths = [max(len(r[k]) for r in (head, *rows)) for k in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        rest = (f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:]))
        return "  ".join((first, *rest)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def report(lesson: Lesson, result: Check, seconds: float) -> str:
    """What `check` prints: the lesson, each seed's check, the figures, the verdict."""
    out = [f"{lesson.title} ({lesson.slug}) · {seconds:.1f} s", ""]
    for s, c in result.seeds:
        held = {True: "holds", False: "does not hold", None: "cannot tell"}[c.passed]
        out.append(f"seed {s}: {held} — {c.summary}")
    if result.seeds:
        out += ["", seed_table(result)]
    verdict = {True: "HOLDS", False: "DOES NOT HOLD", None: "CANNOT TELL"}[result.passed]
    out += ["", f"verdict: the claim {verdict}. {result.summary}", f"rule: {RULE}"]
    return "\n".join(out)
