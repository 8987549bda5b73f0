"""A stand-in for the dashboard's server in the fault-injection tests (test_faults.py).

`python tests/fault_server.py RUNS_DIR PLAN` makes the server's JobManager on RUNS_DIR (as
dashboard/state.py does, shutdown at exit), trains groups by PLAN ("tiny,long": one after the
other) and prints JSON lines: {"gid"} when a group is submitted, {"t", "rows"} every 50 ms
(history rows of the training group, as a page would see them) and {"closed", "rows"} when
a group ends. SIGTERM ends it the way Streamlit's handler does: a normal exit, atexit runs.
"""

from __future__ import annotations

import atexit
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnviz.config import RunConfig
from bnviz.jobs import JobManager

PLANS = {
    "tiny": RunConfig(hidden=(16,), epochs=2, batch_size=64, record_every=2),
    "long": RunConfig(hidden=(64, 64), epochs=300, batch_size=32, record_every=5),
}


def say(**msg: object) -> None:
    print(json.dumps(msg), flush=True)


def main() -> None:
    runs_dir, plan = sys.argv[1], sys.argv[2].split(",")
    m = JobManager(runs_dir=runs_dir, warm=False)
    atexit.register(m.shutdown)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for name in plan:
        gid = m.submit([PLANS[name], PLANS[name].replace(norm="none")], owner="fault-test")
        job = m.get(gid)
        say(gid=gid, plan=name)
        while job.active:
            say(t=time.time(), gid=gid, rows=len(job.runs[0].history))
            time.sleep(0.05)
        say(closed=gid, rows=len(job.runs[0].history), t=time.time())
    say(done=True)
    while True:  # a server stays up after its groups end, until it is killed
        signal.pause()


if __name__ == "__main__":
    main()
