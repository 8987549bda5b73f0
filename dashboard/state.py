"""Server-wide and per-tab state: the job manager, the URL ↔ config sync, the current group.

The job manager is one per server (`st.cache_resource`), so several tabs share the run
history and the cap on concurrent training. The config lives in `st.session_state` and is
mirrored into the URL on every page (query params are cleared on page change), so a copied
link restores it.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import os
import re
import secrets

import streamlit as st

from bnviz.config import FIELDS, from_query, to_query
from bnviz.jobs import JobManager, StoreBusy
from bnviz.text import plain_markdown

from . import config_form, present

URL_KEYS_EXTRA = ("vary", "values", "baseline", "group", "present")
OWNER_COOKIE = "bnviz_owner"  # the browser's token: its groups stay its own across reloads
TOKEN = re.compile(r"^[0-9a-f]{32}$")


def manager() -> JobManager:
    """The server's job manager; a store another live server holds stops the page with a
    message that says which server (one server per store)."""
    try:
        return _manager()
    except StoreBusy as e:
        st.error(f"This server cannot use its run store: {plain_markdown(str(e))}")
        st.stop()
        raise  # st.stop raises; for the type checker


@st.cache_resource(show_spinner=False)
def _manager() -> JobManager:
    m = JobManager(
        max_running=int(os.environ.get("BNVIZ_MAX_GROUPS", "1")),
        warm=os.environ.get("BNVIZ_WARM", "1") != "0",
    )
    atexit.register(m.shutdown)
    # The server holds plotly and streamlit: a full collection walks them all while
    # holding the GIL. Freeze what exists now so collections only scan newer objects.
    import plotly.graph_objects as go

    go.Figure(go.Scatter(x=[0], y=[0]))  # plotly loads its validator tables on first use
    gc.collect()
    gc.freeze()
    return m


def init_from_url() -> list[str]:
    """On a tab's first run, fill the widgets from the URL; returns problems to show."""
    if st.session_state.get("_url_loaded"):
        return st.session_state.get("_url_problems", [])
    params = {k: st.query_params.get(k) for k in st.query_params}
    cfg, bad = from_query({k: v for k, v in params.items() if k not in URL_KEYS_EXTRA})
    problems = list(bad)  # each says which default replaces the bad value
    problems += [
        f"'{k}' is not a setting of bnviz and is ignored (settings: python -m bnviz list)"
        for k in params
        if k not in FIELDS and k not in URL_KEYS_EXTRA
    ]
    rows, baseline, bad_grid = config_form.grid_from_params(
        st.query_params.get_all("vary"), params.get("values"), params.get("baseline")
    )
    problems += bad_grid
    config_form.load_into_state(cfg, rows, baseline)
    gid = params.get("group")
    if gid and manager().get(gid) is None:
        problems.append(
            f"group {gid} is not in this server's run history (deleted, or trained on "
            "another server)"
        )
    elif gid:
        st.session_state["group_id"] = gid
    present.from_url(params.get("present"))
    problems = [plain_markdown(p) for p in problems]  # a link's text is shown, never rendered
    st.session_state["_url_loaded"] = True
    st.session_state["_url_problems"] = problems
    return problems


def sync_url() -> None:
    """Write the current config (only what differs from the defaults) into the URL."""
    cfg, _ = config_form.read_config()
    want: dict[str, str | list[str]] = {}
    if cfg is not None:
        want.update(to_query(cfg))
    want.update(config_form.compare_query())  # `vary` repeats: one per grid row
    gid = st.session_state.get("group_id")
    if gid:
        want["group"] = gid
    want.update(present.query())
    have = {k: st.query_params.get_all(k) for k in st.query_params}
    # Rewriting an unchanged URL would add history entries for nothing.
    if have != {k: v if isinstance(v, list) else [v] for k, v in want.items()}:
        st.query_params.from_dict(want)


def ensure_config_state() -> list[str]:
    """Every page calls this first: the config survives page switches and is in the URL.
    Returns what was wrong with the link this tab was opened with, until it trains
    (`clear_url_problems`): a rerun (a click, the worker becoming ready) keeps them on screen."""
    keep_owner()
    if not st.session_state.get("_url_loaded"):
        return init_from_url()
    # Widgets outside the current page lose their state on a page switch: keep it alive.
    for k in list(st.session_state.keys()):
        if isinstance(k, str) and (k.startswith("cfg_") or k.startswith("cmp_")):
            st.session_state[k] = st.session_state[k]
    return st.session_state.get("_url_problems", [])


def show_group(gid: str | None) -> None:
    """The group the Train page shows from now on; the one it showed before becomes the
    previous group (what "Compare with the previous group" compares it with)."""
    old = st.session_state.get("group_id")
    if old and old != gid:
        st.session_state["previous_group"] = old
    st.session_state["group_id"] = gid


def previous_group() -> str | None:
    """The group the Train page showed before its current one, if it still exists."""
    gid = st.session_state.get("previous_group")
    return gid if gid and gid != st.session_state.get("group_id") and manager().get(gid) else None


def clear_url_problems() -> None:
    """The user has acted on the page (pressed Train): the link's problems are old news."""
    st.session_state["_url_problems"] = []


def device_label() -> str:
    """Where training runs (device=auto), as the training worker reported it."""
    return manager().device_label() or "detecting… (the training worker is starting)"


def _client() -> int | None:
    """Which connection this session has now (a reconnect, or someone presenting the session's
    id, is another one)."""
    from streamlit.runtime import get_instance
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    try:
        client = get_instance().get_client(ctx.session_id) if ctx else None
    except RuntimeError:  # no runtime (AppTest)
        client = None
    from unittest.mock import Mock

    # AppTest hands each run a new mock client: no connection to tell apart there
    return id(client) if client is not None and not isinstance(client, Mock) else None


def _token() -> tuple[str, bool]:
    """This browser's secret token and whether its cookie carried it. The cookie comes with
    each connection: a reload keeps the token. Before the browser has the cookie (its first
    page), the token lives in the session, for this connection only: whoever presents the
    session's id on another connection does not get it."""
    sent = st.context.cookies.get(OWNER_COOKIE)
    if isinstance(sent, str) and TOKEN.match(sent):
        return sent, True
    client = _client()
    if st.session_state.get("_owner_client", client) != client or "_owner" not in st.session_state:
        st.session_state["_owner"] = secrets.token_hex(16)
    st.session_state["_owner_client"] = client
    return st.session_state["_owner"], False


def owner_of(token: str) -> str:
    """The owner id of a browser's token: a hash, so the store never holds the token."""
    return "b:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def owner() -> str:
    """This browser's owner id: the groups it submits are its own (only it may stop, rename,
    delete them); other browsers, with the same link, follow them read-only."""
    return owner_of(_token()[0])


def keep_owner() -> None:
    """Give the browser its token as a cookie (first page only): after a reload its groups are
    still its own. A script, once per session (the token is ours: hex)."""
    token, sent = _token()
    if sent or st.session_state.get("_owner_cookie_set") == token:
        return
    st.session_state["_owner_cookie_set"] = token
    # Streamlit's event container (where toasts and style-only HTML go) takes no room; in the
    # sidebar the script opened an empty sidebar on the first lesson page a browser visited.
    with st._event:
        st.html(
            "<script>document.cookie = "
            f"'{OWNER_COOKIE}={token}; path=/; max-age=31536000; SameSite=Strict';</script>",
            unsafe_allow_javascript=True,
        )


def store_notices() -> None:
    """What loading the run store skipped (damaged or foreign records), in an expander. (A
    failing write is `store_error_notice`, drawn in the live view.)"""
    m = manager()
    if m.problems:
        with st.expander(f"The run store skipped {len(m.problems)} damaged record(s)"):
            st.markdown("\n".join(f"- {plain_markdown(p, 300)}" for p in m.problems[:50]))


def store_error_notice() -> None:
    """A failing write (read-only, disk full, locked) as an error while it lasts; called
    inside the live fragments, so it shows within a refresh of the write failing."""
    error = manager().store_error
    if error:
        st.error(f"Runs are not being saved: {plain_markdown(error)}")
