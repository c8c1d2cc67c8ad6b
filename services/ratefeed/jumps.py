"""Whether a provider's new rate is published, held as a jump, or completes a held move.

Pure: the accepted baseline, the held quotes and the candidate in, a JumpOutcome out.

- Time. A move is judged against the same provider's previous quote. Quotes at most
  `gap_after_days` calendar days apart are consecutive business days (Friday to
  Monday is 3; the Bank of Russia's Saturday to Tuesday too). After a longer gap
  (a holiday, an outage, the first poll after downtime, a backfill that starts
  late) the change is not a daily change: `change_pct` is None, the quote carries
  the `gap` flag, and the jump bound widens with the square root of the gap, as
  the spread of a random walk does (two years after 2023-09-27, 5 % becomes 82 %).
- Order. A document older than the accepted rate (a late provider, a backfill run
  after the live poll, a correction of a past day) is published for history, compared
  with the provider's latest published quote before it, if any; and the quote after
  it, which was compared with something older, with a `gap` or with the corrected
  day's old rate, is compared with it now and published again (`follow_up`), with the
  accepted rate's memory of its previous quote, so a quote's change never depends on
  the arrival order. A late rate beyond the bound of both published neighbours is a
  spike, not a level change (with one neighbour the two cannot be told apart, and a
  backfill before a devaluation would be held whole):
  unless another provider confirms it, it is held (one dead letter, once), the quote
  after it stays as it is, and `caravan ratefeed release` publishes it (another
  document of that day replaces it). Held late quotes are the only held ones older
  than the accepted rate, as the baseline moves only past the held quotes of a move:
  the two are told apart by date.
- Jumps. A move beyond the bound is held (one dead letter, once) unless another
  provider states the same rate that day. It is accepted when another provider
  confirms it, or when the provider's next `confirmations` as-of dates stay beyond
  the bound on the same side of the old level; then every held quote is published
  in as-of order and the last becomes the baseline. A quote back within the bound
  of the old level ends the hold: the held move was a blip (its dead letters stay
  for an operator, who can still release them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from services.ratefeed.rates import LastRate, change_pct

GAP = "gap"
CONFIRMED = "jump:confirmed"
REPEATED = "jump:repeated"
RELEASED = "jump:released"


@dataclass(frozen=True)
class JumpPolicy:
    jump_pct: Decimal
    gap_after_days: int
    confirmations: int


@dataclass(frozen=True)
class Held:
    as_of: date
    rate: Decimal


@dataclass(frozen=True)
class Step:
    """One quote to publish, with what it is compared against."""

    as_of: date
    rate: Decimal
    previous_as_of: date | None
    previous_rate: Decimal | None
    change_pct: Decimal | None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class JumpOutcome:
    publish: tuple[Step, ...] = ()
    baseline: LastRate | None = None
    """The new accepted rate to remember, or None to leave the stored one."""
    held: tuple[Held, ...] | None = None
    """The held quotes from now on, or None to leave them as they are."""
    quarantine: str | None = None
    """Why the candidate is held: the reason of its one dead letter."""
    held_step: Step | None = None
    """The candidate as it would be published now, for that dead letter."""


def days_between(earlier: date, later: date) -> int:
    return (later - earlier).days


def is_gap(earlier: date, later: date, policy: JumpPolicy) -> bool:
    return days_between(earlier, later) > policy.gap_after_days


def bound(earlier: date, later: date, policy: JumpPolicy) -> Decimal:
    """The largest move in percent that passes unconfirmed between the two dates."""
    if not is_gap(earlier, later, policy):
        return policy.jump_pct
    widening = (Decimal(days_between(earlier, later)) / policy.gap_after_days).sqrt()
    return policy.jump_pct * widening


def step(
    previous: Held | None,
    as_of: date,
    rate: Decimal,
    policy: JumpPolicy,
    flags: tuple[str, ...] = (),
) -> Step:
    """The quote as published after `previous` (None: a first quote, without change)."""
    if previous is None:
        return Step(as_of, rate, None, None, None, flags)
    gap = is_gap(previous.as_of, as_of, policy)
    return Step(
        as_of,
        rate,
        previous.as_of,
        previous.rate,
        None if gap else change_pct(rate, previous.rate),
        (GAP, *flags) if gap else flags,
    )


def chain(
    baseline: Held | None, quotes: list[Held], policy: JumpPolicy, flag: str
) -> tuple[Step, ...]:
    """Quotes published in as-of order, each compared with the one before."""
    steps = []
    previous = baseline
    for quote in quotes:
        steps.append(step(previous, quote.as_of, quote.rate, policy, (flag,)))
        previous = quote
    return tuple(steps)


def _remembered(quotes: list[Held], before: Held | None) -> LastRate:
    last = quotes[-1]
    previous = quotes[-2] if len(quotes) > 1 else before
    return LastRate(
        last.as_of,
        last.rate,
        previous.as_of if previous else None,
        previous.rate if previous else None,
    )


def assess(
    last: LastRate | None,
    held: tuple[Held, ...],
    as_of: date,
    rate: Decimal,
    confirmed: bool,
    policy: JumpPolicy,
    earlier: Held | None = None,
    later: Held | None = None,
) -> JumpOutcome:
    """What to do with a provider's rate of `as_of` for one currency; `earlier` and
    `later` are the provider's published quotes next before and after `as_of`, which a
    late document is judged against."""
    if not confirmed and any(h.as_of == as_of and h.rate == rate for h in held):
        return JumpOutcome()  # held already: its dead letter exists, a re-poll adds none
    # Held already and now confirmed (the confirming provider read after it): judged
    # again, so it is published at once rather than when the move repeats.
    if last is None:
        return JumpOutcome((step(None, as_of, rate, policy),), LastRate(as_of, rate), ())
    if as_of < last.as_of:
        return _late(held, as_of, rate, confirmed, policy, earlier, later)
    late = tuple(h for h in held if h.as_of < last.as_of)
    moving = tuple(h for h in held if last.as_of <= h.as_of < as_of)
    # Held after this day (the accepted day corrected, a past day read again): no part
    # of its move, and kept, or they would be neither published nor releasable.
    after = tuple(h for h in held if h.as_of > as_of)
    before: Held | None = Held(last.as_of, last.rate)
    if as_of == last.as_of:
        if rate == last.rate:
            return JumpOutcome()
        # A correction of the baseline's day: judged against the day before it.
        before = (
            Held(last.previous_as_of, last.previous_rate)
            if last.previous_as_of and last.previous_rate
            else None
        )
    moved = _move(before, moving, as_of, rate, confirmed, policy)
    return _keeping(late, *_then(moved, after, policy))


def _then(
    outcome: JumpOutcome, after: tuple[Held, ...], policy: JumpPolicy
) -> tuple[JumpOutcome, tuple[Held, ...]]:
    """A move accepted up to a day with quotes held after it (a confirmation read late):
    those within the bound of the quote before them are published after it, in order,
    and the rest stay held. Left held, the next ordinary quote ended their hold as a
    blip, and none of them was ever published or releasable (review)."""
    if outcome.baseline is None or not outcome.publish or not after:
        return outcome, after
    accepted = Held(outcome.baseline.as_of, outcome.baseline.rate)
    previous = accepted
    steps = list(outcome.publish)
    followed = 0
    for quote in after:
        if _beyond(previous, quote.as_of, quote.rate, policy):
            break
        steps.append(step(previous, quote.as_of, quote.rate, policy))
        previous, followed = quote, followed + 1
    if not followed:
        return outcome, after
    baseline = _remembered(list(after[:followed]), accepted)
    return replace(outcome, publish=tuple(steps), baseline=baseline), after[followed:]


def _keeping(late: tuple[Held, ...], outcome: JumpOutcome, after: tuple[Held, ...]) -> JumpOutcome:
    """The outcome of a move, the held quotes before and after it kept: they are no part of it."""
    if outcome.held is None:
        return outcome
    return replace(outcome, held=(*late, *outcome.held, *after))


def _late(
    held: tuple[Held, ...],
    as_of: date,
    rate: Decimal,
    confirmed: bool,
    policy: JumpPolicy,
    earlier: Held | None,
    later: Held | None,
) -> JumpOutcome:
    """A document older than the accepted rate, for history: published, compared with
    `earlier`, unless it is beyond the bound of every published neighbour it has."""
    others = tuple(h for h in held if h.as_of != as_of)
    # A held quote of the same day is replaced by this one, whatever becomes of it.
    replaced = others if len(others) < len(held) else None
    neighbours = [(side, n) for side, n in (("before", earlier), ("after", later)) if n is not None]
    # Beyond only one of them, it is a level change in history, not a blip; with one
    # neighbour, a backfill's first day before a devaluation would be taken for a spike.
    if len(neighbours) < 2 or any(not _beyond(n, as_of, rate, policy) for _, n in neighbours):
        return JumpOutcome((step(earlier, as_of, rate, policy),), held=replaced)
    if confirmed:
        return JumpOutcome((step(earlier, as_of, rate, policy, (CONFIRMED,)),), held=replaced)
    moves = " and ".join(
        f"{change_pct(rate, n.rate):.4f}% from {n.rate} ({n.as_of}, the quote {side} it, "
        f"bound {_bound_apart(n.as_of, as_of, policy):.2f}%)"
        for side, n in neighbours
    )
    reason = (
        f"late quote {rate} ({as_of}) moved {moves}, and no other provider confirms it: "
        "a spike, not a level change; published on `caravan ratefeed release`"
    )
    return JumpOutcome(
        held=(*others, Held(as_of, rate)),
        quarantine=reason,
        held_step=step(earlier, as_of, rate, policy),
    )


def _bound_apart(one: date, other: date, policy: JumpPolicy) -> Decimal:
    return bound(min(one, other), max(one, other), policy)


def _beyond(neighbour: Held, as_of: date, rate: Decimal, policy: JumpPolicy) -> bool:
    move = change_pct(rate, neighbour.rate)
    return abs(move) > _bound_apart(neighbour.as_of, as_of, policy)


def follow_up(
    last: LastRate,
    late: Held,
    after: Held,
    compared_with: Held | None,
    flags: tuple[str, ...],
    policy: JumpPolicy,
) -> JumpOutcome:
    """The quote `after` a late one, compared with it now, and the accepted rate `last`
    remembering the late one as its previous quote when `after` is it. Nothing when
    `after` is compared with the late quote already (`compared_with`, the same day and
    rate), or with a later day."""
    if compared_with is not None and (compared_with.as_of > late.as_of or compared_with == late):
        return JumpOutcome()
    # Its own doubts stay (a jump accepted, a disagreement, added back by the caller);
    # whether it follows a gap is judged again.
    kept = tuple(f for f in flags if f != GAP and not f.startswith("disagrees:"))
    followed = step(late, after.as_of, after.rate, policy, kept)
    # So that a correction of the accepted rate's day is judged against the late quote.
    baseline = (
        LastRate(last.as_of, last.rate, late.as_of, late.rate)
        if after.as_of == last.as_of
        else None
    )
    return JumpOutcome((followed,), baseline)


def _move(
    before: Held | None,
    held: tuple[Held, ...],
    as_of: date,
    rate: Decimal,
    confirmed: bool,
    policy: JumpPolicy,
) -> JumpOutcome:
    candidate = Held(as_of, rate)
    if before is None:
        return JumpOutcome((step(None, as_of, rate, policy),), LastRate(as_of, rate), ())
    move = change_pct(rate, before.rate)
    if abs(move) <= bound(before.as_of, as_of, policy):
        # Within the bound of the accepted level: anything held was a blip.
        return JumpOutcome(
            (step(before, as_of, rate, policy),), _remembered([candidate], before), ()
        )
    same_side = [h for h in held if (h.rate > before.rate) == (rate > before.rate)]
    moved = [*same_side, candidate] if len(same_side) == len(held) else [candidate]
    if confirmed or len(moved) > policy.confirmations:
        flag = CONFIRMED if confirmed else REPEATED
        return JumpOutcome(chain(before, moved, policy, flag), _remembered(moved, before), ())
    reason = (
        f"moved {move:.4f}% from {before.rate} ({before.as_of}) to {rate} ({as_of}), "
        f"beyond the {bound(before.as_of, as_of, policy):.2f}% bound, and no other "
        f"provider confirms it; published once the next {policy.confirmations} "
        "as-of dates repeat it, or on `caravan ratefeed release`"
    )
    return JumpOutcome(
        held=tuple(moved), quarantine=reason, held_step=step(before, as_of, rate, policy)
    )


def release(
    last: LastRate | None,
    held: tuple[Held, ...],
    as_of: date,
    policy: JumpPolicy,
    earlier: Held | None = None,
) -> JumpOutcome:
    """An operator accepts the held quote of `as_of`: it and the held ones of its move
    before it; a late one alone, for history, compared with `earlier` (as `assess`)."""
    if last is not None and as_of < last.as_of:
        late = [h for h in held if h.as_of == as_of]
        if not late:
            return JumpOutcome()
        return JumpOutcome(
            (step(earlier, as_of, late[0].rate, policy, (RELEASED,)),),
            held=tuple(h for h in held if h.as_of != as_of),
        )
    released = [h for h in held if h.as_of <= as_of and (last is None or h.as_of >= last.as_of)]
    if not released or released[-1].as_of != as_of:
        return JumpOutcome()
    before = Held(last.as_of, last.rate) if last else None
    # Released behind a newer accepted rate (the level came back meanwhile), it is
    # history: published, and the newer rate stays the baseline.
    moves_on = last is None or as_of > last.as_of
    return JumpOutcome(
        chain(before, released, policy, RELEASED),
        _remembered(released, before) if moves_on else None,
        tuple(h for h in held if h not in released),
    )
