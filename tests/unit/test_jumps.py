"""jumps.assess and jumps.release: time-aware jump checks and holds that resolve, as pure rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.ratefeed.jumps import (
    CONFIRMED,
    GAP,
    RELEASED,
    REPEATED,
    Held,
    JumpPolicy,
    assess,
    bound,
    follow_up,
    release,
)
from services.ratefeed.rates import LastRate, change_pct

POLICY = JumpPolicy(Decimal(5), gap_after_days=3, confirmations=2)
DAY1, DAY2, DAY3 = date(2023, 9, 26), date(2023, 9, 27), date(2023, 9, 28)


def test_first_rate_is_published_without_change_and_becomes_the_baseline() -> None:
    outcome = assess(None, (), DAY2, Decimal("0.0112"), False, POLICY)
    [step] = outcome.publish
    assert (step.change_pct, step.previous_rate, step.flags) == (None, None, ())
    assert outcome.baseline == LastRate(DAY2, Decimal("0.0112"))


def test_the_next_business_day_has_its_daily_change() -> None:
    outcome = assess(LastRate(DAY1, Decimal(100)), (), DAY2, Decimal(101), False, POLICY)
    [step] = outcome.publish
    assert (step.change_pct, step.previous_as_of, step.flags) == (Decimal(1), DAY1, ())
    assert outcome.baseline == LastRate(DAY2, Decimal(101), DAY1, Decimal(100))


def test_friday_to_monday_is_no_gap_but_a_holiday_after_it_is() -> None:
    friday = date(2023, 9, 29)
    monday = assess(
        LastRate(friday, Decimal(100)), (), date(2023, 10, 2), Decimal(101), False, POLICY
    )
    tuesday = assess(
        LastRate(friday, Decimal(100)), (), date(2023, 10, 3), Decimal(101), False, POLICY
    )
    assert monday.publish[0].change_pct == Decimal(1)
    assert tuesday.publish[0].change_pct is None
    assert tuesday.publish[0].flags == (GAP,)
    assert tuesday.publish[0].previous_rate == Decimal(100)


@pytest.mark.parametrize("same", [Decimal(101), Decimal("101.000")])
def test_a_repoll_of_the_same_date_and_rate_is_nothing(same: Decimal) -> None:
    last = LastRate(DAY2, Decimal(101), DAY1, Decimal(100))
    assert assess(last, (), DAY2, same, False, POLICY).publish == ()


def test_a_correction_compares_with_the_day_before_and_keeps_it() -> None:
    last = LastRate(DAY2, Decimal(101), DAY1, Decimal(100))
    outcome = assess(last, (), DAY2, Decimal(102), False, POLICY)
    assert outcome.publish[0].change_pct == Decimal(2)
    assert outcome.baseline == LastRate(DAY2, Decimal(102), DAY1, Decimal(100))


def test_a_correction_of_the_accepted_day_keeps_a_jump_held_after_it() -> None:
    monday, tuesday = date(2023, 9, 25), date(2023, 9, 26)
    last = LastRate(monday, Decimal("0.0100"), date(2023, 9, 22), Decimal("0.0100"))
    jump = Held(tuesday, Decimal("0.0120"))
    corrected = assess(last, (jump,), monday, Decimal("0.01001"), False, POLICY)
    assert [s.as_of for s in corrected.publish] == [monday]
    assert corrected.held == (jump,)
    assert corrected.baseline is not None
    # Still the operator's to release, compared with the corrected day...
    [released] = release(corrected.baseline, (jump,), tuesday, POLICY).publish
    assert (released.previous_rate, released.flags) == (Decimal("0.01001"), (RELEASED,))
    # ...and repeated by the days after it, like any held move.
    wednesday = assess(
        corrected.baseline, (jump,), date(2023, 9, 27), Decimal("0.0120"), False, POLICY
    )
    assert wednesday.held == (jump, Held(date(2023, 9, 27), Decimal("0.0120")))


def test_quotes_held_after_a_move_confirmed_late_follow_it_when_within_the_bound() -> None:
    # Monday accepted; Tuesday and Wednesday held as a jump; Tuesday then confirmed by
    # another provider: Wednesday, within the bound of Tuesday, is published after it.
    # Left held, Thursday ended its hold as a blip and it was never published (review).
    monday, tuesday, wednesday = date(2023, 9, 25), date(2023, 9, 26), date(2023, 9, 27)
    last = LastRate(monday, Decimal(100))
    first = assess(last, (), tuesday, Decimal(120), False, POLICY).held or ()
    held = assess(last, first, wednesday, Decimal(121), False, POLICY).held or ()
    assert held == (Held(tuesday, Decimal(120)), Held(wednesday, Decimal(121)))

    confirmed = assess(last, held, tuesday, Decimal(120), True, POLICY)
    assert [(s.as_of, s.previous_as_of, s.flags) for s in confirmed.publish] == [
        (tuesday, monday, (CONFIRMED,)),
        (wednesday, tuesday, ()),
    ]
    assert confirmed.held == ()
    assert confirmed.baseline == LastRate(wednesday, Decimal(121), tuesday, Decimal(120))
    # One beyond the bound of the quote before it is a move of its own: still held.
    jumped = (Held(tuesday, Decimal(120)), Held(wednesday, Decimal(150)))
    again = assess(last, jumped, tuesday, Decimal(120), True, POLICY)
    assert [s.as_of for s in again.publish] == [tuesday]
    assert again.held == (Held(wednesday, Decimal(150)),)


def test_an_older_date_is_history_and_leaves_the_baseline() -> None:
    last = LastRate(DAY3, Decimal(103), DAY2, Decimal(102))
    outcome = assess(last, (), DAY1, Decimal(100), False, POLICY)
    assert outcome.publish[0].change_pct is None
    assert (outcome.baseline, outcome.held) == (None, None)


def test_two_years_later_ordinary_moves_are_published_with_the_gap_flag() -> None:
    # The case: 2023-09-27 then a document of 2025-12-13, KZT -8.85 %, TJS +18.66 %.
    last = LastRate(date(2023, 9, 27), Decimal("0.0021098"))
    later = date(2025, 12, 13)
    assert bound(date(2023, 9, 27), later, POLICY) > Decimal(80)
    for move in (Decimal("-8.85"), Decimal("18.66")):
        outcome = assess(last, (), later, last.rate * (1 + move / 100), False, POLICY)
        [step] = outcome.publish
        assert (step.change_pct, step.flags, step.previous_as_of) == (None, (GAP,), last.as_of)
        assert outcome.quarantine is None


def test_a_jump_is_held_once_and_a_repoll_adds_no_dead_letter() -> None:
    last = LastRate(date(2017, 9, 4), 1 / Decimal("4210.35"))
    jumped = 1 / Decimal("8100.00")
    outcome = assess(last, (), date(2017, 9, 5), jumped, False, POLICY)
    assert outcome.publish == ()
    assert outcome.quarantine is not None
    assert outcome.quarantine.startswith("moved -48.0204% from")
    assert outcome.held == (Held(date(2017, 9, 5), jumped),)
    assert outcome.held_step is not None
    assert outcome.held_step.change_pct == change_pct(jumped, last.rate)
    again = assess(last, outcome.held, date(2017, 9, 5), jumped, False, POLICY)
    assert (again.publish, again.quarantine, again.held) == ((), None, None)


def test_a_jump_another_provider_confirms_is_published_with_the_held_ones_before_it() -> None:
    last = LastRate(date(2015, 8, 19), 1 / Decimal("188.38"))
    held = (Held(date(2015, 8, 20), 1 / Decimal("255.26")),)
    outcome = assess(last, held, date(2015, 8, 21), 1 / Decimal("252.47"), True, POLICY)
    assert [(s.as_of, s.flags) for s in outcome.publish] == [
        (date(2015, 8, 20), (CONFIRMED,)),
        (date(2015, 8, 21), (CONFIRMED,)),
    ]
    assert outcome.held == ()
    assert outcome.baseline == LastRate(
        date(2015, 8, 21), 1 / Decimal("252.47"), date(2015, 8, 20), 1 / Decimal("255.26")
    )


def test_a_held_jump_another_provider_confirms_later_is_published_on_the_next_read() -> None:
    # The primary's devaluation is read (and held) hours before the other provider's.
    last = LastRate(date(2016, 4, 18), 1 / Decimal("334.41"))
    day, jumped = date(2016, 4, 19), 1 / Decimal("434.73")
    held = assess(last, (), day, jumped, False, POLICY).held or ()
    assert held == (Held(day, jumped),)
    outcome = assess(last, held, day, jumped, True, POLICY)
    [step] = outcome.publish
    assert (step.as_of, step.previous_as_of, step.flags) == (day, last.as_of, (CONFIRMED,))
    assert outcome.quarantine is None  # its one dead letter exists already
    assert outcome.held == ()
    assert outcome.baseline == LastRate(day, jumped, last.as_of, last.rate)


def test_a_jump_repeated_on_the_next_k_dates_completes_the_history_in_order() -> None:
    tenge = {
        day: 1 / Decimal(usd)
        for day, usd in (
            (date(2015, 8, 19), "188.38"),
            (date(2015, 8, 20), "255.26"),
            (date(2015, 8, 21), "252.47"),
            (date(2015, 8, 25), "230.11"),
        )
    }
    days = sorted(tenge)
    last = LastRate(days[0], tenge[days[0]])
    first = assess(last, (), days[1], tenge[days[1]], False, POLICY)
    second = assess(last, first.held or (), days[2], tenge[days[2]], False, POLICY)
    assert second.quarantine is not None
    third = assess(last, second.held or (), days[3], tenge[days[3]], False, POLICY)

    assert [s.as_of for s in third.publish] == days[1:]
    changes = [s.change_pct for s in third.publish]
    assert changes[0] is not None
    assert changes[0].quantize(Decimal("0.01")) == Decimal("-26.20")
    assert changes[1] == change_pct(tenge[days[2]], tenge[days[1]])
    assert changes[2] is None  # Friday to Tuesday: a gap
    assert [s.flags for s in third.publish] == [(REPEATED,), (REPEATED,), (GAP, REPEATED)]
    assert third.baseline is not None
    assert third.baseline.as_of == days[3]


def test_a_move_back_within_the_bound_ends_the_hold() -> None:
    last = LastRate(DAY1, Decimal(100))
    held = (Held(DAY2, Decimal(130)),)
    outcome = assess(last, held, DAY3, Decimal(101), False, POLICY)
    assert outcome.publish[0].previous_as_of == DAY1
    assert outcome.held == ()


def test_a_jump_the_other_way_starts_a_new_hold() -> None:
    last = LastRate(DAY1, Decimal(100))
    outcome = assess(last, (Held(DAY2, Decimal(130)),), DAY3, Decimal(70), False, POLICY)
    assert outcome.held == (Held(DAY3, Decimal(70)),)


def test_release_publishes_up_to_the_quote_and_moves_the_baseline() -> None:
    last = LastRate(date(2017, 9, 4), 1 / Decimal("4210.35"))
    held = (Held(date(2017, 9, 5), 1 / Decimal("8100.00")),)
    outcome = release(last, held, date(2017, 9, 5), POLICY)
    [step] = outcome.publish
    assert step.flags == (RELEASED,)
    assert step.change_pct is not None
    assert step.change_pct.quantize(Decimal("0.01")) == Decimal("-48.02")
    assert outcome.baseline is not None
    assert outcome.baseline.rate == 1 / Decimal("8100.00")
    assert release(last, held, date(2017, 9, 6), POLICY).publish == ()


def test_a_late_level_change_is_history_compared_with_the_quote_before_it() -> None:
    last = LastRate(DAY3, Decimal("0.0121"))
    earlier, later = Held(DAY1, Decimal("0.0100")), Held(DAY3, Decimal("0.0121"))
    # 20 % up on the day before, where the day after stays: a level change, not a blip.
    outcome = assess(last, (), DAY2, Decimal("0.0120"), False, POLICY, earlier, later)
    [step] = outcome.publish
    assert (step.previous_as_of, step.change_pct, step.flags) == (
        DAY1,
        change_pct(Decimal("0.0120"), Decimal("0.0100")),
        (),
    )
    assert (outcome.baseline, outcome.held, outcome.quarantine) == (None, None, None)


# The case: a 100x rate for the day between two ordinary ones, late.
SPIKE = Decimal("1.12")
BEFORE, AFTER = Held(DAY1, Decimal("0.0110")), Held(DAY3, Decimal("0.0112"))
TODAY = LastRate(DAY3, Decimal("0.0112"), DAY1, Decimal("0.0110"))


def test_a_late_spike_beyond_both_neighbours_is_held_once_naming_them() -> None:
    outcome = assess(TODAY, (), DAY2, SPIKE, False, POLICY, BEFORE, AFTER)
    assert (outcome.publish, outcome.baseline) == ((), None)
    assert outcome.held == (Held(DAY2, SPIKE),)
    assert outcome.quarantine is not None
    assert "from 0.0110 (2023-09-26, the quote before it, bound 5.00%)" in outcome.quarantine
    assert "from 0.0112 (2023-09-28, the quote after it, bound 5.00%)" in outcome.quarantine
    assert outcome.held_step is not None
    assert (outcome.held_step.previous_as_of, outcome.held_step.change_pct) == (
        DAY1,
        change_pct(SPIKE, BEFORE.rate),
    )
    again = assess(TODAY, outcome.held, DAY2, SPIKE, False, POLICY, BEFORE, AFTER)
    assert (again.publish, again.quarantine, again.held) == ((), None, None)


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (Held(DAY1, Decimal("0.0110")), Held(DAY3, Decimal("1.10"))),  # the level after it
        (Held(DAY1, Decimal("1.10")), Held(DAY3, Decimal("0.0112"))),  # the level before it
    ],
)
def test_a_late_rate_within_the_bound_of_either_neighbour_is_published(
    earlier: Held, later: Held
) -> None:
    outcome = assess(TODAY, (), DAY2, SPIKE, False, POLICY, earlier, later)
    assert outcome.quarantine is None
    assert [(s.as_of, s.previous_as_of, s.flags) for s in outcome.publish] == [(DAY2, DAY1, ())]


def test_a_late_rate_with_one_published_neighbour_is_history() -> None:
    # A backfill's first day before a devaluation: beyond the one quote after it, and
    # nothing before it to tell a spike from the old level.
    for earlier, later in ((None, AFTER), (BEFORE, None)):
        outcome = assess(TODAY, (), DAY2, SPIKE, False, POLICY, earlier, later)
        assert outcome.quarantine is None
        assert [s.as_of for s in outcome.publish] == [DAY2]


def test_a_late_spike_another_provider_confirms_is_published() -> None:
    outcome = assess(TODAY, (), DAY2, SPIKE, True, POLICY, BEFORE, AFTER)
    [step] = outcome.publish
    assert (step.previous_as_of, step.flags) == (DAY1, (CONFIRMED,))
    assert (outcome.quarantine, outcome.held) == (None, None)


def test_a_held_late_spike_another_provider_confirms_later_is_published() -> None:
    outcome = assess(TODAY, (Held(DAY2, SPIKE),), DAY2, SPIKE, True, POLICY, BEFORE, AFTER)
    assert [(s.as_of, s.flags) for s in outcome.publish] == [(DAY2, (CONFIRMED,))]
    assert (outcome.quarantine, outcome.held) == (None, ())


def test_another_document_of_a_held_late_day_replaces_it() -> None:
    outcome = assess(TODAY, (Held(DAY2, SPIKE),), DAY2, Decimal("0.0111"), False, POLICY, BEFORE)
    assert [s.as_of for s in outcome.publish] == [DAY2]
    assert outcome.held == ()


def test_a_held_late_quote_is_no_part_of_a_move() -> None:
    late = Held(DAY1, SPIKE)
    last = LastRate(DAY2, Decimal(100))
    # A move held after it is neither repeated by it nor ends it...
    jump = assess(last, (late,), DAY3, Decimal(130), False, POLICY)
    assert jump.quarantine is not None
    assert jump.held == (late, Held(DAY3, Decimal(130)))
    # ...and a rate back within the bound, ending the move's hold, keeps it held.
    back = assess(last, jump.held or (), date(2023, 9, 29), Decimal(101), False, POLICY)
    assert back.held == (late,)


def test_release_of_a_late_quote_publishes_it_alone_for_history() -> None:
    move = Held(date(2023, 9, 29), Decimal("0.02"))
    held = (Held(DAY2, SPIKE), move)
    outcome = release(TODAY, held, DAY2, POLICY, BEFORE)
    [step] = outcome.publish
    assert (step.as_of, step.previous_as_of, step.flags) == (DAY2, DAY1, (RELEASED,))
    assert (outcome.baseline, outcome.held) == (None, (move,))
    # Releasing the move publishes the move alone, the late quote stays held.
    moved = release(TODAY, held, move.as_of, POLICY)
    assert [s.as_of for s in moved.publish] == [move.as_of]
    assert moved.held == (Held(DAY2, SPIKE),)


def test_the_quote_after_a_late_one_is_compared_with_it_keeping_its_own_doubts() -> None:
    late, after = Held(DAY2, Decimal("0.0110")), Held(DAY3, Decimal("0.0112"))
    last = LastRate(date(2023, 9, 29), Decimal("0.0113"))
    doubts = (GAP, CONFIRMED, "disagrees:nbk")
    old = Held(date(2023, 1, 2), Decimal("0.0100"))
    [followed] = follow_up(last, late, after, old, doubts, POLICY).publish
    assert (followed.previous_as_of, followed.change_pct, followed.flags) == (
        DAY2,
        change_pct(after.rate, late.rate),
        (CONFIRMED,),
    )
    # Compared with the late quote, or a later day, already: nothing to publish again.
    assert follow_up(last, late, after, late, (), POLICY).publish == ()
    assert follow_up(last, late, after, Held(DAY3, Decimal(1)), (), POLICY).publish == ()
    # A late day still far before it: the gap stays, judged again.
    far = Held(date(2023, 9, 1), Decimal("0.0110"))
    [again] = follow_up(last, far, after, None, (), POLICY).publish
    assert (again.change_pct, again.flags) == (None, (GAP,))


def test_a_correction_of_a_past_day_derives_the_next_day_again() -> None:
    corrected, after = Held(DAY2, Decimal("0.0110")), Held(DAY3, Decimal("0.0112"))
    last = LastRate(date(2023, 9, 29), Decimal("0.0113"), DAY3, Decimal("0.0112"))
    # The day after was compared with the same day's old rate.
    outcome = follow_up(last, corrected, after, Held(DAY2, Decimal("0.0105")), (), POLICY)
    [step] = outcome.publish
    assert (step.previous_rate, step.change_pct) == (
        corrected.rate,
        change_pct(after.rate, corrected.rate),
    )
    assert outcome.baseline is None  # the accepted rate follows another day


def test_the_accepted_rate_remembers_a_corrected_previous_day() -> None:
    stale = LastRate(DAY3, Decimal("0.0112"), DAY2, Decimal("0.0105"))
    corrected, after = Held(DAY2, Decimal("0.0110")), Held(DAY3, Decimal("0.0112"))
    outcome = follow_up(stale, corrected, after, Held(DAY2, Decimal("0.0105")), (), POLICY)
    assert outcome.baseline == LastRate(DAY3, Decimal("0.0112"), DAY2, Decimal("0.0110"))
    # A small correction of the day after: +4.5 % on the corrected rate, +9.5 % on
    # the stale one.
    small = assess(outcome.baseline, (), DAY3, Decimal("0.0115"), False, POLICY)
    assert small.quarantine is None
    assert [s.previous_rate for s in small.publish] == [corrected.rate]
