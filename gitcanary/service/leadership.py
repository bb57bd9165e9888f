"""Who leads a repository: the pure state machine behind the Lease elector (no I/O, clock passed in).

It follows client-go's leader election (`tools/leaderelection/leaderelection.go`): a follower judges
a Lease expired by how long *it* has seen the same record (its own monotonic clock, never the
holder's timestamps), and a leader that cannot renew stops acting before anyone may take over.
The fractions of the lease duration D:
- a leader renews every RETRY (D/10) and believes it leads until RENEW_DEADLINE (D/2) after the
  start of its last successful write: past that it stops writing even if nobody took over;
- a follower takes over a record it has seen unchanged for TAKEOVER_AFTER (0.6 D): later than the
  old leader's own deadline by D/10, a guard for a push in flight and for clocks that run at
  slightly different rates.
A follower watching a holder that went silent reads again exactly when it may take over
(`next_read`), not up to a RETRY later. The dead leader's last renewal was at most one RETRY
before it died, and the follower first read that record at most one RETRY after it was written,
so a replica that dies is replaced within 0.5 to 0.7 D of its death, which leaves the new leader
at least 0.3 D of the duration for its first tick.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

RENEW_DEADLINE = 0.5
TAKEOVER_AFTER = 0.6
RETRY = 0.1


class Action(StrEnum):
    CREATE = "create"  # no Lease yet: create it naming us
    TAKE = "take"  # the holder stopped renewing (or released it): write us in, at its resourceVersion
    RENEW = "renew"  # we hold it: write a new renewTime, at its resourceVersion
    WAIT = "wait"  # someone else holds it and renews


@dataclass(frozen=True)
class Record:
    """What the Lease says: its holder and the resourceVersion that names this exact write."""

    holder: str
    version: str


@dataclass(frozen=True)
class Leadership:
    identity: str
    duration: float  # seconds (the Lease's leaseDurationSeconds)
    seen: Record | None = None  # the last record read
    seen_since: float = 0.0  # when `seen` was first read unchanged (our clock)
    leading_until: float = 0.0  # our clock: no write after this instant unless renewed

    def observe(self, record: Record | None, now: float) -> tuple[Leadership, Action]:
        """Read the Lease (None: there is none) at `now`: the next state and what to write."""
        state = self if record == self.seen else replace(self, seen=record, seen_since=now)
        if record is None:
            return replace(state, leading_until=0.0), Action.CREATE
        if record.holder == self.identity:
            # Our own record, but if we lost track of it (a restart with the same identity, or a
            # renewal whose answer never came) we do not lead until the next write succeeds.
            return state, Action.RENEW
        state = replace(state, leading_until=0.0)  # someone else's name: stop at once
        if not record.holder or now - state.seen_since >= TAKEOVER_AFTER * self.duration:
            return state, Action.TAKE
        return state, Action.WAIT

    def wrote(self, record: Record, started: float) -> Leadership:
        """Our write (create, take or renew) succeeded; `started` is when it was sent."""
        return replace(
            self, seen=record, seen_since=started, leading_until=started + RENEW_DEADLINE * self.duration
        )

    def conflicted(self) -> Leadership:
        """Someone wrote first (409): we do not lead; the next read says who does."""
        return replace(self, leading_until=0.0)

    def leads(self, now: float) -> bool:
        return now < self.leading_until

    def retry_period(self) -> float:
        return RETRY * self.duration

    def next_read(self, now: float) -> float:
        """Seconds until the next read: a RETRY, or less when a follower may take over sooner.

        Never below a tenth of a RETRY, so a read that keeps failing does not spin.
        """
        period = RETRY * self.duration
        if self.seen is None or not self.seen.holder or self.seen.holder == self.identity:
            return period
        takeover = self.seen_since + TAKEOVER_AFTER * self.duration - now
        return max(period / 10, min(period, takeover))
