"""AppTest: a group opened from someone else's link is followed read-only (Train, Runs, lesson
pages); link text and group names are shown as text; the run store's problems are shown."""

from __future__ import annotations

import json
import re

import pytest

from bnviz.config import PRESETS, RunConfig
from tests.test_app import app
from tests.test_jobs import wait_for

LONG = RunConfig(hidden=(64, 64), epochs=300, batch_size=32)


pytestmark = pytest.mark.usefixtures("fresh_server")  # conftest: a store of its own


def manager():
    from dashboard import state

    return state.manager()


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_a_followed_group_cannot_be_stopped_and_can_be_copied():
    gid = manager().submit([LONG], owner="the-lecturer's-tab")
    at = app(group=gid)
    assert not at.exception
    assert button(at, "Stop training").disabled
    assert any("you are following it" in c.value for c in at.caption)
    button(at, "Train my own copy").click()
    at.run()
    mine = at.session_state["group_id"]
    assert mine != gid and manager().get(mine).configs == [LONG]
    from dashboard import state

    assert manager().owns(mine, state.owner_of(at.session_state["_owner"]))
    assert not button(at, "Stop training").disabled
    button(at, "Stop training").click()
    at.run()
    assert manager().get(gid).active  # the lecturer's group trains on
    for g in (gid, mine):
        manager().stop(g)


def test_runs_page_rename_and_delete_only_for_the_owner():
    other = manager().submit([LONG.replace(epochs=1)], name="<a href='http://x'>theirs</a>")
    at = app().switch_page("views/runs.py").run()
    assert not at.exception
    assert button(at, "Rename").disabled and button(at, "Delete").disabled
    assert any("Started elsewhere" in c.value for c in at.caption)
    # the name reaches the comparison chart's legend as text, not as a link
    charts = [json.dumps(c.proto.json_args) for c in at.get("component_instance")]
    names = " ".join(charts)
    assert "theirs" in names and "<a href" not in names and "&lt;a href" in names
    manager().stop(other)


def test_lesson_page_follows_a_group_another_tab_started():
    from bnviz.lessons import LESSONS
    from dashboard import lesson_view
    from tests.test_lessons import open_page

    lesson = next(x for x in LESSONS.values() if x.trains)
    configs = [c.replace(epochs=300) for c in PRESETS[lesson.preset].configs()]
    gid = manager().submit(configs, name=lesson_view.group_name(lesson), owner="other")
    at = open_page(lesson.slug)
    assert not at.exception
    assert next(b for b in at.button if b.label == "Stop").disabled
    assert any("you are following it" in c.value for c in at.caption)
    manager().stop(gid)


def test_link_text_is_shown_not_rendered():
    evil = "[Session expired](http://evil.example/login) ![t](http://evil.example/t.png)"
    at = app(lr=evil, group="<img src=x>")
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    # every character that could open a link, an image or HTML is escaped
    assert not re.search(r"(?<!\\)[\[\]<>]|://", text), text
    assert "\\[Session expired\\]" in text  # escaped: Markdown shows the characters


def test_store_problems_and_write_errors_are_on_the_page(fresh_server):
    fresh_server.mkdir(parents=True)
    (fresh_server / "broken.json").write_text('{"runs": [], "id": "x"}')
    at = app().switch_page("views/runs.py").run()
    assert not at.exception
    assert any("skipped 1 damaged" in e.label for e in at.expander)
    manager().store.conn.execute("PRAGMA max_page_count=1")  # the disk is full from now on
    gid = manager().submit([LONG.replace(epochs=1)])
    wait_for(lambda: manager().store_error, what="a write to fail")
    at = app(group=gid)
    assert any("Runs are not being saved" in e.value and "full" in e.value for e in at.error)
    manager().stop(gid)


def test_batch_larger_than_the_data_is_caught_before_training():
    at = app(batch_size="5000")
    assert not at.exception
    assert any("larger than the 1437 training samples" in e.value for e in at.error)
    assert button(at, "Train").disabled


def test_runs_page_stops_and_deletes_several_of_ones_own_groups():
    from dashboard import state

    at = app().switch_page("views/runs.py").run()
    me = state.owner_of(at.session_state["_owner"])
    a = manager().submit([LONG], owner=me)  # trains
    b = manager().submit([LONG], owner=me)  # waits
    theirs = manager().submit([LONG.replace(epochs=1)], owner="another browser")
    # the newest group is the one shown: its title holds its state, let it settle first
    manager().stop(theirs)
    wait_for(lambda: not manager().get(theirs).active, what="their group to end")
    at.run()
    pick = next(m for m in at.multiselect if m.label == "your groups")
    assert len(pick.options) == 2  # only this browser's groups
    pick.set_value([a, b])
    at.run()
    button(at, "Stop them").click()
    at.run()
    wait_for(lambda: not manager().get(a).active and not manager().get(b).active, what="stop")
    at.checkbox(key="bulk-sure").check()
    at.run()
    button(at, "Delete them").click()
    at.run()
    assert not at.exception
    assert manager().get(a) is None and manager().get(b) is None
    assert manager().get(theirs) is not None
