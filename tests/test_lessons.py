"""Lessons: the registry is complete, every lesson page and the tour render, a finished run's
check is shown as computed from its records, and "Open in the lab" loads the lesson's runs.

Records come from `preset_records` (conftest): each preset trains once for the whole suite.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from bnviz import checks, cli
from bnviz.config import PRESETS, from_dict
from bnviz.jobs import GroupJob
from bnviz.lessons import CHARTS, LECTURES, LESSONS, OUT_OF_SCOPE, neighbours
from dashboard import lesson_view

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("## The claim", "## What to look for", "## At this scale")


pytestmark = pytest.mark.usefixtures("fresh_server")  # conftest: a store of its own


def open_page(url_path: str) -> AppTest:
    """The app at one page of st.navigation. AppTest.switch_page resolves files, and every
    lesson is the same function under its own URL path: select the page by its hash, which
    is what a browser's URL path resolves to (streamlit.navigation.page: calc_hash(url_path))."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at._page_hash = calc_hash(url_path)
    return at.run()


def test_registry_is_complete():
    assert list(LESSONS)[:1] == ["error_surface"]  # the mechanics first, as in the lectures
    for slug, lesson in LESSONS.items():
        if lesson.page:  # a page of its own: the file exists
            assert (ROOT / "views" / f"{lesson.page}.py").is_file(), slug
        if lesson.trains:
            assert lesson.preset == slug and slug in PRESETS
            assert slug in checks.CHECKS
            assert set(lesson.charts) <= set(CHARTS) and lesson.charts
        assert set(lesson.lectures) <= set(LECTURES) and lesson.papers
        text = lesson.text()
        positions = [text.find(s) for s in SECTIONS]
        assert -1 not in positions and positions == sorted(positions), slug
    assert neighbours(next(iter(LESSONS)))[0] is None
    assert neighbours(list(LESSONS)[-1])[1] is None


def test_each_text_cites_exactly_its_lectures():
    """The lectures a text names (000–004) are the registry's, and vice versa: the line of
    sources under the title never lists a lecture the text does not use."""
    for slug, lesson in LESSONS.items():
        named = set(re.findall(r"(?<![\d,.])00[0-4](?!\d)", lesson.text()))
        assert named == set(lesson.lectures), slug


def test_every_preset_is_a_cli_preset():
    parser = cli.build_parser()
    for slug in (s for s, x in LESSONS.items() if x.trains):
        args = parser.parse_args(["train", "--preset", slug])
        assert args.preset == slug


TRAINING = [s for s, x in LESSONS.items() if x.trains and not x.page]


@pytest.mark.parametrize("slug", TRAINING)
def test_lesson_page_renders_before_any_run(slug):
    at = open_page(slug)
    assert not at.exception, [e.value for e in at.exception]
    assert any(b.label == "Run this experiment" for b in at.button)
    assert any("The claim" in m.value for m in at.markdown)
    assert any("Sources: " in c.value for c in at.caption)
    assert any(f"lesson {list(LESSONS).index(slug) + 1} of" in h.value for h in at.subheader)
    assert not at.success and not at.error  # no check before there are records


@pytest.mark.parametrize("slug", TRAINING)
def test_lesson_page_shows_what_the_records_show(slug, preset_records):
    """A finished group of the lesson (as a restarted server finds it on disk): the page
    shows the check computed from those records, pass or not, with its figures."""
    lesson = LESSONS[slug]
    records = preset_records(slug)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    from dashboard import state

    job = GroupJob("20260101-000000-abcdef", lesson_view.group_name(lesson), records, closed=True)
    state.manager().jobs[job.id] = job
    at._page_hash = calc_hash(slug)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    result = lesson.check(records)
    shown = [e.value for e in (at.success if result.passed else at.warning)]
    assert any(result.summary in s for s in shown), (shown, result.summary)
    table = " ".join(m.value for m in at.markdown)
    assert result.seeds and "| claim holds |" in table and "| effect |" in table
    for seed, per_seed in result.seeds:
        assert f"seed {seed}" in table
        for label, _ in per_seed.figures:
            assert label.split(":")[0] in table


def test_tour_lists_every_lesson_in_order():
    at = open_page("tour")
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(m.value for m in at.markdown)
    assert "one claim from the lectures" in text
    for lesson in LESSONS.values():
        assert lesson.teaser in text
    for claim in OUT_OF_SCOPE:  # every claim no lesson shows, with its reason
        assert f"**{claim.claim}**" in text and claim.why in text


def test_open_in_the_lab_loads_the_lessons_runs():
    from dashboard import config_form

    slug = "lr_ladder"
    at = open_page(slug)
    next(b for b in at.button if b.label == "Open in the lab").click().run()
    assert not at.exception, [e.value for e in at.exception]
    preset = PRESETS[slug]
    cfg, problems = from_dict(preset.base), []
    for name in preset.base:
        assert at.session_state[config_form.key(name)] == config_form.widget_value(
            name, getattr(cfg, name)
        ), name
    assert any(b.label == "Train" for b in at.button), "the Train page is shown"
    assert not problems


def test_run_this_experiment_trains_the_preset_live():
    """The button submits exactly the lesson's configs at its seeds to the shared worker, and
    the page keeps showing that group (live) until it ends, then shows the verdict over the
    seeds, its rule, and More seeds, which trains a larger group."""
    slug = "ioffe_fig1"
    at = open_page(slug)
    next(b for b in at.button if b.label == "Run this experiment").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from dashboard import state

    gid = at.session_state[f"lesson-{slug}"]
    job = state.manager().get(gid)
    assert job.configs == LESSONS[slug].configs()
    end = time.time() + 120
    while job.active and time.time() < end:
        time.sleep(0.3)
    assert not job.active
    at.run()
    assert not at.exception
    shown = [e.value for e in (*at.success, *at.warning)]
    assert any("over 3 seeds" in v and "Held in " in v for v in shown), shown
    assert any(checks.RULE in c.value for c in at.caption)
    # More seeds: a new group of the lesson at the earlier seeds and two new ones
    more = next(b for b in at.button if b.label.startswith("More seeds"))
    assert more.label == "More seeds: train seeds 0, 1, 2, 3, 4"
    more.click().run()
    assert not at.exception, [e.value for e in at.exception]
    bigger = state.manager().get(at.session_state[f"lesson-{slug}"])
    assert bigger.id != gid and bigger.configs == LESSONS[slug].configs((0, 1, 2, 3, 4))


def test_stop_works_while_the_lessons_group_trains():
    """Right after Run this experiment: Stop is enabled and Run disabled (a second click
    queued a second group that Stop alone could cancel); Stop cancels the lesson's group."""
    slug = "no_norm"  # its runs train for many seconds
    at = open_page(slug)
    next(b for b in at.button if b.label == "Run this experiment").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from dashboard import state

    job = state.manager().get(at.session_state[f"lesson-{slug}"])
    assert job.active
    assert next(b for b in at.button if b.label == "Run this experiment").disabled
    stop = next(b for b in at.button if b.label == "Stop")
    assert not stop.disabled
    stop.click().run()
    end = time.time() + 30
    while job.active and time.time() < end:
        time.sleep(0.1)
    assert not job.active
    assert any(r.status == "cancelled" for r in job.snapshot())
    assert len([g for g in state.manager().groups() if g.name.endswith(LESSONS[slug].title)]) == 1


def test_open_in_the_lab_shows_the_lessons_runs_then_compares_in_one_click():
    """The student's path: a lesson's group (trained by the lecturer's tab), Open in the lab
    from presentation mode: the lab shows that group, with its sidebar (presenting off) and
    the preset box naming the lesson's preset; the student trains; one click compares the
    two groups on the Runs page."""
    from dashboard import state

    slug = "ioffe_fig1"
    lesson = LESSONS[slug]
    lecturer = state.manager().submit(
        lesson.runs.configs(), name=lesson_view.group_name(lesson), owner="lecturer"
    )
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["present"] = "1"
    at.run()
    at._page_hash = calc_hash(slug)
    at.run()
    assert at.session_state["present"]
    next(b for b in at.button if b.label == "Open in the lab").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["group_id"] == lecturer  # the lesson's runs, shown in the lab
    assert not at.session_state["present"]  # the lab's sidebar is back
    assert at.selectbox(key="cmp_preset").value == slug
    assert not any(b.label == "Compare with the previous group" for b in at.button)
    state.manager().stop(lecturer, by="lecturer")
    at._page_hash = calc_hash("")  # AppTest reruns the page it was given: now the lab's
    next(b for b in at.button if b.label == "Train").click().run()
    mine = at.session_state["group_id"]
    assert mine != lecturer
    state.manager().stop(mine, by=state.owner_of(at.session_state["_owner"]))
    at.run()
    compare = next(b for b in at.button if b.label == "Compare with the previous group")
    compare.click().run()
    assert not at.exception, [e.value for e in at.exception]
    at._page_hash = calc_hash("runs")
    at.run()
    assert at.multiselect(key="runs-groups").value == [mine, lecturer]
