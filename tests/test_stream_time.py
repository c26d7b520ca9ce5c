"""StreamTime: steady sample <-> stream-time anchors from jittery callback stamps."""

from __future__ import annotations

import numpy as np

from voice_agent.audio.stream_time import StreamTime

RATE = 16000
BLOCK = 320


def stamped(anchor: float, jitter: list[float], blocks: int) -> StreamTime:
    """Callbacks of BLOCK samples whose stamps err by `jitter` in turn (as PulseAudio's fragments do)."""
    st = StreamTime(RATE)
    for k in range(blocks):
        st.stamp(k * BLOCK, anchor + k * BLOCK / RATE + jitter[k % len(jitter)])
    return st


def test_fragment_clusters_20_ms_apart_average_out() -> None:
    # Three callbacks per 60 ms fragment: stamps early by 0, 20 and 40 ms in turn.
    st = stamped(100.0, [0.0, -0.020, -0.040], 300)
    assert st.anchor is not None and abs(st.anchor - (100.0 - 0.020)) < 0.002
    # A median would sit on one cluster and jump to another as stamps come and go;
    # the anchor moves by well under a millisecond from one callback to the next.
    before = st.anchor
    st.stamp(300 * BLOCK, 100.0 + 300 * BLOCK / RATE)
    assert abs(st.anchor - before) < 0.001


def test_an_outlier_does_not_move_the_anchor() -> None:
    st = stamped(5.0, [0.0], 100)
    st.stamp(100 * BLOCK, 5.0 + 100 * BLOCK / RATE + 2.0)  # one stamp 2 s off (a stall)
    assert st.anchor == 5.0


def test_samples_and_times_map_both_ways() -> None:
    st = stamped(7.0, [0.0], 10)
    assert st.time_of(RATE) == 8.0
    assert st.sample_at(8.5) == RATE + RATE // 2
    for n in np.random.default_rng(0).integers(0, 10**7, 20):
        t = st.time_of(int(n))
        assert t is not None and st.sample_at(t) == n


def test_no_stamps_no_anchor_and_zero_times_are_ignored() -> None:
    st = StreamTime(RATE)
    assert st.time_of(0) is None and st.sample_at(1.0) is None
    st.stamp(0, 0.0)  # a host API without times
    assert st.anchor is None
    st.stamp(0, 3.0)
    st.reset()
    assert st.anchor is None
