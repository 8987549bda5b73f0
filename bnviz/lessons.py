"""The lessons: every claim of the lectures as one preset, one text, its charts and its check —
or, for BN's mechanics, one page that computes what it shows.

One registry (`LESSONS`, in the lectures' order, which is the tour's order: the mechanics first,
as every lecture begins with them). A lesson is data: its text is `assets/lessons/<slug>.md`.
A lesson that trains has its runs in `config.PRESETS[preset]` (the same name works with
`python -m bnviz train --preset NAME`), trained at each of its `seeds` in one group
(`Lesson.configs`); its charts are names of views the lesson page draws (`CHARTS`), and the
effect it documents is `checks.CHECKS[slug]`, a function of one seed's records that says what
they show and returns its `Effect`; `Lesson.check` judges it over the seeds
(`checks.over_seeds`, `checks.RULE`; `python -m bnviz check SLUG` from a shell;
docs/lessons.md). A lesson with a page of its own (`page`: `views/<page>.py`, e.g. BN step by
step) has no preset: the page computes on the spot with `bnviz.mechanics`, `pitfalls` and
`surface`. A new lesson = one markdown file + one entry here (and its check — with its control
arm in tests/test_checks.py's CONTROLS — or its page).
No streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import checks
from .config import PRESETS, Preset, RunConfig

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "lessons"
# The seeds a lesson trains by default (seed = data_seed: weights, data order and split).
# Thresholds were calibrated on seeds 100–104 and confirmed on 7, 13, 21 (docs/lessons.md).
SEEDS: tuple[int, ...] = (0, 1, 2)
MORE_SEEDS = 2  # seeds the page's "More seeds" adds each time

# The lecture transcripts in shared/reference/, by number.
LECTURES: dict[str, str] = {  # named as the transcripts name themselves
    "000": "STAT 453 (U. Wisconsin) L11.4 “Why BatchNorm works”",
    "001": "Bernhard Kainz, Deep Learning — BatchNorm",
    "002": "Lecture notes “Batch Normalization”",
    "003": "Lecture 003: BN and the shape of the error surface",
    "004": "C2W3L06 “Why does Batch Norm work?”",
}

# Views a lesson page can draw from its runs' records (the page maps each to a chart):
CHARTS: dict[str, str] = {
    "acc": "test (solid) and train (dotted) accuracy of every run over training",
    "loss": "the same for the loss",
    "sweep": "final and best test accuracy against the varied field, one line per norm",
    "bands": "15/50/85th percentiles of the last hidden layer's activation input over training",
    "saturation": "share of saturated (sigmoid/tanh) or dead (ReLU) units per layer",
    "gap": "train − test accuracy of every run at its last record",
    # the measures' views (config.measures; dashboard/live.MEASURE_VIEWS draws them)
    "units": "one unit of the last hidden layer: its own distribution over training, per run",
    "ics": "internal covariate shift ‖G − G′‖/‖G‖ per layer over training",
    "landscape": "loss and gradient change along the gradient (bands over η), β-smoothness",
    "slice": "the loss on a 2-D slice around the final weights, per run",
    "grad_depth": "each layer's gradient norm ‖∇W‖ at the first step, against depth, per run",
    "gamma": "the norms' γ (weight), mean over each hidden layer's units, over training",
    "beta": "the norms' β (bias), mean over each hidden layer's units, over training",
}


@dataclass(frozen=True)
class Lesson:
    """One claim of the lectures, made runnable."""

    slug: str  # URL path, file name of the text, key of the check
    title: str  # short, fits one line on a projector
    teaser: str  # one sentence for the tour's overview
    lectures: tuple[str, ...]  # keys of LECTURES
    papers: tuple[str, ...]  # e.g. "Ioffe & Szegedy 2015"
    preset: str  # key of config.PRESETS ("" for a lesson that computes instead of trains)
    charts: tuple[str, ...]  # keys of CHARTS, drawn in this order after the status line
    # A page of its own, views/<page>.py, for lessons that compute on the spot (BN's
    # mechanics: sliders over one batch) rather than train a preset; "" = the standard
    # lesson page (text, Run this experiment, the charts, what the records show).
    page: str = ""
    seeds: tuple[int, ...] = SEEDS  # trained by "Run this experiment", all in one group

    @property
    def runs(self) -> Preset:
        return PRESETS[self.preset]

    @property
    def trains(self) -> bool:
        """Whether the lesson trains a preset (else its own page computes what it shows)."""
        return bool(self.preset)

    def text(self) -> str:
        """The lesson's markdown (claim, what to look for, at this scale)."""
        path = ASSETS / f"{self.slug}.md"
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            return f"*The text of this lesson is missing ({path.name}).*"

    def sources(self) -> str:
        """Papers and lectures, for the line under the title."""
        lectures = "; ".join(LECTURES[k] for k in self.lectures)
        return f"{', '.join(self.papers)} · lectures: {lectures}"

    def configs(self, seeds: Sequence[int] | None = None) -> list[RunConfig]:
        """The lesson's runs at each seed (default: its own), seed-major, for one group."""
        return self.runs.seeded(self.seeds if seeds is None else seeds)

    def check(self, records: Sequence[Any]) -> checks.Check:
        """What the records show about this lesson's claim over their seeds (`checks.RULE`):
        passed or not, the effect as mean ± spread, each seed's own check in `.seeds`."""
        return checks.over_seeds(checks.CHECKS[self.slug], records)


def _l(slug: str, title: str, teaser: str, lectures: str, papers: str, charts: str) -> Lesson:
    return Lesson(
        slug,
        title,
        teaser,
        tuple(lectures.split()),
        tuple(p.strip() for p in papers.split(";")),
        slug,
        tuple(charts.split()),
    )


def _page(slug: str, title: str, teaser: str, lectures: str, papers: str) -> Lesson:
    """A lesson that computes on its own page, views/<slug>.py (no preset, no charts)."""
    return Lesson(
        slug,
        title,
        teaser,
        tuple(lectures.split()),
        tuple(p.strip() for p in papers.split(";")),
        "",
        (),
        page=slug,
    )


LESSONS: dict[str, Lesson] = {
    lesson.slug: lesson
    for lesson in (
        # BN's mechanics first, as in every lecture; the error surface opens 003 and 004.
        _page(
            "error_surface",
            "Feature scaling: a round error surface",
            "Two weights, inputs on scales 1 and s: gradient descent zig-zags on the stretched "
            "surface and goes straight on the round one.",
            "003 004",
            "LeCun et al. 1998, Efficient BackProp",
        ),
        _l(
            "feature_scaling",
            "Badly scaled inputs in a real net",
            "Every other pixel ×1,000: the plain net diverges at lr 0.1; with BN it trains.",
            "003 004",
            "LeCun et al. 1998, Efficient BackProp; Ioffe & Szegedy 2015",
            "acc loss",
        ),
        _page(
            "bn_step_by_step",
            "BN step by step",
            "Alg. 1 on a real batch of digits: μ_B, σ²_B, x̂ and y per unit; γ and β undo it; "
            "one sample moves all the others.",
            "001 002 003 004",
            "Ioffe & Szegedy 2015, Alg. 1",
        ),
        _page(
            "whitening",
            "Whitening vs per-feature standardization",
            "Two correlated features: BN standardizes each on its own and leaves them "
            "correlated; full whitening decorrelates them, at a price.",
            "002",
            "LeCun et al. 1998, Efficient BackProp; Ioffe & Szegedy 2015, §2–3",
        ),
        _page(
            "bn_inference",
            "Inference: running statistics",
            "Alg. 2: running averages with momentum 0.1, 0.01 and None, the m/(m−1) factor, and "
            "eval-mode BN folded into one affine map.",
            "001 002 003",
            "Ioffe & Szegedy 2015, Alg. 2",
        ),
        _page(
            "train_vs_eval",
            "Train mode vs eval mode",
            "A trained BN net scored with batch statistics: fine on 256, worse on 8, chance on "
            "1 or on class-sorted batches.",
            "001 002 003 004",
            "Ioffe & Szegedy 2015, §3.1",
        ),
        _l(
            "faster",
            "BN trains faster",
            "The same ReLU net with and without BN: BN gets to 90 % and 95 % in fewer steps.",
            "000 003 004",
            "Ioffe & Szegedy 2015",
            "acc loss",
        ),
        _l(
            "ioffe_fig1",
            "Sigmoid nets become trainable",
            "Ioffe & Szegedy's Fig. 1 at small scale: in 20 epochs a 3×100 sigmoid net learns "
            "only with BN; without it, it sits on a plateau at chance.",
            "002 003",
            "Ioffe & Szegedy 2015, Fig. 1",
            "acc bands",
        ),
        _l(
            "sigmoid_plateau",
            "The plateau: train longer",
            "The same two sigmoid nets for 150 epochs: the plain one does learn, after some 40× "
            "as many steps as BN.",
            "003",
            "Ioffe & Szegedy 2015, Fig. 1",
            "acc loss",
        ),
        _l(
            "saturation",
            "Saturating activations",
            "A large init pushes sigmoid units to their flat ends; BN keeps them in range.",
            "002 003",
            "Ioffe & Szegedy 2015, §3.3",
            "acc saturation",
        ),
        _l(
            "lr_ladder",
            "Much larger learning rates",
            "A ladder of learning rates: without BN the top rungs break, with BN they train.",
            "000 002 003",
            "Ioffe & Szegedy 2015; Santurkar et al. 2018, Fig. 1; Bjorck et al. 2018",
            "sweep acc",
        ),
        _l(
            "init_scale",
            "Less sensitive to initialization",
            "Initial weights 100× apart: BN trains at every scale, the plain net does not.",
            "002",
            "Ioffe & Szegedy 2015; cs231n BatchNorm notebook",
            "sweep acc",
        ),
        _l(
            "batch_size",
            "Small batches hurt BN",
            "Batch sizes from 2 up: BN's statistics get noisy, per-sample norms do not care.",
            "000 001 003",
            "Wu & He 2018, Fig. 1",
            "sweep acc",
        ),
        _l(
            "placement",
            "Before or after the activation",
            "BN before the non-linearity, as in the paper, or after it: little changes here.",
            "000 002 003",
            "Ioffe & Szegedy 2015; caffenet-benchmark",
            "acc bands",
        ),
        _l(
            "regularization",
            "A little regularization, like dropout",
            "On a small training set: BN's effect on test accuracy is slight, next to the "
            "train–test gaps of none, BN, dropout and both.",
            "001 002 004",
            "Ioffe & Szegedy 2015, §3.4",
            "gap acc",
        ),
        # Why does BN work? Every lecture ends on it (Santurkar et al. 2018 and after).
        _l(
            "noisy_bn",
            "Noisy BN: shifting distributions still train",
            "Noise whose mean and scale change every step, added after each BN: the units' "
            "distributions wander, the net trains like BN.",
            "000 001 002 003",
            "Santurkar et al. 2018, §2.1",
            "acc units",
        ),
        _l(
            "ics",
            "Does BN reduce internal covariate shift?",
            "Santurkar et al.'s measure per layer — how much a layer's gradient changes once the "
            "layers before it have stepped — with and without BN, on raw and standardized inputs.",
            "000 001 003 004",
            "Ioffe & Szegedy 2015; Santurkar et al. 2018, §2.2",
            "ics acc",
        ),
        _l(
            "landscape",
            "A smoother loss landscape?",
            "Along each step's gradient: how much the loss and the gradient change, with and "
            "without BN, on raw and standardized inputs, and a 2-D slice of the loss at the end.",
            "000 002 003",
            "Santurkar et al. 2018, §3.1, Fig. 4; Li et al. 2018",
            "landscape slice",
        ),
        _l(
            "gamma_beta_only",
            "Training only γ and β",
            "A random 8-layer BN net whose weights never change: only the norms' γ and β learn, "
            "and beat training the last layer alone.",
            "002 003",
            "Frankle et al. 2021",
            "acc loss",
        ),
        _l(
            "gamma_beta_init",
            "γ starts at 1, β at 0",
            "A BN layer begins as plain standardization; training then moves γ and β, slowly, "
            "and most in the last hidden layer.",
            "002 003 004",
            "Ioffe & Szegedy 2015, §3",
            "gamma beta",
        ),
        _l(
            "no_norm",
            "A deep net without BN",
            "16 layers without a norm: careful init and adaptive gradient clipping, next to BN.",
            "000 002",
            "Brock et al. 2021 (NFNets); He et al. 2015",
            "acc loss",
        ),
        _l(
            "bn_gradients",
            "BN's gradients explode at init in deep nets",
            "At the first step of a 16-layer BN net, the first layer's gradient is over 10× "
            "the classifier's; without BN, or with 4 layers, it is not.",
            "000",
            "Yang et al. 2019, A Mean Field Theory of Batch Normalization",
            "grad_depth acc",
        ),
    )
}
assert all(set(x.charts) <= set(CHARTS) for x in LESSONS.values())
assert all(x.trains or x.page for x in LESSONS.values())
assert all(set(x.lectures) <= set(LECTURES) for x in LESSONS.values())


@dataclass(frozen=True)
class OutOfScope:
    """A claim of the lectures that no lesson shows, and why (with what bnviz measured)."""

    claim: str
    lectures: tuple[str, ...]  # keys of LECTURES
    why: str


# Measured on the CLI at seeds 100–104 (seed = data_seed); docs/lessons.md lists every claim.
OUT_OF_SCOPE: tuple[OutOfScope, ...] = (
    OutOfScope(
        "With BN you need less dropout, or none",
        ("001", "002", "004"),
        "Here there is no need for dropout to remove: on the regularization lesson's 300 "
        "training digits, dropout 0.5 moved test accuracy by −2.2 to +1.4 points without BN "
        "and −1.7 to +2.2 with it (seeds 100–104).",
    ),
    OutOfScope(
        "Larger batches regularize less",
        ("001", "004"),
        "At equal epochs a larger batch also takes fewer steps (1,800 at batch 10, 120 at 150 "
        "on 300 digits), which swamps the effect. Ghost BN separates the two: at batch 150, "
        "statistics over virtual batches of 10 raised the training loss (0.21–0.24 vs "
        "0.05–0.07) but moved test accuracy by only −1.7 to +2.2 points (seeds 100–104): more "
        "noise, no measurable gain at this scale. Try norm=ghost_batch in the lab.",
    ),
    OutOfScope(
        "An adaptive learning rate (Adam) is the other remedy for a stretched error surface",
        ("003",),
        "Shown in the lab, not judged: with every other input ×100, plain SGD at 5 epochs found "
        "no rate from 0.01 to 0.1 that trained both input scales (at best 83 %), while Adam at "
        "0.001 reached 92.5–96.1 % on both and BN with SGD 0.1 91.7–97.2 % (seeds 100–104). "
        "With more epochs SGD at 0.1 catches up on standardized inputs, so the contrast "
        "depends on the budget: set optimizer=adam in the lab.",
    ),
    OutOfScope(
        "BN works because it adds parameters",
        ("000",),
        "The lecture dismisses it and so does bnviz, untested: γ and β add 600 numbers to a "
        "3×100 net of 27,710 (2 %); a plain net widened by as much is not trained here. What "
        "γ and β alone can do is the lesson 'Training only γ and β'.",
    ),
    OutOfScope(
        "BN discourages reliance on single directions (units)",
        ("000",),
        "Morcos et al. (2018) measure it by ablating units one by one; bnviz records no ablations.",
    ),
    OutOfScope(
        "Other ways to smooth the landscape work as well (BN is 'serendipitous')",
        ("003",),
        "Santurkar et al.'s ℓp normalizations are not implemented; LayerNorm and GroupNorm "
        "appear only in the batch-size lesson.",
    ),
    OutOfScope(
        "Batch statistics across GPUs",
        ("001",),
        "bnviz trains on one device; per-device batches are the batch-size lesson's small batches.",
    ),
)
assert all(set(x.lectures) <= set(LECTURES) for x in OUT_OF_SCOPE)


def neighbours(slug: str) -> tuple[Lesson | None, Lesson | None]:
    """The previous and next lesson of the tour."""
    order = list(LESSONS)
    i = order.index(slug)
    prev = LESSONS[order[i - 1]] if i > 0 else None
    nxt = LESSONS[order[i + 1]] if i + 1 < len(order) else None
    return prev, nxt
