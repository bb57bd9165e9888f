"""The leader state machine, as a table: a Lease read at an instant -> what to write, and who may write Git.

Pure (the clock is a number passed in). D = 10 s: a leader writes until 5 s after its last
successful write started; a follower takes over a record unchanged for 6 s.
"""

from __future__ import annotations

import pytest

from gitcanary.service.leadership import Action, Leadership, Record

D = 10.0
ME, OTHER = "me_1", "other_2"


def rec(holder: str, version: str) -> Record:
    return Record(holder, version)


# (steps, expected action of the last read, leads at the end)
# a step is ("read", record or None, now) or ("wrote", record, started) or ("conflict",) or ("at", now)
CASES = {
    "no lease: create it": ([("read", None, 0.0)], Action.CREATE, False),
    "created: leads until half the duration": (
        [("read", None, 0.0), ("wrote", rec(ME, "1"), 0.0), ("at", 4.9)],
        Action.CREATE,
        True,
    ),
    "past the renew deadline without a renewal: stops writing": (
        [("read", None, 0.0), ("wrote", rec(ME, "1"), 0.0), ("at", 5.0)],
        Action.CREATE,
        False,
    ),
    "own record: renew, still leading from the last write": (
        [("read", None, 0.0), ("wrote", rec(ME, "1"), 0.0), ("read", rec(ME, "1"), 1.0)],
        Action.RENEW,
        True,
    ),
    "renewed: the deadline moves to the renewal's start": (
        [
            ("wrote", rec(ME, "1"), 0.0),
            ("read", rec(ME, "1"), 4.0),
            ("wrote", rec(ME, "2"), 4.0),
            ("at", 8.9),
        ],
        Action.RENEW,
        True,
    ),
    "own record after a restart (never written): renew, but not leading yet": (
        [("read", rec(ME, "7"), 0.0)],
        Action.RENEW,
        False,
    ),
    "held by another, fresh: wait": (
        [("read", rec(OTHER, "3"), 0.0), ("read", rec(OTHER, "3"), 5.9)],
        Action.WAIT,
        False,
    ),
    "held by another, renewed meanwhile: the wait starts again": (
        [("read", rec(OTHER, "3"), 0.0), ("read", rec(OTHER, "4"), 5.0), ("read", rec(OTHER, "4"), 10.9)],
        Action.WAIT,
        False,
    ),
    "held by another, unchanged for 0.6 D: take it": (
        [("read", rec(OTHER, "3"), 0.0), ("read", rec(OTHER, "3"), 6.0)],
        Action.TAKE,
        False,
    ),
    "released (empty holder): take it at once": ([("read", rec("", "9"), 0.0)], Action.TAKE, False),
    "taken: leads": (
        [
            ("read", rec(OTHER, "3"), 0.0),
            ("read", rec(OTHER, "3"), 6.0),
            ("wrote", rec(ME, "4"), 6.0),
            ("at", 6.1),
        ],
        Action.TAKE,
        True,
    ),
    "take lost the race (409): not leading": (
        [("read", rec(OTHER, "3"), 0.0), ("read", rec(OTHER, "3"), 6.0), ("conflict",)],
        Action.TAKE,
        False,
    ),
    "leader sees another's name: stops at once, before its own deadline": (
        [("wrote", rec(ME, "1"), 0.0), ("read", rec(OTHER, "2"), 1.0)],
        Action.WAIT,
        False,
    ),
    "renewal conflicts (someone wrote first): stops at once": (
        [("wrote", rec(ME, "1"), 0.0), ("read", rec(ME, "1"), 1.0), ("conflict",)],
        Action.RENEW,
        False,
    ),
    "lease deleted under the leader: create again, not leading until it succeeds": (
        [("wrote", rec(ME, "1"), 0.0), ("read", None, 1.0)],
        Action.CREATE,
        False,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_leadership_table(name: str) -> None:
    steps, expected_action, expected_leads = CASES[name]
    state = Leadership(ME, D)
    action = None
    now = 0.0
    for step in steps:
        if step[0] == "read":
            _, record, now = step
            state, action = state.observe(record, now)
        elif step[0] == "wrote":
            _, record, now = step
            state = state.wrote(record, now)
        elif step[0] == "conflict":
            state = state.conflicted()
        else:
            now = step[1]
    if action is not None:
        assert action is expected_action
    assert state.leads(now) is expected_leads


def test_the_old_leader_stops_before_a_follower_may_take_over() -> None:
    """For any instant of the last renewal, the leader's deadline precedes the follower's takeover."""
    for last_write in (0.0, 0.3, 2.5, 9.99):
        leader = Leadership(ME, D).wrote(rec(ME, "5"), last_write)
        # The follower read that very record no earlier than the write started.
        follower, _ = Leadership(OTHER, D).observe(rec(ME, "5"), last_write)
        takeover = next(
            t / 100
            for t in range(int(last_write * 100), 10_000)
            if follower.observe(rec(ME, "5"), t / 100)[1] is Action.TAKE
        )
        stop = next(t / 100 for t in range(int(last_write * 100), 10_000) if not leader.leads(t / 100))
        assert stop < takeover <= last_write + D


def test_a_follower_reads_again_exactly_when_it_may_take_over() -> None:
    """Polling every RETRY alone would take over up to a RETRY late: the next read lands on the instant."""
    follower, _ = Leadership(ME, D).observe(rec(OTHER, "3"), 2.0)
    assert follower.next_read(2.0) == pytest.approx(1.0)  # a RETRY while the takeover is far
    assert follower.next_read(7.5) == pytest.approx(0.5)  # 2.0 + 0.6 D = 8.0: read then, not at 8.5
    _, action = follower.observe(rec(OTHER, "3"), 7.5 + follower.next_read(7.5))
    assert action is Action.TAKE
    assert follower.next_read(8.0) == pytest.approx(0.1)  # due (a failed read): a tenth of a RETRY, no spin
    leader = Leadership(ME, D).wrote(rec(ME, "1"), 0.0)
    assert leader.next_read(0.0) == pytest.approx(1.0)  # a leader renews every RETRY
    assert Leadership(ME, D).next_read(0.0) == pytest.approx(1.0)  # nothing read yet
