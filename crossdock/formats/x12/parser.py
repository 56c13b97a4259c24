"""Transaction set parser: builds a set's loop tree from its definition and validates its content.

The definition is compiled once into a state machine (:mod:`crossdock.formats.x12.grammar`): for each
segment, one lookup says which loops close, where the segment goes, which loop it opens and which
mandatory segments were passed over. The parser follows it, building the tree as it goes; HL loops
are nested under their HL02 parent instead of by position.

Segment defects (AK3 / IK3 codes): unrecognized segment ID (X12-S001), unexpected segment (X12-S002),
mandatory segment missing (X12-S003), loop over its repeat (X12-S004), segment over its maximum use
(X12-S005), segment not in the set (X12-S006), out of sequence (X12-S007); HL01 repeated or missing
(X12-S008), HL02 not an open parent (X12-S009), a count element such as CTT01 that does not match
(X12-S010), and a set without definition (X12-S011). Segments that cannot be placed stay in the tree,
in the innermost open loop: in strict mode as errors, in lenient mode as warnings (as are maximum
use and repeat overruns and wrong counts). Element defects come from
:mod:`crossdock.formats.x12.elements`.
"""

from __future__ import annotations

from operator import attrgetter, countOf

from crossdock.formats.x12.definitions import SetDefinition
from crossdock.formats.x12.elements import SegmentRule
from crossdock.formats.x12.grammar import Grammar, LoopGrammar, State
from crossdock.formats.x12.issues import Issue, Mode, make_issue
from crossdock.formats.x12.segment import IsaSegment, Segment
from crossdock.formats.x12.tree import Loop, TransactionSet

_SEGMENT_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _loop_id(grammar: LoopGrammar) -> str | None:
    """The loop a segment sits in, for AK3-03: None in the set's heading, detail or summary."""
    return None if grammar.root else grammar.id


class _SetParser:
    """Parses one transaction set; see the module docstring."""

    def __init__(self, grammar: Grammar, mode: Mode, validate_elements: bool, separator: str) -> None:
        self.grammar = grammar
        self.definition = grammar.definition
        self.mode = mode
        self.validate_elements = validate_elements
        self.separator = separator
        self.issues: list[Issue] = []
        self.hl_seen: set[str] = set()
        self.hl_path: list[tuple[str, Loop]] = []

    def issue(self, code: str, message: str, at: Segment, *, tolerable: bool = False, **fields: object) -> None:
        self.issues.append(make_issue(code, message, self.mode, tolerable=tolerable, at=at, **fields))

    def parse(self, body: list[Segment], end: Segment) -> list[Segment | Loop]:
        """The tree of `body`; `end` (the SE, or the last segment) positions what is missing at the end."""
        grammar = self.grammar
        root = Loop(self.definition.id)
        # The innermost open loop's children and the length of the current run at its position; the
        # same for the enclosing loops on the stacks.
        top, run = root.children, 0
        outer_children: list[list[Segment | Loop]] = []
        outer_runs: list[int] = []
        state = grammar.initial
        validate = self.validate_elements
        for segment in body:
            step = state.get(segment.id)
            if step is None:
                step = grammar.step(state, segment.id)
                if step is None:
                    self._unplaced(state, top, segment)
                    continue
            closed, missing, same, overflow, opens, rule, state, owner, position = step
            if closed:
                top, run = outer_children[-closed], outer_runs[-closed]
                del outer_children[-closed:]
                del outer_runs[-closed:]
            if missing:
                self._missing(missing, segment)
            if same:
                run += 1
                if run == overflow:
                    self._overused(owner, position, segment)
            else:
                run = 1
            if opens is None:
                top.append(segment)
            else:
                loop = Loop(opens.id, [segment])
                if opens.hierarchical:
                    self._nest(loop, segment, top)
                else:
                    top.append(loop)
                outer_children.append(top)
                outer_runs.append(run)
                top, run = loop.children, 1
            if validate:
                self._elements(segment, rule, opens or owner)
        if state.unfilled:
            self._missing(state.unfilled, end)
        return root.children

    def _overused(self, owner: LoopGrammar, position: int, segment: Segment) -> None:
        """A segment over its maximum use (X12-S005) or a loop over its repeat (X12-S004), reported once."""
        limit = owner.limits[position]
        inner = owner.loops[position]
        if inner is None:
            self.issue("X12-S005", f"{segment.id} is used more than {limit} times here", segment,
                       tolerable=True, loop_id=_loop_id(owner))
        else:
            self.issue("X12-S004", f"loop {inner.id} repeats more than {limit} times", segment,
                       tolerable=True, loop_id=inner.id)

    def _unplaced(self, state: State, innermost: list[Segment | Loop], segment: Segment) -> None:
        """A segment no open loop takes: keep it in the innermost loop and say why."""
        segment_id = segment.id
        innermost.append(segment)
        definition = self.definition
        if not segment_id or not set(segment_id) <= _SEGMENT_ID_CHARS or segment_id not in definition.dictionary:
            code, why = "X12-S001", f"{segment_id!r} is not a segment ID of version {definition.version}"
        elif segment_id not in definition.segments:
            code, why = "X12-S006", f"{segment_id} is not used in a {definition.id}"
        elif any(position < current for grammar, current in state.frames
                 for position in grammar.index.get(segment_id, ())):
            code, why = "X12-S007", f"{segment_id} comes too late: it belongs before the segments already read"
        else:
            code, why = "X12-S002", f"{segment_id} is not expected here"
        self.issue(code, why, segment, tolerable=True, loop_id=_loop_id(state.frames[-1][0]))

    def _missing(self, missing: tuple[tuple[LoopGrammar, int], ...] | list[tuple[LoopGrammar, int]],
                 at: Segment) -> None:
        """Mandatory positions never filled, reported at the segment that showed it (`at`)."""
        for grammar, position in missing:
            absent = grammar.ids[position]
            what = f"loop {absent}" if grammar.loops[position] is not None else f"segment {absent}"
            where = f"loop {grammar.id}" if not grammar.root else f"the {self.definition.id}"
            self.issue("X12-S003", f"mandatory {what} missing in {where}", at, segment_id=absent,
                       loop_id=_loop_id(grammar))

    def _nest(self, loop: Loop, segment: Segment, container: list[Segment | Loop]) -> None:
        """Attach an HL loop under its HL02 parent, which must be open (an ancestor of the current level)."""
        hl_id, parent = segment.value(1), segment.value(2)
        if not hl_id or hl_id in self.hl_seen:
            self.issue("X12-S008", f"HL01 {hl_id!r} is missing or already used", segment, element=1, value=hl_id)
        self.hl_seen.add(hl_id)
        path = self.hl_path
        if parent:
            while path and path[-1][0] != parent:
                path.pop()
            if path:
                path[-1][1].children.append(loop)
            else:
                self.issue("X12-S009", f"HL02 {parent!r} is not the ID of an open parent level", segment,
                           element=2, value=parent)
                container.append(loop)
        else:
            path.clear()
            container.append(loop)
        path.append((hl_id, loop))

    def _elements(self, segment: Segment, rule: SegmentRule, loop: LoopGrammar) -> None:
        problems = rule.check(segment.elements, self.separator)
        for problem in problems:
            self.issues.append(make_issue(
                problem.code, problem.message, self.mode, at=segment, warning=problem.warning,
                loop_id=_loop_id(loop), element=problem.position, component=problem.component,
                element_ref=problem.ref, value=problem.value))

    def check_counts(self, body: list[Segment]) -> None:
        """Count elements (``CTT01: PO1``) against the segments they count."""
        for element_id, counted in self.definition.counts.items():
            segment_id, position = element_id[:-2], int(element_id[-2:])
            # Count elements sit in the summary: look from the end.
            holder = next((segment for segment in reversed(body) if segment.id == segment_id), None)
            declared = holder.value(position) if holder is not None else ""
            if holder is None or not declared:
                continue
            actual = countOf(map(attrgetter("id"), body), counted)
            if declared != str(actual) and not (declared.isdigit() and int(declared) == actual):
                self.issue("X12-S010", f"{element_id} says {declared}, there are {actual} {counted} segments",
                           holder, tolerable=True, element=position, value=declared)


def parse_set(
    st: Segment,
    body: list[Segment],
    se: Segment | None,
    definition: SetDefinition | None,
    *,
    mode: Mode = Mode.STRICT,
    validate_elements: bool = True,
    isa: IsaSegment | None = None,
    gs: Segment | None = None,
    issues: list[Issue] | None = None,
) -> TransactionSet:
    """The tree of one transaction set (ST, `body`, SE) and its issues.

    `issues` are the set's envelope issues, if any, to which content issues are added. Without a
    definition the set is kept flat and reported as not supported (X12-S011).
    """
    found = list(issues) if issues else []
    end = se if se is not None else (body[-1] if body else st)
    if definition is None:
        version = gs.value(8) if gs is not None else "unknown"
        found.append(make_issue("X12-S011", f"no definition of transaction set {st.value(1)} version {version}",
                                mode, tolerable=True, at=st))
        children: list[Segment | Loop] = [st, *body]
    else:
        separator = isa.delimiters.component if isa is not None else ":"
        parser = _SetParser(Grammar.of(definition), mode, validate_elements, separator)
        tree = parser.parse(body, end)
        parser.check_counts(body)
        found.extend(parser.issues)
        children = [st, *tree]
    if se is not None:
        children.append(se)
    return TransactionSet(st, se, children, isa=isa, gs=gs, definition=definition, issues=found)
