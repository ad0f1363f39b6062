"""Stage times: recorded only under a recorder, summed per stage, nested stages apart."""

from __future__ import annotations

import time

from claims import timing


def test_stages_are_summed_under_a_recorder_and_ignored_without_one() -> None:
    with timing.stage("nowhere"):
        pass  # no recorder open: nothing to write to, and no error
    with timing.recording() as timings:
        for _ in range(2):
            with timing.stage("outer"):
                with timing.stage("inner"):
                    time.sleep(0.01)
    assert set(timings) == {"outer", "inner"}
    assert timings["outer"] >= timings["inner"] >= 0.02
    kept: dict[str, float] = {"before": 1.0}
    with timing.recording(kept), timing.stage("later"):
        pass
    assert set(kept) == {"before", "later"}
