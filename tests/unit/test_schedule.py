"""Learning-rate schedules: linear warmup, cosine decay, reduce-on-plateau, and resumable state."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seq2seqkit.training.schedule import LearningRateSchedule


def test_constant() -> None:
    schedule = LearningRateSchedule("constant", 0.01)
    assert {schedule.lr(step, step / 100) for step in range(100)} == {0.01}
    schedule.observe(1.0)
    schedule.observe(0.0)
    assert schedule.lr(5, 0.5) == 0.01


@pytest.mark.parametrize("kind", ["constant", "plateau", "warmup_cosine"])
def test_warmup_ramps_linearly(kind: str) -> None:
    schedule = LearningRateSchedule(kind, 0.01, warmup_steps=10)  # type: ignore[arg-type]
    # progress 0: the cosine factor is 1, so every kind ramps to base_lr
    lrs = [schedule.lr(step, 0.0) for step in range(10)]
    assert lrs == pytest.approx([0.001 * (step + 1) for step in range(10)])
    assert schedule.lr(9, 0.0) == pytest.approx(0.01)
    assert schedule.lr(50, 0.0) == pytest.approx(0.01)


def test_inverse_sqrt_follows_vaswani_et_al() -> None:
    """lr * min(step / warmup, sqrt(warmup / step)), steps counted from 1."""
    schedule = LearningRateSchedule("inverse_sqrt", 0.002, warmup_steps=100, min_lr=1e-4)
    assert schedule.lr(0, 0.0) == pytest.approx(0.002 / 100)
    assert schedule.lr(99, 0.5) == pytest.approx(0.002)
    assert schedule.lr(399, 0.5) == pytest.approx(0.002 * math.sqrt(100 / 400))
    assert schedule.lr(10**6, 1.0) == pytest.approx(1e-4)  # never below min_lr
    lrs = [schedule.lr(step, 0.0) for step in range(100, 1000)]
    assert lrs == sorted(lrs, reverse=True)


def test_warmup_cosine_endpoints() -> None:
    schedule = LearningRateSchedule("warmup_cosine", 0.01, warmup_steps=5, min_lr=0.001)
    assert schedule.lr(5, 0.0) == pytest.approx(0.01)
    assert schedule.lr(100, 0.5) == pytest.approx(0.0055)
    assert schedule.lr(1000, 1.0) == pytest.approx(0.001)
    # progress outside [0, 1] is clamped
    assert schedule.lr(1000, 1.5) == pytest.approx(0.001)
    assert schedule.lr(10, -0.5) == pytest.approx(0.01)


def test_warmup_cosine_reaches_its_peak_and_decays_over_the_budget_left() -> None:
    """Warmup using 45% of the budget: the peak is still base_lr, and the cosine spans the rest."""
    schedule = LearningRateSchedule("warmup_cosine", 0.01, warmup_steps=10, min_lr=0.001)
    lrs = [schedule.lr(step, step / 20) for step in range(21)]
    assert max(lrs) == pytest.approx(0.01)
    assert lrs[9] == pytest.approx(0.01)  # the last warmup step, at 45% of the budget
    halfway = 9 / 20 + (1 - 9 / 20) / 2
    assert schedule.lr(15, halfway) == pytest.approx(0.0055)
    assert lrs[20] == pytest.approx(0.001)
    assert lrs[9:] == sorted(lrs[9:], reverse=True)
    resumed = LearningRateSchedule("warmup_cosine", 0.01, warmup_steps=10, min_lr=0.001)
    resumed.load_state_dict(json.loads(json.dumps(schedule.state_dict())))
    assert [resumed.lr(step, step / 20) for step in range(10, 21)] == lrs[10:]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    base=st.floats(1e-5, 1.0),
    min_fraction=st.floats(0.0, 1.0),
    progress=st.floats(0.0, 1.0),
    step=st.integers(0, 10_000),
)
def test_cosine_formula_and_monotone(base: float, min_fraction: float, progress: float, step: int) -> None:
    min_lr = base * min_fraction
    schedule = LearningRateSchedule("warmup_cosine", base, min_lr=min_lr)
    expected = min_lr + (base - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    assert schedule.lr(step, progress) == pytest.approx(expected)
    assert min_lr - 1e-12 <= schedule.lr(step, progress) <= base + 1e-12
    assert schedule.lr(step, min(1.0, progress + 0.1)) <= schedule.lr(step, progress) + 1e-12


@pytest.mark.parametrize(
    ("higher_is_better", "scores"),
    [(True, [10.0, 9.0, 10.0, 8.0]), (False, [10.0, 11.0, 10.0, 12.0])],
)
def test_plateau_reduces_after_patience_plus_one_bad_validations(
    higher_is_better: bool, scores: list[float]
) -> None:
    schedule = LearningRateSchedule(
        "plateau", 0.01, factor=0.5, patience=2, higher_is_better=higher_is_better
    )
    for score in scores[:3]:  # the first sets the best; two bad ones are within patience
        schedule.observe(score)
        assert schedule.lr(0, 0.0) == 0.01
    schedule.observe(scores[3])  # the third bad one in a row
    assert schedule.lr(0, 0.0) == pytest.approx(0.005)
    assert schedule.bad_validations == 0
    for _ in range(3):
        schedule.observe(scores[3])
    assert schedule.lr(0, 0.0) == pytest.approx(0.0025)


@pytest.mark.parametrize(("higher_is_better", "better", "worse"), [(True, 2.0, 0.5), (False, 0.5, 2.0)])
def test_plateau_improvement_resets_the_count(higher_is_better: bool, better: float, worse: float) -> None:
    schedule = LearningRateSchedule("plateau", 0.01, patience=1, higher_is_better=higher_is_better)
    for score in [1.0, worse, better, worse, better * better, worse]:
        schedule.observe(score)
    assert schedule.lr(0, 0.0) == 0.01
    assert schedule.best == better * better
    schedule.observe(worse)
    assert schedule.lr(0, 0.0) == pytest.approx(0.005)


def test_plateau_equal_score_is_not_an_improvement() -> None:
    schedule = LearningRateSchedule("plateau", 0.01, patience=0)
    schedule.observe(1.0)
    schedule.observe(1.0)
    assert schedule.lr(0, 0.0) == pytest.approx(0.005)


def test_plateau_never_goes_below_min_lr() -> None:
    schedule = LearningRateSchedule("plateau", 0.01, factor=0.1, patience=0, min_lr=0.0005)
    for _ in range(10):
        schedule.observe(0.0)
    assert schedule.lr(0, 0.0) == 0.0005


@pytest.mark.parametrize("kind", ["constant", "warmup_cosine"])
def test_observe_only_matters_for_plateau(kind: str) -> None:
    schedule = LearningRateSchedule(kind, 0.01, patience=0)  # type: ignore[arg-type]
    before = [schedule.lr(s, s / 10) for s in range(10)]
    for score in [3.0, 2.0, 1.0, 0.0]:
        schedule.observe(score)
    assert [schedule.lr(s, s / 10) for s in range(10)] == before


def test_state_dict_round_trip() -> None:
    schedule = LearningRateSchedule("plateau", 0.01, patience=1, higher_is_better=False)
    for score in [5.0, 4.0, 4.5, 4.6, 4.7]:
        schedule.observe(score)
    state = json.loads(json.dumps(schedule.state_dict()))  # JSON-able, as in a checkpoint
    resumed = LearningRateSchedule("plateau", 0.01, patience=1, higher_is_better=False)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == schedule.state_dict()
    for score in [4.8, 3.0, 3.5, 3.6, 3.7, 3.8]:
        schedule.observe(score)
        resumed.observe(score)
        assert resumed.lr(0, 0.0) == schedule.lr(0, 0.0)
    assert resumed.state_dict() == schedule.state_dict()
    assert schedule.lr(0, 0.0) < 0.01  # the sequence did reduce the rate
