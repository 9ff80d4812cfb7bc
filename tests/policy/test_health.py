from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policy.health import (
    TRANSITIONS,
    HealthCheckSpec,
    HealthState,
    detection_time,
    first_probe_at,
    on_probe,
    probe_duration,
    probe_ok,
    probe_step,
)

SPEC = HealthCheckSpec()


def _run(results: list[bool], spec: HealthCheckSpec = SPEC, state: HealthState | None = None):
    st_ = HealthState() if state is None else state
    events = []
    for ok in results:
        st_, ev = probe_step(st_, ok, spec)
        events.append(ev)
    return st_, events


def test_haproxy_defaults() -> None:
    assert (SPEC.interval, SPEC.timeout, SPEC.rise, SPEC.fall) == (2.0, 2.0, 2, 3)
    with pytest.raises(ValueError):
        HealthCheckSpec(interval=0)
    with pytest.raises(ValueError):
        HealthCheckSpec(fall=0)


def test_table_covers_every_case() -> None:
    assert set(TRANSITIONS) == {(h, ok) for h in (True, False) for ok in (True, False)}


def test_fall_consecutive_failures_take_it_down() -> None:
    st_, events = _run([False, False])
    assert st_.healthy and st_.failures == 2 and events == [None, None]
    st_, events = _run([False, False, False])
    assert not st_.healthy and events == [None, None, "down"]


def test_rise_consecutive_successes_bring_it_back() -> None:
    down = HealthState(healthy=False)
    st_, events = _run([True], state=down)
    assert not st_.healthy and st_.successes == 1
    st_, events = _run([True, True], state=down)
    assert st_.healthy and events == [None, "up"]


def test_intermittent_success_resets_failure_count() -> None:
    st_, events = _run([False, False, True, False, False])
    assert st_.healthy and st_.failures == 2 and "down" not in events
    st_, events = _run([False, False, True, False, False, False])
    assert events[-1] == "down"
    # and the other way: a failure while rising resets the successes
    st_, _ = _run([True, False, True], state=HealthState(healthy=False))
    assert not st_.healthy and st_.successes == 1


@given(
    results=st.lists(st.booleans(), max_size=60),
    rise=st.integers(1, 5),
    fall=st.integers(1, 5),
)
def test_machine_matches_a_run_length_reading(results: list[bool], rise: int, fall: int) -> None:
    # the verdict flips exactly when the current run of disagreeing results reaches
    # the threshold; on_probe agrees with probe_step
    spec = HealthCheckSpec(rise=rise, fall=fall)
    healthy, run = True, 0
    state = HealthState()
    for ok in results:
        new = on_probe(state, ok, spec)
        assert new == probe_step(state, ok, spec)[0]
        if ok != healthy:
            run += 1
            if run >= (rise if ok else fall):
                healthy, run = ok, 0
        else:
            run = 0
        state = new
        assert state.healthy == healthy
        assert (state.failures if healthy else state.successes) == run
        assert min(state.failures, state.successes) == 0


def test_probe_outcomes() -> None:
    assert probe_ok("ok") and not probe_ok("refuse") and not probe_ok("blackhole")
    assert probe_duration("ok", SPEC) == 0.0
    assert probe_duration("refuse", SPEC) == 0.0
    assert probe_duration("blackhole", HealthCheckSpec(timeout=4.0)) == 4.0
    assert first_probe_at(0.25, HealthCheckSpec(interval=10.0)) == 2.5


@given(
    u=st.floats(0, 0.999999),
    fault=st.floats(0, 1e4),
    interval=st.floats(0.1, 60),
    fall=st.integers(1, 6),
    timeout=st.floats(0, 10),
    mode=st.sampled_from(["refuse", "blackhole"]),
)
def test_detection_within_closed_form_bounds(
    u: float, fault: float, interval: float, fall: int, timeout: float, mode: str
) -> None:
    spec = HealthCheckSpec(interval=interval, timeout=timeout, fall=fall)
    d = detection_time(fault, first_probe_at(u, spec), spec, mode) - fault
    extra = fall * timeout if mode == "blackhole" else 0.0
    tol = 1e-9 * max(1.0, fault)
    assert (fall - 1) * interval + extra - tol <= d <= fall * interval + extra + tol


@pytest.mark.parametrize(("fall", "mode"), [(3, "refuse"), (1, "refuse"), (3, "blackhole")])
def test_mean_detection_time_at_random_phase(fall: int, mode: str) -> None:
    # docs/references.md: detection after (F - 1) I .. F I, mean (F - 1/2) I, plus the
    # timeout per check for a blackhole
    rng = np.random.default_rng(fall)
    spec = HealthCheckSpec(interval=5.0, timeout=2.0, fall=fall)
    n = 20_000
    fault = 1000.0
    d = (
        np.array(
            [detection_time(fault, first_probe_at(u, spec), spec, mode) for u in rng.random(n)]
        )
        - fault
    )
    expected = (fall - 0.5) * spec.interval + (fall * spec.timeout if mode == "blackhole" else 0)
    se = d.std(ddof=1) / math.sqrt(n)
    assert abs(d.mean() - expected) < 4 * se
    # the spread is the phase only: uniform over one interval, sd I / sqrt(12)
    assert abs(d.std() - spec.interval / math.sqrt(12)) < 0.05 * spec.interval


def test_detection_rejects_non_faults() -> None:
    with pytest.raises(ValueError):
        detection_time(10.0, 0.0, SPEC, "ok")
    with pytest.raises(ValueError):
        detection_time(10.0, 20.0, SPEC, "refuse", HealthState(healthy=False))
