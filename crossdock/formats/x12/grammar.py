"""A transaction-set definition compiled into a state machine over segment positions.

The parser's state is the stack of open loops, each at a current position (the root at -1 before its
first segment). A segment goes to the first position, at or after the current one, that takes its ID
in the innermost open loop that has one (a loop's trigger at position 0 never recurs inside the same
loop instance, it starts the next instance in the parent); the loops above are closed. Positions only
move forward, so which mandatory positions were skipped or left unfilled follows from the move alone,
and how often a position was used is the length of the current run at it.

Every (state, segment ID) pair therefore has one outcome, a :class:`Step`, computed on first use and
kept: parsing a segment is one dictionary lookup. States are interned per grammar.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from crossdock.formats.x12.definitions import LoopUse, Node, SetDefinition
from crossdock.formats.x12.elements import SegmentRule, compile_segment


class LoopGrammar:
    """One loop of a definition: per position, the segment ID (a loop's: its trigger's), the nested
    loop if any, the segment rule, whether it is mandatory and its maximum use or repeat."""

    __slots__ = ("hierarchical", "id", "ids", "index", "limits", "loops", "mandatory", "root", "rules")

    def __init__(self, loop_id: str, body: list[Node], hierarchical: bool, rules: dict[str, SegmentRule],
                 *, root: bool = False) -> None:
        self.id = loop_id
        self.hierarchical = hierarchical
        self.root = root
        self.ids: list[str] = []
        self.loops: list[LoopGrammar | None] = []
        self.rules: list[SegmentRule] = []
        self.mandatory: list[bool] = []
        self.limits: list[int | None] = []
        for node in body:
            if isinstance(node, LoopUse):
                inner = LoopGrammar(node.loop, node.body, node.hierarchical, rules)
                self.ids.append(node.trigger)
                self.loops.append(inner)
                self.rules.append(inner.rules[0])
                limit = node.repeat
            else:
                self.ids.append(node.segment)
                self.loops.append(None)
                self.rules.append(rules[node.segment])
                limit = node.max
            self.mandatory.append(node.req == "M")
            self.limits.append(None if limit == ">1" else limit)  # type: ignore[arg-type]
        index: dict[str, list[int]] = {}
        for position, segment_id in enumerate(self.ids):
            index.setdefault(segment_id, []).append(position)
        self.index = {segment_id: tuple(positions) for segment_id, positions in index.items()}

    def next_position(self, segment_id: str, current: int) -> int:
        """The first position from `current` on that takes `segment_id` (position 0 of a loop excluded), or -1."""
        lowest = max(current, 0) if self.root else max(current, 1)
        return next((p for p in self.index.get(segment_id, ()) if p >= lowest), -1)

    def unfilled(self, start: int, stop: int | None = None) -> list[tuple[LoopGrammar, int]]:
        """Mandatory positions in [start, stop): never filled, since positions only move forward."""
        end = len(self.ids) if stop is None else stop
        first = max(start, 0 if self.root else 1)
        return [(self, position) for position in range(first, end) if self.mandatory[position]]


Frames = tuple[tuple[LoopGrammar, int], ...]


class Step(NamedTuple):
    """What one segment does in one state (a tuple, so that the parser unpacks it in one go).

    `closed` loops are closed (innermost first); `missing` lists the mandatory positions passed over
    or left unfilled; the segment goes to `position` of `owner`, the loop now innermost, continuing a
    run there when `same` (`overflow` is the run length that first exceeds the position's maximum use
    or repeat, -1 when unbounded); `opens` is the loop it starts, if any; `rule` checks its elements;
    `next` is the state after it.
    """

    closed: int
    missing: tuple[tuple[LoopGrammar, int], ...]
    same: bool
    overflow: int
    opens: LoopGrammar | None
    rule: SegmentRule
    next: State
    owner: LoopGrammar
    position: int


def _step(closed: int, owner: LoopGrammar, position: int, same: bool, missing: list[tuple[LoopGrammar, int]],
          next_state: State) -> Step:
    limit = owner.limits[position]
    return Step(closed, tuple(missing), same, limit + 1 if limit is not None else -1, owner.loops[position],
                owner.rules[position], next_state, owner, position)


class State(dict[str, "Step | None"]):
    """An interned stack of (loop, position) pairs; as a dict, the steps taken from it so far by ID."""

    __slots__ = ("frames", "unfilled")

    def __init__(self, frames: Frames) -> None:
        super().__init__()
        self.frames = frames
        self.unfilled = [pair for grammar, position in reversed(frames) for pair in grammar.unfilled(position + 1)]
        """Mandatory positions left unfilled if the set ended here, innermost loop first."""

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


class Grammar:
    """A definition compiled for parsing; :meth:`of` builds it once per definition."""

    _cache: ClassVar[dict[int, tuple[SetDefinition, Grammar]]] = {}

    def __init__(self, definition: SetDefinition) -> None:
        self.definition = definition
        rules = {segment_id: compile_segment(segment_id, segment)
                 for segment_id, segment in definition.segments.items()}
        self.root = LoopGrammar(definition.id, definition.structure, False, rules, root=True)
        self._states: dict[Frames, State] = {}
        self.initial = self._state(((self.root, -1),))

    @classmethod
    def of(cls, definition: SetDefinition) -> Grammar:
        """The grammar of `definition`, compiled on first use."""
        # Keyed by identity; the cache keeps the definition alive so that its id is never reused.
        cached = cls._cache.get(id(definition))
        if cached is None:
            cached = (definition, cls(definition))
            cls._cache[id(definition)] = cached
        return cached[1]

    def _state(self, frames: Frames) -> State:
        state = self._states.get(frames)
        if state is None:
            state = self._states[frames] = State(frames)
        return state

    def step(self, state: State, segment_id: str) -> Step | None:
        """The step `segment_id` takes from `state`, or None when no open loop takes it."""
        if segment_id in state:
            return state[segment_id]
        step = self._compute(state, segment_id)
        # Only IDs the set uses are kept, so that stray IDs cannot grow the table without bound.
        if segment_id in self.definition.segments:
            state[segment_id] = step
        return step

    def _compute(self, state: State, segment_id: str) -> Step | None:
        frames = state.frames
        for level in range(len(frames) - 1, -1, -1):
            owner, current = frames[level]
            position = owner.next_position(segment_id, current)
            if position >= 0:
                break
        else:
            return None
        missing: list[tuple[LoopGrammar, int]] = []
        for closing, at in reversed(frames[level + 1:]):
            missing += closing.unfilled(at + 1)
        missing += owner.unfilled(current + 1, position)
        kept = (*frames[:level], (owner, position))
        inner = owner.loops[position]
        after = (*kept, (inner, 0)) if inner is not None else kept
        return _step(len(frames) - 1 - level, owner, position, position == current, missing, self._state(after))
