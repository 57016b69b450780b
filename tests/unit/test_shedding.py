"""The rule that sheds snapshots when a process is out of CPU (server/shedding.py)."""

from __future__ import annotations

from server.shedding import CALM, MOST, STRIKES, Load, decide


def test_a_process_under_its_budget_changes_nothing() -> None:
    assert decide(0.5, [Load(1, 0.3), Load(1, 0.1)], high=0.9) is None


def test_over_the_budget_the_instance_whose_snapshots_cost_most_halves_its_rate() -> None:
    assert decide(0.95, [Load(1, 0.1), Load(1, 0.5), Load(1, 0.2)], high=0.9) == (1, 2)
    # one step a second: the next second, if still over, it halves again
    assert decide(0.95, [Load(1, 0.1), Load(2, 0.25), Load(1, 0.2)], high=0.9) == (1, 4)


def test_an_instance_sheds_at_most_to_a_quarter_then_the_next_one_does() -> None:
    assert decide(0.99, [Load(MOST, 0.4), Load(1, 0.1)], high=0.9) == (1, 2)
    assert decide(0.99, [Load(MOST, 0.4), Load(MOST, 0.1)], high=0.9) is None
    # an instance with nobody to send to has nothing to shed
    assert decide(0.99, [Load(1, 0.0)], high=0.9) is None


def test_an_instance_behind_its_tick_rate_sheds_even_when_the_process_cpu_looks_low() -> None:
    # the core is someone else's: this process gets little CPU and its ticks come late
    assert decide(0.4, [Load(1, 0.2, behind=True), Load(1, 0.3)], high=0.9) == (1, 2)


def test_it_steps_back_only_after_calm_seconds() -> None:
    assert decide(0.2, [Load(2, 0.1)], high=0.9, calm=CALM - 1) is None
    assert decide(0.2, [Load(2, 0.1)], high=0.9, calm=CALM) == (0, 1)


def test_it_steps_back_only_when_the_process_would_stay_under_the_budget() -> None:
    # at a quarter its snapshots take 0.2 of a core: at half they would take 0.4
    assert decide(0.7, [Load(4, 0.2)], high=0.9) is None  # 0.7 + 0.2 is not under 0.9 - margin
    assert decide(0.55, [Load(4, 0.2)], high=0.9) == (0, 2)
    # the cheapest step back first
    assert decide(0.3, [Load(2, 0.3), Load(4, 0.05)], high=0.9) == (1, 2)


def test_one_slow_second_is_not_a_trend() -> None:
    assert decide(0.95, [Load(1, 0.5)], high=0.9, strikes=STRIKES - 1) is None
    assert decide(0.5, [Load(1, 0.5, behind=True)], high=0.9, strikes=STRIKES - 1) is None
    assert decide(0.95, [Load(1, 0.5)], high=0.9, strikes=STRIKES) == (0, 2)


def test_zero_means_never() -> None:
    assert decide(5.0, [Load(1, 0.5)], high=0.0) is None
