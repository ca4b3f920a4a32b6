"""The clock offset's minimum-RTT filter and the rate limits' buckets."""

from __future__ import annotations

from types import SimpleNamespace

from avmm.live.clock import ClockOffset
from avmm.live.limits import RateLimits

MS = 1_000_000


def test_min_rtt_sample_wins():
    c = ClockOffset()
    # true offset +250 ms; a slow sample's midpoint is off by its asymmetry
    c.sample(0, 40 * MS, 250 + 35)  # venue read late in a 40 ms round trip: +265 ms estimated
    assert abs(c.offset_ns / MS - 265.5) < 1
    c.sample(100 * MS, 102 * MS, 250 + 101)  # a 2 ms round trip: the better one
    assert abs(c.offset_ns / MS - 250.5) < 1 and c.rtt_ns == 2 * MS
    c.sample(200 * MS, 230 * MS, 250 + 225)  # slower again: not used
    assert abs(c.offset_ns / MS - 250.5) < 1
    assert c.drift_alarms == 0


def test_invalidate_forgets_and_marks_stale():
    c = ClockOffset()
    c.sample(0, 1 * MS, 10_000)
    assert not c.stale and abs(c.offset_ns / MS - 10_000) < 1
    c.invalidate()
    assert c.stale and not c.samples
    c.sample(0, 1 * MS, 10_000 - 3000)  # the venue moved 3 s back
    assert abs(c.offset_ns / MS - 7000) < 1
    assert c.drift_alarms == 1


def test_orders_bucket_exact_share_and_window():
    lim = RateLimits(
        "binance-spot",
        share=0.5,
        limits=[{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 10}],
    )
    t = 1_000_000_000_000
    for i in range(5):
        assert lim.order_room(1, t + i)
        lim.sent_orders(1, t + i)
    assert not lim.order_room(1, t + 10)
    assert lim.order_room(1, t + 10_000_000_001)  # the first sends left the 10 s window
    assert lim.max_orders_used["10s"] == 5


def test_venue_count_raises_ours_until_its_window_turns():
    lim = RateLimits("binance-um", share=1.0)
    t = 10_000_000_000 * 7  # the start of a 10 s window
    counts = [SimpleNamespace(rateLimitType="ORDERS", interval="SECOND", intervalNum=10, limit=300, count=299)]
    lim.update(counts, t)
    assert lim.order_room(1, t + 1) and not lim.order_room(2, t + 1)
    assert lim.order_room(2, t + 10_000_000_000)  # the venue's window turned


def test_headers_429_and_418():
    lim = RateLimits("binance-spot")
    lim.update_headers({"X-MBX-ORDER-COUNT-10S": "49", "X-MBX-USED-WEIGHT-1M": "10"}, 5)
    assert not lim.order_room(1, 6)  # 49 of 50 used: beyond the 0.8 share
    lim = RateLimits("binance-spot")
    lim.too_many(2.0, 0)
    assert not lim.order_room(1, 1_000_000_000) and lim.order_room(1, 2_000_000_001)
    lim.ban("IP banned")
    assert lim.banned and not lim.order_room(1, 10**15)


def test_a_local_clock_keeps_this_machines_time():
    """``venue.clock = "local"``: samples are counted but the offset stays 0 and the rate 1 (a venue
    clock running 200 x cannot be followed; the emulator then accepts wall-clock timestamps), and a
    -1021 changes nothing."""
    import time

    from avmm.live.clock import ClockOffset

    c = ClockOffset(follow=False)
    t0 = time.time_ns()
    c.sample(t0, t0 + 1_000_000, t0 // 1_000_000 + 3_600_000)  # the venue an hour ahead
    c.sample(t0 + 2_000_000_000, t0 + 2_001_000_000, t0 // 1_000_000 + 7_200_000)  # and running fast
    assert c.n == 2 and not c.stale and not c.settling and c.rate == 1.0 and c.offset_ns == 0
    c.invalidate()
    assert not c.stale and abs(c.timestamp_ms() - time.time_ns() // 1_000_000) < 1000
    f = ClockOffset()
    f.sample(t0, t0 + 1_000_000, t0 // 1_000_000 + 3_600_000)
    assert f.offset_ns > 3_500_000_000_000  # the default follows the venue
