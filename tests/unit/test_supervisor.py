"""The restart policy of `caravan run`: when a service that exited starts again."""

from __future__ import annotations

import pytest

from services.supervisor import RestartPolicy, describe_exit, plan_restart, restart_delay

# The policy `caravan run` uses: the README promises its delays.
POLICY = RestartPolicy()


@pytest.mark.parametrize(
    ("streak", "low", "high"),
    [
        (1, 0.5, 1.0),
        (2, 1.0, 2.0),
        (3, 2.0, 4.0),
        (5, 8.0, 16.0),
        (6, 15.0, 30.0),
    ],
)
def test_the_delay_doubles_with_each_restart_in_a_row_up_to_the_cap(
    streak: int, low: float, high: float
) -> None:
    for _ in range(20):
        assert low <= restart_delay(POLICY, streak) <= high


def test_a_service_that_never_stays_up_waits_the_cap_however_long_it_fails() -> None:
    assert 15.0 <= restart_delay(POLICY, 100_000) <= 30.0


def test_jitter_spreads_services_that_fell_together() -> None:
    delays = {restart_delay(POLICY, 1) for _ in range(20)}
    assert len(delays) > 1


def test_quick_exits_lengthen_the_streak() -> None:
    first = plan_restart(POLICY, previous_streak=0, uptime=0.5)
    second = plan_restart(POLICY, previous_streak=first.streak, uptime=3.0)
    assert (first.streak, second.streak) == (1, 2)
    assert 1.0 <= second.delay <= 2.0


def test_a_run_that_lasted_starts_the_streak_over() -> None:
    restart = plan_restart(POLICY, previous_streak=6, uptime=60.0)
    assert restart.streak == 1
    assert 0.5 <= restart.delay <= 1.0


@pytest.mark.parametrize(
    ("returncode", "said"),
    [
        (0, "exit status 0"),
        (1, "exit status 1"),
        (-9, "killed by SIGKILL"),
        (-15, "killed by SIGTERM"),
        (-50, "killed by signal 50"),
    ],
)
def test_exits_are_described_as_a_person_reads_them(returncode: int, said: str) -> None:
    assert describe_exit(returncode) == said
