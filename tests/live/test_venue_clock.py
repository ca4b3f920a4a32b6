"""``live.paper.venue_clock_events``: a capture's rows on the paper session's clock."""

from __future__ import annotations

import numpy as np

from avmm.events import EVENT_DTYPE, F_EXCH_TS, QUOTE, TRADE
from avmm.live.paper import venue_clock_events


def _rows(spec: list[tuple[int, int, int, bool]]) -> np.ndarray:
    ev = np.zeros(len(spec), dtype=EVENT_DTYPE)
    for i, (kind, local, exch, stamped) in enumerate(spec):
        ev[i]["kind"], ev[i]["local_ts"], ev[i]["exch_ts"] = kind, local, exch
        ev[i]["flags"] = F_EXCH_TS if stamped else 0
    return ev


def test_stamped_rows_at_their_stamp_unstamped_at_the_last_stamp_plus_the_time_since():
    # the local clock 1,000 behind the venue; quotes without a stamp (spot bookTicker)
    ev = _rows(
        [
            (QUOTE, 100, 100, False),  # before any stamp: its local time
            (TRADE, 110, 1_105, True),
            (QUOTE, 130, 130, False),  # 1_105 + (130 - 110)
            (TRADE, 140, 1_120, True),  # a stamp earlier than the quote above was given
            (QUOTE, 141, 141, False),  # 1_120 + 1
        ]
    )
    out = venue_clock_events(ev)
    assert out["exch_ts"].tolist() == [100, 1_105, 1_125, 1_120, 1_121]
    # at the strategy never back in time
    assert out["local_ts"].tolist() == [100, 1_105, 1_125, 1_125, 1_125]
    assert (ev["exch_ts"] == [100, 1_105, 130, 1_120, 141]).all()  # the input is left alone


def test_empty_and_all_stamped():
    assert venue_clock_events(_rows([])).shape == (0,)
    ev = _rows([(TRADE, 5, 3, True), (QUOTE, 6, 4, True)])
    out = venue_clock_events(ev)
    assert out["exch_ts"].tolist() == [3, 4] and out["local_ts"].tolist() == [3, 4]
