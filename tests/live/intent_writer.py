"""A process that journals intents until it is killed (``tests/live/test_intents.py``'s kill -9 test).

    python tests/live/intent_writer.py JOURNAL

Resumes ``JOURNAL`` (creating it the first time), prints ``ready SESSION REPLAYED``, re-delivers
the last 20 fills the journal counted (each must be seen: exit 3 otherwise), then loops: a place of
two orders, the ack of the first, a fill of the second with the next trade id. After each append
returns, one line ``seq kind oid trade_id`` per record goes to stdout, unbuffered: what was
reported was appended before the kill.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from avmm.core.state import ACTION_DTYPE
from avmm.live.intents import K_ACK, K_FILL, K_PLACE
from avmm.live.journal import Journal


def main(path: str) -> int:
    j = Journal(path, {"writer": os.getpid()}, resume=True, poll_s=0.02)
    out = sys.stdout.fileno()
    os.write(out, f"ready {j.session} {j.replayed}\n".encode())
    tid = max(j.recovery.trade_ids, default=0)
    for x in range(max(1, tid - 19), tid + 1):
        if not j.fill_seen(x):
            return 3
    acts = np.zeros(2, dtype=ACTION_DTYPE)
    acts["kind"] = K_PLACE
    acts["side"] = [1, -1]
    acts["qty"] = 1.0
    i = 0
    while True:
        o1, o2 = 2 * i + 1, 2 * i + 2
        t = time.time_ns()
        acts["oid"] = [o1, o2]
        acts["px"] = [100.0 - i * 1e-3, 100.5 + i * 1e-3]
        s = j.actions(t, acts, 2)
        os.write(out, f"{s} {K_PLACE} {o1} 0\n{s + 1} {K_PLACE} {o2} 0\n".encode())
        s = j.response(t, K_ACK, o1, 0, 0.0, 0.0, 0.0)
        os.write(out, f"{s} {K_ACK} {o1} 0\n".encode())
        tid += 1
        if not j.fill_seen(tid):
            s = j.response(t, K_FILL, o2, -1, 100.5, 1.0, 0.01, trade_id=tid, venue_oid=o2)
            os.write(out, f"{s} {K_FILL} {o2} {tid}\n".encode())
        i += 1
        if i % 64 == 0:
            time.sleep(0.001)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
