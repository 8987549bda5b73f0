"""`python -m bnviz check LESSON [--seeds …]`: train a lesson at its seeds and print its verdict.

Anyone can audit a lesson from a shell: the lesson's runs at every seed train in one group (as
the dashboard's lesson page trains them), then it prints each seed's check (held or not, and
what its records show), the figures with one column per seed, and the verdict over the seeds
by `checks.RULE`. Exit codes: 0 the claim holds, 1 it does not (or a run failed), 2 bad input,
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from . import cli
from .checks import RULE, Check
from .cli import CLIError
from .lessons import LESSONS, Lesson

EXIT_HOLDS, EXIT_DOES_NOT_HOLD = 0, 1
MAX_SEEDS = 20


class AuditError(CLIError):
    """Bad input (lesson name, seeds): one line, exit 2 (the CLI's own handling)."""


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


def cmd_check(args: argparse.Namespace) -> int:
    lesson = find_lesson(args.lesson)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else lesson.seeds
    configs = lesson.configs(seeds)
    problems = cli.check_group(configs)
    if problems:
        raise AuditError(problems[0])
    from .train import resolve_device, train_group

    device = resolve_device(configs[0].device)
    cli._preflight(configs)
    err = sys.stderr
    line = cli.LineWriter(err, enabled=err.isatty() and not args.quiet)
    progress = cli.TrainProgress(configs, line)
    if not args.quiet:
        n = len(configs)
        err.write(
            f"training {lesson.slug}: {n} runs ({n // len(seeds)} per seed × {len(seeds)} "
            f"seeds: {', '.join(map(str, seeds))}) on {device}\n"
        )
        err.flush()
    start = time.perf_counter()
    with cli.StopFlag(err, args.quiet) as stop:
        try:
            records = train_group(configs, should_stop=stop, on_event=progress, device=device)
        finally:
            line.clear()
    seconds = time.perf_counter() - start
    result = lesson.check(records)
    print(report(lesson, result, seconds))
    if stop.requested:
        return cli.EXIT_INTERRUPTED
    failed = [r for r in records if r.status == "failed"]
    if failed:
        print(f"failed: {failed[0].config.label()}: {failed[0].message}", file=err)
    return EXIT_HOLDS if result.passed and not failed else EXIT_DOES_NOT_HOLD


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The `check` subcommand, on the CLI's subparsers."""
    p = sub.add_parser(
        "check",
        help="train a lesson at several seeds and print its verdict (exit 0: the claim holds)",
        description=(
            "Train a lesson's runs at every seed in one group (seed = data_seed) and print "
            "each seed's check, the figures per seed and the verdict over the seeds. "
            f"{RULE} Exit 0: it holds; 1: it does not; 2: bad input."
        ),
    )
    p.add_argument("lesson", metavar="LESSON", help=f"one of {', '.join(training_lessons())}")
    p.add_argument(
        "--seeds",
        metavar="SEEDS",
        help="seeds to train, e.g. 0,1,2 or 100-104 (default: the lesson's own, "
        f"{','.join(map(str, next(iter(LESSONS.values())).seeds))})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    p.set_defaults(func=cmd_check)
