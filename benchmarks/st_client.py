"""A small client of Streamlit's own websocket protocol, to load a server as a class would.

A class's browsers run on the students' laptops: a load test should not run dozens of
Chromiums beside the server it measures. This speaks what a browser tab speaks (Streamlit 1.67,
`streamlit.proto`): it connects to /_stcore/stream, sends `rerun_script` with the page's
query string, reads the ForwardMsgs, and answers the page the way the browser does — the
fragment timers (`auto_rerun`: a rerun of that fragment every `interval` seconds, whether or
not the last one has finished), the new URL (`page_info_changed`), the shown page's hash
(`navigation`). A button press is a rerun whose widget states hold the button's trigger.

Per viewer it keeps what a load report needs: each rerun's round trip (sent → the next
`script_finished`), the bytes each finished run brought, and the page's latest markdown
blocks (the status lines say which runs train and which ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect

FRAGMENT_DONE = ForwardMsg.ScriptFinishedStatus.FINISHED_FRAGMENT_RUN_SUCCESSFULLY


@dataclass
class Run:
    """One finished script run as a viewer saw it."""

    at: float  # time.monotonic() when it finished
    ms: float | None  # round trip of the oldest rerun it answered (None: the server's own)
    nbytes: int  # every message of the run, as received (decompressed)
    wire: int  # the bytes on the wire for them (compressed, when the server compresses)
    fragment: bool  # a fragment run (a live refresh), not a whole page


class _Counted(ClientConnection):
    """A connection that counts the bytes it receives on the wire (frames as sent, before
    permessage-deflate is undone)."""

    wire = 0

    def data_received(self, data: bytes) -> None:
        self.wire += len(data)
        super().data_received(data)


@dataclass
class Viewer:
    """One browser tab: `base` (http://host:port), the page's path and query string."""

    base: str
    query: str = ""
    page: str = ""
    name: str = ""
    runs: list[Run] = field(default_factory=list)
    markdown: dict[tuple, str] = field(default_factory=dict)  # delta path → body
    buttons: dict[str, str] = field(default_factory=dict)  # label → widget id
    components: dict[tuple, str] = field(default_factory=dict)  # delta path → json_args
    errors: list[str] = field(default_factory=list)
    closed: bool = False

    def __post_init__(self) -> None:
        self._ws = None
        self._page_hash = ""
        self._timers: dict[str, asyncio.Task] = {}  # fragment id → its auto-rerun loop
        self._sent: list[float] = []  # reruns sent and not yet answered (monotonic)
        self._bytes = 0  # received since the last script_finished
        self._wire = 0  # the wire's count at the last script_finished
        self._tasks: list[asyncio.Task] = []
        self._widgets: dict[str, WidgetState] = {}  # values the page set, sent with each rerun
        self._told: str | None = None  # a fragment to rerun: a component's value changed

    # --- the connection ---------------------------------------------------------------

    async def open(self) -> None:
        url = self.base.replace("http", "ws", 1) + "/_stcore/stream"
        self._ws = await connect(
            url,
            subprotocols=["streamlit"],
            origin=self.base,
            max_size=None,
            ping_interval=None,
            open_timeout=30,
            create_connection=_Counted,
        )
        self._tasks.append(asyncio.create_task(self._read()))
        await self.rerun()

    async def close(self) -> None:
        self.closed = True
        for t in [*self._timers.values(), *self._tasks]:
            t.cancel()
        self._timers.clear()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    async def rerun(
        self,
        widgets: list[WidgetState] | None = None,
        fragment_id: str = "",
        auto: bool = False,
    ) -> None:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        cs.page_name = self.page
        cs.page_script_hash = self._page_hash
        cs.fragment_id = fragment_id
        cs.is_auto_rerun = auto
        cs.widget_states.widgets.extend([*self._widgets.values(), *(widgets or [])])
        self._sent.append(time.monotonic())
        try:
            await self._ws.send(msg.SerializeToString())
        except Exception as e:  # a closed socket ends this viewer
            self.errors.append(f"send: {e!r}")
            self.closed = True

    async def click(self, label: str, timeout: float = 60.0) -> None:
        """Press the button labelled `label` (waits until the page has drawn it)."""
        end = time.monotonic() + timeout
        while label not in self.buttons:
            if time.monotonic() > end or self.closed:
                raise TimeoutError(f"{self.name}: no button {label!r} on the page")
            await asyncio.sleep(0.05)
        await self.rerun([WidgetState(id=self.buttons[label], trigger_value=True)])

    # --- what the server sends --------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                self._bytes += len(raw)
                msg = ForwardMsg.FromString(raw)
                self._handle(msg)
        except Exception as e:  # recorded: a viewer that dropped is not live
            if not self.closed:
                self.errors.append(f"read: {e!r}")
        finally:
            self.closed = True

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            if msg.new_session.page_script_hash:
                self._page_hash = msg.new_session.page_script_hash
            if msg.metadata.run.fragment_ids:
                return  # a fragment's run: the timers stay
            # A whole run drops the old fragments; their auto_rerun messages come again.
            for t in self._timers.values():
                t.cancel()
            self._timers.clear()
        elif kind == "navigation":
            self._page_hash = msg.navigation.page_script_hash or self._page_hash
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            fid, every = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if fid and fid not in self._timers:
                self._timers[fid] = asyncio.create_task(self._every(fid, every))
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                t = self._timers.pop(fid, None)
                if t is not None:
                    t.cancel()
        elif kind == "delta":
            self._delta(msg)
        elif kind == "script_finished":
            now = time.monotonic()
            ms = (now - self._sent[0]) * 1e3 if self._sent else None
            # A browser's timer fires whether or not the last rerun finished; the server
            # runs the queued reruns as one. Every rerun sent before this end is answered.
            self._sent.clear()
            fragment = msg.script_finished == FRAGMENT_DONE
            wire = self._ws.wire if self._ws is not None else 0
            self.runs.append(Run(now, ms, self._bytes, wire - self._wire, fragment))
            self._bytes, self._wire = 0, wire
            if self._told is not None:  # as the browser does after a setComponentValue
                fid, self._told = self._told, None
                self._tasks.append(asyncio.create_task(self.rerun(fragment_id=fid)))

    def _delta(self, msg: ForwardMsg) -> None:
        path = tuple(msg.metadata.delta_path)
        d = msg.delta
        if d.WhichOneof("type") != "new_element":
            return
        el = d.new_element
        which = el.WhichOneof("type")
        if which == "markdown":
            self.markdown[path] = el.markdown.body
        elif which == "button":
            self.buttons[el.button.label] = el.button.id
        elif which == "component_instance":
            ci = el.component_instance
            self.components[path] = ci.json_args
            # bnviz's live chart says which whole figure it holds (dashboard/live_chart.py):
            # its value, then a rerun of its fragment, as the component does in a browser.
            if '"figure"' in ci.json_args[:200]:
                a = json.loads(ci.json_args).get("a", {})
                if "figure" in a:
                    have = {"resync": 0, "have": f"{a['stream']}:{a['rev']}"}
                    self._widgets[ci.id] = WidgetState(id=ci.id, json_value=json.dumps(have))
                    self._told = d.fragment_id

    async def _every(self, fid: str, interval: float) -> None:
        while not self.closed:
            await asyncio.sleep(interval)
            await self.rerun(fragment_id=fid, auto=True)

    # --- reading the page -------------------------------------------------------------

    def text(self, needle: str) -> str:
        """The newest markdown block that contains `needle` ("" if none)."""
        hits = [body for _, body in sorted(self.markdown.items()) if needle in body]
        return hits[-1] if hits else ""

    def statuses(self) -> list[str]:
        """The runs' statuses as the status lines say them (data-status="…")."""
        body = self.text('class="bnviz-run"')
        return [part.split('"', 1)[0] for part in body.split('data-status="')[1:]]
