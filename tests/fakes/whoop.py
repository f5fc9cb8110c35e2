"""In-memory fakes for whoop/: the rate budget's state store and a clock moved by hand."""

from __future__ import annotations

from dataclasses import replace

from whoop_bridge.models.budget import SAME_WINDOW_SECONDS, BudgetState


class ManualClock:
    """The budget's clock, moved only by `sleep` (recorded) and by the test (`now`)."""

    def __init__(self, start: float = 1_795_300_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def real_seconds(self, seconds: float) -> float:
        return seconds


class InMemoryBudgetStates:
    """`BudgetStateStore` in a dict, with the conditions of store/budget_store.py.

    `lose_races` makes that many next takes fail as if another Lambda had written first
    (its version moves on, as a real concurrent take would). `writes` counts stored changes.
    """

    def __init__(self) -> None:
        self.states: dict[str, BudgetState] = {}
        self.lose_races = 0
        self.writes = 0
        self.reads = 0
        self.claims = 0

    def get(self, app: str) -> BudgetState | None:
        self.reads += 1
        return self.states.get(app)

    def create(self, app: str, state: BudgetState) -> None:
        if app not in self.states:
            self.states[app] = state
            self.writes += 1

    def take(self, app: str, read: BudgetState, taken: BudgetState) -> bool:
        stored = self.states[app]
        if self.lose_races:
            self.lose_races -= 1
            self.states[app] = replace(stored, version=stored.version + 1)
            return False
        if stored.version != read.version:
            return False
        self.states[app] = replace(taken, version=read.version + 1, whoop_remaining=stored.whoop_remaining - 1)
        self.writes += 1
        return True

    def claim(self, app: str, read: BudgetState, waiting: BudgetState) -> bool:
        stored = self.states[app]
        if stored.version != read.version:
            return False
        self.states[app] = replace(stored, version=read.version + 1, priority_seen_at=waiting.priority_seen_at)
        self.writes += 1
        self.claims += 1
        return True

    def note(self, app: str, remaining: int, reset_at: float, *, hold: bool) -> None:
        stored = self.states.get(app)
        newer = stored is not None and (
            stored.whoop_reset_at < reset_at - SAME_WINDOW_SECONDS
            or stored.whoop_remaining > remaining
            or (hold and stored.hold_until < reset_at)
        )
        if stored is None or not newer:
            return
        self.states[app] = replace(
            stored,
            whoop_remaining=remaining,
            whoop_reset_at=reset_at,
            version=stored.version + 1,
            hold_until=reset_at if hold else stored.hold_until,
        )
        self.writes += 1
