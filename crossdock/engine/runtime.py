"""Runs compiled routes on anyio: source -> bounded stream -> workers -> steps -> sinks -> ack.

Guarantees, and where they come from:

- At-least-once: a source message is acknowledged only after every sink on its path confirmed, or
  after it was durably written to the dead-letter store. Stopping early releases it instead, so the
  source offers it again.
- Back pressure: the source feeds a bounded queue read by `concurrency` workers; split
  children run under a limiter of the same size. A slow sink slows the source; memory stays flat.
- No duplicate effects on redelivery: each delivery carries a message id derived from the source's
  stable id, the split index and the sink's step, so sinks that dedupe (the embedded queue, file
  names, REST idempotency keys) hold one copy; `skip duplicates` records keys only once delivered.
- Errors are classified: transient ones are retried per the policy in force at the sink, permanent
  ones and exhausted retries are dead-lettered with the body as it was when the failing step began.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

from crossdock.connectors.base import ConnectorContext, Sink, Source, load_connector
from crossdock.engine import snapshot
from crossdock.engine.clock import Clock
from crossdock.engine.errors import (
    CrossdockError,
    ErrorChain,
    PermanentError,
    TransientError,
    TransientKind,
)
from crossdock.engine.mapping.compiler import validate_model
from crossdock.engine.mapping.expressions import (
    EvaluationError,
    Getter,
    Scope,
    is_missing,
    truthy,
)
from crossdock.engine.message import CORRELATION_HEADER, Inbound, Message, Outcome, derived_id
from crossdock.engine.outgoing import (
    PerMessageOptions,
    format_extension,
    message_view,
    per_message_options,
    template_context,
)
from crossdock.engine.plan import (
    AcknowledgePlan,
    CallPlan,
    ChoicePlan,
    DedupePlan,
    EndpointPlan,
    FanOutPlan,
    FilterPlan,
    MapPlan,
    ReadPlan,
    RejectPlan,
    ReplyPlan,
    RoutePlan,
    SinkPlan,
    SplitPlan,
    StepPlan,
    TrackPlan,
    ValidatePlan,
    walk_steps,
)
from crossdock.engine.services import Services, materialize
from crossdock.engine.stats import RouteStats
from crossdock.engine.stores.base import DeadLetter, JournalEvent
from crossdock.engine.x12.acknowledge import acknowledgments_for, outbound, reconcile
from crossdock.engine.x12.inbound import document_rejection
from crossdock.engine.x12.steps import rejection_of, screen_duplicates
from crossdock.formats.base import format_spec, load_format
from crossdock.formats.x12.tree import Document
from crossdock.ops.logging import SECRETS

After = Callable[[Message], Awaitable[None]]

log = logging.getLogger("crossdock.runtime")

# How often a `--once` run retries a source that fails transiently before it gives up, and the longest
# wait between two tries of a daemon's source.
SOURCE_RETRIES_ONCE = 3
SOURCE_BACKOFF_MAX = 60.0

ANSWER_CACHE_SIZE = 10_000

# Key of the route's own dead-letter target, used for failures outside a sink (decode, map, validate).
ROUTE_LEVEL = ""


class StepFailed(PermanentError):
    """Wraps a failure that is not a CrossdockError (a bug, a library error left unmapped)."""

    code = "X001"


@dataclass
class _Tracker:
    """Outcomes of everything one source message became (split children, fan-out branches)."""

    delivered: int = 0
    filtered: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    claims: list[tuple[tuple[str, str], anyio.Event]] = field(default_factory=list)

    def outcome(self) -> Outcome:
        if self.dead_lettered:
            return Outcome.DEAD_LETTERED
        if self.delivered:
            return Outcome.DELIVERED
        if self.duplicates:
            return Outcome.DUPLICATE
        return Outcome.FILTERED


class RouteRunner:
    """Runs one route: opens its source and sinks, feeds workers, acknowledges, dead-letters."""

    def __init__(self, plan: RoutePlan, services: Services, stats: RouteStats) -> None:
        self.plan = plan
        self.services = services
        self.stats = stats
        self.observer = services.observer
        self.sinks: dict[str, Sink] = {}
        self.per_message: dict[str, PerMessageOptions] = {}
        self.dead_letter_sinks: dict[str, Sink] = {}
        self.in_flight_keys: dict[tuple[str, str], anyio.Event] = {}
        self.failure: CrossdockError | None = None
        self.waiting: CrossdockError | None = None
        """Why the route's connectors could not open yet, while it tries again (None once they did)."""
        self.opened = anyio.Event()
        """Set once the first try at opening the connectors is over, whatever came of it."""
        # recent good answers of `call` steps, for the fallback when the system called is down
        self.answers: OrderedDict[tuple[str, str, bytes], tuple[float, Any]] = OrderedDict()

    # ---- lifetime -------------------------------------------------------------------------------

    def context(self, owner: str) -> ConnectorContext:
        return ConnectorContext(owner=owner, data_dir=self.services.data_dir, clock=self.services.clock,
                                shared=self.services.shared)

    async def open_sinks(self, stack: AsyncExitStack) -> None:
        """Open every sink (and dead-letter target) of the route; they stay open while it runs."""
        if self.plan.dead_letter.endpoint is not None:
            self.dead_letter_sinks[ROUTE_LEVEL] = await self._open_sink(self.plan.dead_letter.endpoint, stack)
        for step in walk_steps(self.plan.steps):
            if isinstance(step, SinkPlan):
                self.sinks[step.path] = await self._open_sink(step.endpoint, stack)
                self.per_message[step.path] = per_message_options(step.endpoint, self.services.env)
                target = step.dead_letter.endpoint
                if target is not None and step.path not in self.dead_letter_sinks:
                    self.dead_letter_sinks[step.path] = await self._open_sink(target, stack)

    async def _open_sink(self, endpoint: EndpointPlan, stack: AsyncExitStack) -> Sink:
        module = load_connector(endpoint.kind)
        options = materialize(endpoint.options, self.services.env)
        sink = module.open_sink(options, self.context(f"{self.plan.name}: to {endpoint.label}"))
        return await stack.enter_async_context(sink)

    def open_source(self) -> Source:
        module = load_connector(self.plan.source.kind)
        options = materialize(self.plan.source.options, self.services.env)
        return module.open_source(options, self.context(f"{self.plan.name}: from {self.plan.source.label}"))

    async def run(self, *, once: bool, stop: anyio.Event, drain_timeout: float = 30.0) -> None:
        """Receive and process until the source is drained (`once`) or `stop` is set.

        A connector that cannot open for a passing reason (a broker or server not up yet, after a
        reboot) is tried again with backoff until `stop`; with `once`, or for a permanent reason (a
        wrong password, a missing option), the route stops with `self.failure` set and the error
        logged. A source that fails permanently later stops the route the same way. The other routes
        of the engine keep running.
        """
        failures = 0
        while True:
            async with AsyncExitStack() as stack:
                try:
                    try:
                        await self.open_sinks(stack)
                        source = await stack.enter_async_context(self.open_source())
                    finally:
                        self.opened.set()
                except TransientError as error:
                    if once:
                        self.fail(error, "could not start")
                        return
                    failures += 1
                    self.stats.source_errors += 1
                    self.waiting = error
                    wait = min(SOURCE_BACKOFF_MAX, 2.0 ** (failures - 1))
                    log.warning("route %r could not start: %s %s; trying again in %.0fs", self.plan.name,
                                error.code, error, wait)
                except CrossdockError as error:
                    self.fail(error, "could not start")
                    return
                else:
                    self.waiting = None
                    await self._serve(source, once=once, stop=stop, drain_timeout=drain_timeout, stack=stack)
                    return
            if not await _slept_unless_stopped(self.services.clock, wait, stop):
                self.waiting = None
                return

    async def _serve(self, source: Source, *, once: bool, stop: anyio.Event, drain_timeout: float,
                     stack: AsyncExitStack) -> None:
        """Feed the workers from the open source until it is drained or `stop` is set."""
        self.observer.route_started(self.plan)
        stack.callback(self.observer.route_stopped, self.plan.name)
        # An asyncio queue, not an anyio memory stream: the daemon runs on asyncio (its connectors'
        # libraries do), and the stream's receive passes through the event loop even when a message
        # waits and builds an event and a receiver per wait, 15-20 µs a message of the AMQP route
        # benchmark; the queue hands over without a loop turn when it can. Bounded: back pressure.
        queue: asyncio.Queue[Inbound | None] = asyncio.Queue(self.plan.concurrency)
        async with anyio.create_task_group() as guard:
            guard.start_soon(_cancel_after_stop, stop, drain_timeout, guard.cancel_scope)
            async with anyio.create_task_group() as workers:
                for _ in range(self.plan.concurrency):
                    workers.start_soon(self._worker, queue)
                async with anyio.create_task_group() as feeding:
                    feeding.start_soon(self._feed, source, queue, once, feeding)
                    feeding.start_soon(_cancel_when, stop, feeding)
                for _ in range(self.plan.concurrency):  # each worker ends once what was queued is taken
                    await queue.put(None)
            guard.cancel_scope.cancel()

    def fail(self, error: CrossdockError, what: str) -> None:
        """Record that the route stopped, and why."""
        self.failure = error
        log.error("route %r %s: %s %s", self.plan.name, what, error.code, error)

    async def _feed(self, source: Source, queue: asyncio.Queue[Inbound | None], once: bool,
                    group: TaskGroup) -> None:
        """Pass what the source receives to the workers; transient source errors are waited out."""
        failures = 0
        while True:
            try:
                async for inbound in source.receive(once=once):
                    failures = 0
                    try:
                        await queue.put(inbound)
                    except anyio.get_cancelled_exc_class():
                        with anyio.CancelScope(shield=True):
                            await inbound.release()
                        raise
                break
            except TransientError as error:
                failures += 1
                self.stats.source_errors += 1
                if once and failures > SOURCE_RETRIES_ONCE:
                    self.fail(error, "gave up on its source")
                    break
                wait = min(SOURCE_BACKOFF_MAX, 2.0 ** (failures - 1))
                log.warning("route %r: source error %s %s; trying again in %.0fs", self.plan.name, error.code,
                            error, wait)
                await self.services.clock.sleep(wait)
            except CrossdockError as error:
                self.fail(error, "stopped: its source failed")
                break
        group.cancel_scope.cancel()

    async def _worker(self, queue: asyncio.Queue[Inbound | None]) -> None:
        while (inbound := await queue.get()) is not None:
            await self.handle(inbound)

    # ---- one source message ---------------------------------------------------------------------

    async def handle(self, inbound: Inbound) -> Outcome | None:
        """Process one received message to the end and acknowledge it (or release it if cancelled)."""
        message = Message.from_inbound(inbound, self.plan.name)
        with self.observer.message(self.plan.name, message):
            return await self._handle(inbound, message)

    async def _handle(self, inbound: Inbound, message: Message) -> Outcome | None:
        self.stats.received += 1
        tracker = _Tracker()
        await self.journal(message, "received", None, {"source": self.plan.source.label})
        try:
            await self.run_steps(self.plan.steps, 0, message, tracker, self._finish)
            outcome = tracker.outcome()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await inbound.release()
            raise
        except Exception as error:  # a store failed under us: offer the message again, never drop it
            self.stats.errors += 1
            log.error("route %r: message %s released after an error: %s", self.plan.name, message.correlation_id,
                      _classified(error))
            with anyio.CancelScope(shield=True):
                await _quietly(inbound.release)
            return None
        finally:
            self.release_keys(tracker)
        with anyio.CancelScope(shield=True):
            try:
                await inbound.ack(outcome)
            except Exception as error:  # delivered, but the source will offer it again; sinks dedupe
                self.stats.errors += 1
                log.error("route %r: could not acknowledge %s: %s", self.plan.name, message.correlation_id,
                          _classified(error))
                return outcome
            self.stats.acked += 1
            await self.journal(message, "acked", None, {"outcome": outcome.value})
        return outcome

    async def _finish(self, message: Message) -> None:
        """The end of a path: the duplicate keys it passed are recorded now that it was delivered."""
        for scope, key, ttl in message.meta.get("pending_keys", ()):
            await self.services.stores.idempotency.record(scope, key, ttl, self.services.clock.now())

    async def run_steps(
        self, steps: list[StepPlan], start: int, message: Message, tracker: _Tracker, after: After
    ) -> None:
        """Run `steps[start:]` on `message`, then `after`; branches and splits continue on their own."""
        for index in range(start, len(steps)):
            step = steps[index]
            if isinstance(step, SplitPlan):
                await self._split(step, steps, index, message, tracker, after)
                return
            if isinstance(step, ChoicePlan):
                await self._choose(step, steps, index, message, tracker, after)
                return
            if isinstance(step, FanOutPlan):
                if not await self._fan_out(step, message, tracker):
                    return
                continue
            with self.observer.step(self.plan.name, step, message):
                result = await self._step(step, message, tracker)
            if result is None:
                return
            message = result
        await after(message)

    async def _step(self, step: StepPlan, message: Message, tracker: _Tracker) -> Message | None:
        if isinstance(step, AcknowledgePlan):
            return await self.acknowledge(step, message, tracker)
        if isinstance(step, ReplyPlan):
            return await self.reply(step, message, tracker)
        if isinstance(step, CallPlan):
            return await self.call(step, message, tracker)
        if isinstance(step, SinkPlan):
            return await self.deliver(step, message, tracker)
        try:
            return await self._transform(step, message, tracker)
        except Exception as error:  # every failure of a step becomes a dead letter, never a crash
            await self.dead_letter(step, message, _classified(error), [], tracker)
            return None

    async def _transform(self, step: StepPlan, message: Message, tracker: _Tracker) -> Message | None:
        if isinstance(step, ReadPlan):
            decoded = load_format(step.format).decode(_as_bytes(message.body), step.options)
            self.observer.event(self.plan.name, "decoded", step.label, message, {"format": step.format})
            if isinstance(decoded, Document):
                return await self._screen_interchanges(step, message, decoded, tracker)
            return message.with_body(decoded)
        if isinstance(step, FilterPlan):
            if truthy(self.evaluate(step.condition, message)):
                return message
            tracker.filtered += 1
            self.stats.filtered += 1
            await self.journal(message, "filtered", step.label, {})
            return None
        if isinstance(step, DedupePlan):
            return await self._dedupe(step, message, tracker)
        if isinstance(step, TrackPlan):
            return await self._track(step, message)
        if isinstance(step, MapPlan):
            output = step.map.run_validated(message.body, self.services.functions, message_view(message))
            await self.journal(message, "mapped", step.label, {})
            mapped = message.with_body(output)
            if step.target_arguments:  # what the map writes (`to x12 855`, `to xml "Feed" "urn:..."`)
                mapped.meta = {**message.meta, "target_arguments": step.target_arguments}
            return mapped
        if isinstance(step, ValidatePlan):
            return message.with_body(validate_model(step.model, message.body, step.label))
        if isinstance(step, RejectPlan):
            raise PermanentError(step.reason, code="R007")
        raise TypeError(f"unknown step {step!r}")

    def evaluate(self, getter: Getter, message: Message) -> Any:
        scope = Scope(message.body, message.body, {}, self.services.functions, message=message_view(message))
        try:
            return getter(scope)
        except EvaluationError as error:
            raise PermanentError(str(error), code="M001") from None

    async def _dedupe(self, step: DedupePlan, message: Message, tracker: _Tracker) -> Message | None:
        key = self.evaluate(step.key, message)
        if is_missing(key):
            raise PermanentError("the duplicate key is missing from this message", code="R002")
        key_text = str(key)
        await self.remember_keys(message, [key_text])  # a duplicate, too, is found by its key
        scope = f"{self.plan.name}#{step.path}"
        token = (scope, key_text)
        while token in self.in_flight_keys:  # the same key is being delivered now: wait, then look again
            await self.in_flight_keys[token].wait()
        # claim before the store lookup below yields, so a second copy arriving now waits for this one
        done = anyio.Event()
        self.in_flight_keys[token] = done
        tracker.claims.append((token, done))
        if await self.services.stores.idempotency.seen(scope, key_text, self.services.clock.now()):
            tracker.duplicates += 1
            self.stats.duplicates += 1
            await self.journal(message, "duplicate", step.label, {"key": key_text})
            return None
        # a new list, not an append: split children and branches share the parent's list object
        message.meta["pending_keys"] = [*message.meta.get("pending_keys", ()), (scope, key_text, step.ttl)]
        message.idempotency_key = message.idempotency_key or key_text
        return message

    async def _track(self, step: TrackPlan, message: Message) -> Message:
        """Give the message the business keys of `track by`.

        Lineage must never stop a delivery: a key that cannot be read is logged and left out, and a
        missing one is simply not recorded.
        """
        keys: list[str] = []
        for getter in step.keys:
            try:
                keys.extend(_key_texts(self.evaluate(getter, message)))
            except PermanentError as error:
                log.warning("route %r: message %s: %s: a key could not be read: %s", self.plan.name,
                            message.correlation_id, step.label, error)
        keys = await self.remember_keys(message, keys)
        await self.journal(message, "tracked", step.label, {"keys": keys})
        return message

    async def remember_keys(self, message: Message, keys: list[str]) -> list[str]:
        """Journal that `message` carries `keys` (each once); the first key it gets is its business key,
        shown with its journal events and dead letters. Returns the keys without repeats."""
        unique = list(dict.fromkeys(keys))
        if unique:
            message.business_key = message.business_key or unique[0]
            await self.services.stores.journal.record_keys(
                at=self.services.clock.now(), route=self.plan.name, correlation_id=message.correlation_id,
                keys=unique)
        return unique

    def release_keys(self, tracker: _Tracker) -> None:
        """Let messages waiting on the same duplicate key go on (called once this one is settled)."""
        for token, done in tracker.claims:
            if self.in_flight_keys.get(token) is done:
                del self.in_flight_keys[token]
            done.set()
        tracker.claims.clear()

    async def _split(
        self, step: SplitPlan, steps: list[StepPlan], index: int, message: Message, tracker: _Tracker, after: After
    ) -> None:
        try:
            value = self.evaluate(step.over, message)
        except PermanentError as error:
            await self.dead_letter(step, message, error, [], tracker)
            return
        whole = rejection_of(message.body)
        if whole is not None:
            await self.dead_letter(step, message, whole, [], tracker)
            return
        slots = anyio.Semaphore(self.plan.concurrency)

        async def child(element: Any, number: int) -> None:
            try:
                part = message.child(element, number)
                problem = rejection_of(element)
                if problem is not None:  # e.g. an X12 set with errors: its 997 said R; the others go on
                    await self.dead_letter(step, part, problem, [], tracker)
                    return
                await self.run_steps(steps, index + 1, part, tracker, after)
            finally:
                slots.release()

        count = 0
        async with anyio.create_task_group() as group:
            # a slot is taken before an element is even read, so a streamed split (`read xml` with
            # `split on`) holds at most `concurrency` elements in memory, whatever the file's size
            for element in _elements(value):
                await slots.acquire()
                group.start_soon(child, element, count)
                count += 1
        if count == 0:
            tracker.filtered += 1
            self.stats.filtered += 1
            await self.journal(message, "filtered", step.label, {"reason": "nothing to split"})

    async def _choose(
        self, step: ChoicePlan, steps: list[StepPlan], index: int, message: Message, tracker: _Tracker, after: After
    ) -> None:
        async def rest(result: Message) -> None:
            await self.run_steps(steps, index + 1, result, tracker, after)

        try:
            for number, (condition, branch) in enumerate(step.clauses):
                if truthy(self.evaluate(condition, message)):
                    message.meta["branch"] = f"when{number}"
                    await self.run_steps(branch, 0, message, tracker, rest)
                    return
        except PermanentError as error:
            await self.dead_letter(step, message, error, [], tracker)
            return
        if step.otherwise is not None:
            await self.run_steps(step.otherwise, 0, message, tracker, rest)
            return
        await self.dead_letter(step, message, PermanentError("no 'when' matched this message", code="R001"),
                               [], tracker)

    async def _fan_out(self, step: FanOutPlan, message: Message, tracker: _Tracker) -> bool:
        before = tracker.dead_lettered

        async def branch_done(_: Message) -> None:
            return None

        async with anyio.create_task_group() as group:
            for branch in step.branches:
                copy = message.with_body(message.body)
                copy.meta = dict(message.meta)
                group.start_soon(self.run_steps, branch, 0, copy, tracker, branch_done)
        return tracker.dead_lettered == before

    async def call(self, step: CallPlan, message: Message, tracker: _Tracker) -> Message | None:
        """Ask another system (a lookup) and go on with its decoded answer.

        The call gets `step.wait` seconds, retries included. When it fails, the last good answer to the
        same request is used if it is recent enough (`fall back to last answer for`), so a channel asking
        for prices keeps getting them while the ERP is down; otherwise the message is dead-lettered.
        """
        caller = self.sinks[step.path]
        try:
            outgoing = await self.outgoing(step, message)
        except Exception as error:
            await self.dead_letter(step, message, _classified(error), [], tracker)
            return None
        key = (step.path, str(outgoing.meta.get(caller.method, caller.path)), outgoing.body)
        failure: CrossdockError | None = None
        answer = None
        with anyio.move_on_after(step.wait) as deadline:
            try:
                response = await caller.request(outgoing)
                problem = response.error()
                if problem is not None:
                    raise problem
                answer = _decoded_answer(response)
            except CrossdockError as error:
                failure = error
            except Exception as error:
                failure = _classified(error)
        if deadline.cancelled_caught:
            failure = TransientError(f"{step.label} gave no answer within {step.wait:g}s",
                                     kind=TransientKind.TIMEOUT, code="R006")
        now = self.services.clock.monotonic()
        if failure is None:
            self.answers[key] = (now, answer)
            self.answers.move_to_end(key)
            while len(self.answers) > ANSWER_CACHE_SIZE:
                self.answers.popitem(last=False)
            await self.journal(message, "called", step.label, {})
            return message.with_body(answer)
        cached = self.answers.get(key)
        if cached is not None and step.fallback and now - cached[0] <= step.fallback:
            await self.journal(message, "called", step.label, {"fallback": True, "age": round(now - cached[0], 3),
                                                              "error": failure.message})
            answered = message.with_body(cached[1])
            answered.meta = {**message.meta, "answer_age": round(now - cached[0], 3)}
            return answered
        await self.dead_letter(step, message, failure, [], tracker)
        return None

    async def reply(self, step: ReplyPlan, message: Message, tracker: _Tracker) -> Message | None:
        """Answer the caller waiting on a request-reply source; a second reply on one message is an error."""
        if message.reply is None:
            error = PermanentError("nobody waits for a reply: the source does not answer callers", code="R005")
            await self.dead_letter(step, message, error, [], tracker)
            return None
        try:
            body = message.body
            payload = body if isinstance(body, bytes) else load_format(step.format).encode(body, step.format_options)
            headers = {"Content-Type": format_spec(step.format).content_type,
                       CORRELATION_HEADER: message.correlation_id}
            for name, value in step.headers:
                headers[name] = value if isinstance(value, str) else str(self.evaluate(value, message))
            await message.reply(step.status, headers, payload)
        except Exception as error:
            await self.dead_letter(step, message, _classified(error), [], tracker)
            return None
        tracker.delivered += 1
        self.stats.delivered += 1
        self.stats.deliveries[step.label] += 1
        await self.journal(message, "replied", step.label, {"status": step.status})
        return message

    # ---- X12 ------------------------------------------------------------------------------------

    async def _screen_interchanges(
        self, step: ReadPlan, message: Message, document: Document, tracker: _Tracker
    ) -> Message | None:
        """Drop interchanges already processed (same sender and ISA13); None when nothing is new."""
        screened = await screen_duplicates(document, self.services.stores.idempotency, self.services.clock.now())
        for key in screened.duplicates:
            await self.journal(message, "duplicate-interchange", step.label, {"interchange": key})
        if screened.document is None:
            tracker.duplicates += 1
            self.stats.duplicates += 1
            return None
        message.meta["pending_keys"] = [*message.meta.get("pending_keys", ()), *screened.pending]
        for partner, group, matched in await reconcile(screened.document, self.services.partners,
                                                       self.services.stores.edi, self.services.clock.now()):
            await self.journal(message, "acknowledgment-received", step.label,
                               {"partner": partner, "group": group, "sets": matched})
        return message.with_body(screened.document)

    async def acknowledge(self, step: AcknowledgePlan, message: Message, tracker: _Tracker) -> Message | None:
        """Send the 997/999 (or TA1) of the document read, then stop here if the document is rejected."""
        document = message.body
        if not isinstance(document, Document):
            await self.dead_letter(step, message, PermanentError("only X12 is acknowledged", code="R004"), [],
                                   tracker)
            return None
        try:
            acknowledgments = await acknowledgments_for(document, self.services.partners,
                                                        self.services.stores.edi, step.kind)
        except Exception as error:
            await self.dead_letter(step, message, _classified(error), [], tracker)
            return None
        for number, acknowledgment in enumerate(acknowledgments):
            ack = message.with_body(acknowledgment)
            ack.message_id = derived_id(message.message_id, "acknowledgment", str(number))
            ack.meta = {**message.meta, "acknowledgment": True}
            if await self.deliver(step, ack, tracker, count=False) is None:
                return None
        problem = document_rejection(document)
        if problem is not None:
            await self.dead_letter(step, message, problem, [], tracker)
            return None
        return message

    # ---- delivery -------------------------------------------------------------------------------

    async def deliver(
        self, step: SinkPlan, message: Message, tracker: _Tracker, *, count: bool = True
    ) -> Message | None:
        """Send to a sink, retrying transient failures per policy; dead-letter when that fails.

        `count=False` for deliveries that are not the message itself (an acknowledgment of it).
        """
        try:
            outgoing = await self.outgoing(step, message)
        except Exception as error:
            await self.dead_letter(step, message, _classified(error), [], tracker)
            return None
        sink = self.sinks[step.path]
        attempts: list[dict[str, Any]] = []
        retry = step.retry
        for attempt in range(1, retry.attempts + 1):
            outgoing.attempt = attempt
            try:
                with self.observer.attempt(self.plan.name, step, outgoing):
                    await sink.send(outgoing)
            except TransientError as error:
                attempts.append({"attempt": attempt, "at": self.services.clock.now(), "error": error.to_dict()})
                if attempt >= retry.attempts or error.kind not in retry.retry_on:
                    await self.dead_letter(step, message, error, attempts, tracker)
                    return None
                self.stats.retried += 1
                delay = retry.delay(attempt, error.retry_after, self.services.rng)
                await self.journal(message, "retried", step.label, {"attempt": attempt, "wait": round(delay, 3),
                                                                    "code": error.code, "error": error.message})
                await self.services.clock.sleep(delay)
                continue
            except Exception as error:
                classified = _classified(error)
                attempts.append({"attempt": attempt, "at": self.services.clock.now(), "error": classified.to_dict()})
                await self.dead_letter(step, message, classified, attempts, tracker)
                return None
            if count:
                tracker.delivered += 1
                self.stats.delivered += 1
            self.stats.deliveries[step.label] += 1
            await self.journal(message, "delivered", step.label, {"attempts": attempt})
            return message
        return None

    async def outgoing(self, step: SinkPlan, message: Message) -> Message:
        """The message as the sink gets it: encoded body, its own stable id, rendered options."""
        message_id = derived_id(message.message_id, step.path)
        payload = await self.encode(step, message, message_id)
        meta = dict(message.meta)
        per_message = self.per_message[step.path]
        if per_message.templates:
            context = template_context(message, self.services.clock, format_extension(step.format))
            for key, template in per_message.templates.items():
                meta[key] = template if isinstance(template, str) else template.render(context)
        for key, getter in per_message.expressions.items():
            meta[key] = self.evaluate(getter, message)
        if per_message.headers:
            meta["headers"] = [(name, value if isinstance(value, str) else self.evaluate(value, message))
                               for name, value in per_message.headers]
        meta.pop("pending_keys", None)
        if not isinstance(message.body, bytes):  # encoded here: the sink's format says what it is
            meta["content_type"] = format_spec(step.format).content_type
        return Message(
            body=payload,
            route=message.route,
            message_id=message_id,
            correlation_id=message.correlation_id,
            original=message.original,
            # the source's transport headers (an HTTP caller's Host, Accept...) are not forwarded:
            # what a sink sends is the correlation id and the headers the route names
            headers={CORRELATION_HEADER: message.correlation_id},
            meta=meta,
            idempotency_key=message.idempotency_key,
            business_key=message.business_key,
        )

    async def encode(self, step: SinkPlan, message: Message, message_id: str) -> bytes:
        """The body in the sink's format; X12 is enveloped for the step's partner, once per message."""
        body = message.body
        if isinstance(body, bytes):
            return body
        if step.format != "x12":
            # the sink's own options win over what the map declared it writes (root, namespace...)
            return load_format(step.format).encode(body, {**message.meta.get("target_arguments", {}),
                                                          **step.format_options})
        edi = self.services.stores.edi
        if edi is not None:
            built = await edi.outbound.generated(message_id)
            if built is not None:
                return built
        if isinstance(body, Document):  # already enveloped (filed or forwarded as it came)
            return load_format("x12").encode(body, {})
        partner = step.format_options.get("partner")
        profile = self.services.partners.get(partner) if partner else None
        if profile is None:
            raise PermanentError("an X12 sink needs `partner \"name\"`: whose envelope to write", code="X12-G004")
        payload = await outbound(body, message.meta.get("target_arguments"), profile, edi, self.services.clock.now())
        if edi is not None:
            await edi.outbound.remember(message_id, payload, self.services.clock.now())
        return payload

    # ---- dead letters and journal ---------------------------------------------------------------

    async def dead_letter(
        self,
        step: StepPlan,
        message: Message,
        error: CrossdockError,
        attempts: list[dict[str, Any]],
        tracker: _Tracker,
    ) -> None:
        """Store the failed message durably (and publish it to the dead-letter target, if any)."""
        now = self.services.clock.now()
        if not attempts:
            attempts = [{"attempt": 1, "at": now, "error": error.to_dict()}]
        meta = dict(message.meta)
        # secrets never reach the store: an API may echo the credentials it refused in its answer
        entry = DeadLetter(
            route=self.plan.name,
            step=step.label,
            step_path=step.path,
            correlation_id=message.correlation_id,
            message_id=message.message_id,
            payload=message.original,
            error=SECRETS.scrub(error.to_dict()),
            created_at=now,
            idempotency_key=message.idempotency_key,
            business_key=message.business_key,
            stage_payload=snapshot.dump(message.body),
            headers=SECRETS.scrub(dict(message.headers)),
            meta=SECRETS.scrub(_jsonable(meta)),
            error_chain=SECRETS.scrub(ErrorChain.of(error).errors),
            attempts=SECRETS.scrub(attempts),
        )
        with anyio.CancelScope(shield=True):
            await self.services.stores.dead_letters.put(entry)
        tracker.dead_lettered += 1
        self.stats.dead_lettered += 1
        await self.journal(message, "dead-lettered", step.label, {"code": error.code, "error": error.message,
                                                                 "attempts": len(attempts), "dead_letter": entry.id})
        target = self.dead_letter_sinks.get(step.path) or self.dead_letter_sinks.get(ROUTE_LEVEL)
        if target is not None:
            await self._publish_dead_letter(target, entry, message)

    async def _publish_dead_letter(self, target: Sink, entry: DeadLetter, message: Message) -> None:
        headers = {"X-Correlation-ID": message.correlation_id, "X-Error-Code": entry.code or "",
                   "X-Dead-Letter-ID": entry.id, "X-Failed-Step": entry.step}
        if entry.business_key:  # which document of a split file failed, without a look in the store
            headers["X-Business-Key"] = entry.business_key
        out = Message(body=entry.payload, route=message.route, message_id=derived_id(entry.id, "dead-letter"),
                      correlation_id=message.correlation_id, original=message.original, headers=headers,
                      meta={"file_name": f"{entry.id}.dead-letter"})
        try:
            await target.send(out)
        except Exception as error:  # the store holds the entry already; the copy is best effort
            await self.journal(message, "dead-letter-copy-failed", entry.step, {"error": str(error)})

    async def journal(self, message: Message, event: str, step: str | None, detail: dict[str, Any]) -> None:
        """Record a stage transition in the journal and tell the observer (logs, metrics, traces)."""
        if "error" in detail:
            detail = SECRETS.scrub(detail)
        self.observer.event(self.plan.name, event, step, message, detail)
        await self.services.stores.journal.record(JournalEvent(
            at=self.services.clock.now(), route=self.plan.name, correlation_id=message.correlation_id,
            message_id=message.message_id, event=event, step=step, business_key=message.business_key,
            detail=detail,
        ))

    # ---- replay ---------------------------------------------------------------------------------

    async def replay(self, entry: DeadLetter, *, from_start: bool = False) -> Outcome:
        """Run a dead letter again, resuming at the step that failed when the route still has it (from
        the start for a `reject`, so that a rule added since decides)."""
        message = Message(
            body=entry.payload, route=self.plan.name, message_id=entry.message_id,
            correlation_id=entry.correlation_id, original=entry.payload, headers=dict(entry.headers),
            meta={**entry.meta, "replay_of": entry.id}, idempotency_key=entry.idempotency_key,
            business_key=entry.business_key,
        )
        tracker = _Tracker()
        with self.observer.message(self.plan.name, message):  # in flight, timed and traced like a new one
            await self.journal(message, "replayed", entry.step, {"dead_letter": entry.id})
            chain = None if from_start or entry.stage_payload is None else self.plan.locate(entry.step_path)
            if chain is not None and isinstance(chain[-1][0][chain[-1][1]], RejectPlan):
                chain = None  # a rejection was a routing decision: the route as it is now makes it again
            try:
                if chain is None:
                    await self.run_steps(self.plan.steps, 0, message, tracker, self._finish)
                else:
                    message = message.with_body(snapshot.load(entry.stage_payload or b"null"))
                    await self._resume(chain, message, tracker, self._finish)
            finally:
                self.release_keys(tracker)
        await self.services.stores.journal.flush()
        return tracker.outcome()

    async def _resume(
        self, chain: list[tuple[list[StepPlan], int]], message: Message, tracker: _Tracker, after: After
    ) -> None:
        (steps, index), outer = chain[-1], chain[:-1]
        if not outer:
            await self.run_steps(steps, index, message, tracker, after)
            return
        parent_steps, parent_index = outer[-1]
        parent = parent_steps[parent_index]

        async def continue_outer(result: Message) -> None:
            if isinstance(parent, FanOutPlan):
                await after(result)  # other branches already delivered; nothing else to run for this one
                return
            await self._resume([*outer[:-1], (parent_steps, parent_index + 1)], result, tracker, after)

        await self.run_steps(steps, index, message, tracker, continue_outer)


def _elements(value: Any) -> Iterator[Any]:
    """What `for each` goes over: a list, a stream of elements (read lazily), or one value."""
    if value is None:
        return iter(())
    if isinstance(value, list):
        return iter(value)
    if isinstance(value, Iterator):
        return value
    return iter((value,))


def _key_texts(value: Any) -> Iterator[str]:
    """The business keys in a `track by` value: itself, or each element of a list; missing ones left out."""
    if isinstance(value, list | tuple):
        for element in value:
            yield from _key_texts(element)
    elif not is_missing(value):
        yield str(value)


def _decoded_answer(response: Any) -> Any:
    """The body of a call's answer: decoded when it is JSON, else the bytes as they came."""
    content_type = str(response.headers.get("Content-Type", "")).split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        return load_format("json").decode(response.body, {})
    return response.body


def _as_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    raise PermanentError("this step needs the raw payload, but the message was already decoded", code="R003")


def _classified(error: BaseException) -> CrossdockError:
    if isinstance(error, CrossdockError):
        return error
    wrapped = StepFailed(f"{type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


async def _quietly(action: Callable[[], Awaitable[None]]) -> None:
    try:
        await action()
    except Exception as error:
        log.error("could not release a message: %s", _classified(error))


async def _slept_unless_stopped(clock: Clock, seconds: float, stop: anyio.Event) -> bool:
    """Sleep `seconds` on `clock`; False (at once) when `stop` is set first."""
    async with anyio.create_task_group() as group:
        group.start_soon(_cancel_when, stop, group)
        await clock.sleep(seconds)
        group.cancel_scope.cancel()
    return not stop.is_set()


async def _cancel_when(event: anyio.Event, group: TaskGroup) -> None:
    await event.wait()
    group.cancel_scope.cancel()


async def _cancel_after_stop(event: anyio.Event, drain_timeout: float, scope: anyio.CancelScope) -> None:
    """Once stopping, give in-flight messages `drain_timeout` seconds, then cancel (they are released)."""
    await event.wait()
    await anyio.sleep(drain_timeout)
    scope.cancel()
