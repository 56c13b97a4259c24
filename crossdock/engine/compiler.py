"""Compiles a parsed project into a :class:`~crossdock.engine.plan.Plan`, reporting what is wrong.

This is the single place where names are resolved, connector options checked against their schemas,
maps and expressions compiled and policies merged. `crossdock lint` runs it and prints the
diagnostics; `crossdock run` runs it and refuses to start when there is any error. Both therefore agree
on what a route file means.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError

from crossdock.canonical import MODELS
from crossdock.connectors.base import (
    ConnectorSpec,
    UnknownConnector,
    connector_kinds,
    connector_spec,
    load_connector,
)
from crossdock.dsl import ast
from crossdock.dsl.diagnostics import DiagnosticBag, Span, closest, did_you_mean
from crossdock.dsl.options import (
    OptionSpec,
    OptionType,
    ResolvedOptions,
    Role,
    Scope,
    head_option_line,
    head_option_lines,
    match_option,
    resolve_options,
    token_text,
    with_defaults,
)
from crossdock.dsl.parser import step_keywords
from crossdock.dsl.project import Project
from crossdock.engine.errors import TransientKind
from crossdock.engine.mapping.compiler import CompiledMap, compile_map
from crossdock.engine.mapping.expressions import CompileEnv, Getter, PathCompiler, compile_expr
from crossdock.engine.plan import (
    AcknowledgePlan,
    CallPlan,
    ChoicePlan,
    DeadLetterPlan,
    DedupePlan,
    EndpointPlan,
    FanOutPlan,
    FilterPlan,
    MapPlan,
    Plan,
    ReadPlan,
    RejectPlan,
    ReplyPlan,
    RetryPlan,
    RoutePlan,
    SinkPlan,
    SplitPlan,
    StepPlan,
    TrackPlan,
    ValidatePlan,
)
from crossdock.engine.templates import compile_template, is_template
from crossdock.engine.x12 import x12_path_compiler
from crossdock.engine.xmlpaths import xml_path_compiler
from crossdock.formats.base import UnknownFormat, format_names, load_format
from crossdock.formats.x12.profile import PARTNER_OPTIONS, VERSIONS, PartnerProfile

ACK_SETS = ("997", "999")

# Options of a `call` step besides its connector's own.
CALL_OPTIONS = (
    OptionSpec("wait at most", OptionType.DURATION, "How long the call may take, retries included, before it "
               "counts as failed.", default=10.0, example="2s", scope=Scope.STEP, roles=frozenset({Role.SINK})),
    OptionSpec("fall back to last answer for", OptionType.DURATION, "When the call fails, use the last good "
               "answer to the same request if it is no older than this, so callers keep getting answers while "
               "the system is down.", example="1h", scope=Scope.STEP, roles=frozenset({Role.SINK})),
)
MAX_RETRIES = 100
MAX_CONCURRENCY = 256
DEFAULT_CONCURRENCY = 4

# Options every sink takes besides its connector's own: how a structured body is written.
FORMAT_OPTION = OptionSpec(
    "format", OptionType.CHOICE, "How a structured body is encoded before it is sent.", default="json",
    example="json", scope=Scope.STEP, roles=frozenset({Role.SINK}),
)

# What the body is after each kind of step, so expressions and maps know how to read it.
RAW = "raw"

# Path compilers for bodies that are not JSON-like, by format, built from the format's arguments.
PATH_COMPILERS: dict[str, Callable[[Mapping[str, str]], PathCompiler]] = {
    "x12": x12_path_compiler,
    "xml": xml_path_compiler,
}


@dataclass(frozen=True)
class Settings:
    """Retry and dead-letter settings in force for a list of steps (inherited, then overridden)."""

    retry: RetryPlan
    dead_letter: DeadLetterPlan | None
    concurrency: int


class ProjectCompiler:
    """Compiles one project; see the module docstring. Use :func:`compile_project`."""

    def __init__(self, project: Project, bag: DiagnosticBag) -> None:
        self.project = project
        self.bag = bag
        self.step_keywords = step_keywords()
        self.tables: dict[str, dict[Any, Any]] = {}
        self.connections: dict[str, ResolvedOptions] = {}
        self.partners: dict[str, PartnerProfile] = {}

    # ---- tables ---------------------------------------------------------------------------------

    def load_table(self, table: ast.Table) -> dict[Any, Any]:
        if table.csv is None:
            entries: dict[Any, Any] = {}
            for entry in table.entries:
                if entry.key.value in entries:
                    self.bag.error("DUP002", f"key {entry.key.value!r} appears twice in table '{table.name.text}'",
                                   entry.key.span)
                entries[entry.key.value] = entry.value.value
            return entries
        return self._csv_table(table)

    def _csv_table(self, table: ast.Table) -> dict[Any, Any]:
        assert table.csv is not None
        specs = (
            OptionSpec("key", OptionType.STRING, "The column holding the keys (default: the first)."),
            OptionSpec("value", OptionType.STRING, "The column holding the values (default: the second)."),
        )
        chosen = resolve_options(_word_groups(table.csv_options, table.span), specs, scope=Scope.ANY, role=None,
                                 owner=f"table '{table.name.text}'", bag=self.bag)
        path = Path(table.span.file).parent / table.csv.value
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.reader(handle))
        except OSError as error:
            self.bag.error("TBL001", f"cannot read table file '{path}': {error.strerror}", table.csv.span,
                           "paths are relative to the route file")
            return {}
        if not rows:
            self.bag.error("TBL002", f"table file '{path}' is empty", table.csv.span)
            return {}
        header = rows[0]
        key_col = self._column(header, chosen.get("key"), 0, table)
        value_col = self._column(header, chosen.get("value"), 1, table)
        if key_col is None or value_col is None:
            return {}
        return {row[key_col]: row[value_col] for row in rows[1:] if len(row) > max(key_col, value_col)}

    def _column(self, header: list[str], name: str | None, fallback: int, table: ast.Table) -> int | None:
        if name is None:
            if fallback < len(header):
                return fallback
            self.bag.error("TBL003", f"table file needs at least {fallback + 1} columns", table.span)
            return None
        if name in header:
            return header.index(name)
        self.bag.error("TBL003", f"table file has no column '{name}'", table.span,
                       did_you_mean(name, header) or "columns: " + ", ".join(header))
        return None

    # ---- maps -----------------------------------------------------------------------------------

    def compile_maps(self) -> dict[str, CompiledMap]:
        compiled: dict[str, CompiledMap] = {}
        for name, definition in self.project.maps.items():
            tables = dict(self.tables)
            for table in definition.tables:
                tables[table.name.text] = self.load_table(table)
            arguments = self.format_arguments(definition.source.kind.text, definition.source.args,
                                              definition.source.span)[0]
            paths = self.path_compiler(definition.source.kind.text, arguments)
            compiled[name] = compile_map(definition, self.bag, tables, paths)
            self._check_map_kinds(definition)
        return compiled

    def _check_map_kinds(self, definition: ast.MapDef) -> None:
        known_sources = {*format_names(), *MODELS}
        source = definition.source.kind
        if source.text not in known_sources:
            self.bag.error("NAME007", f"unknown source kind '{source.text}' for a map", source.span,
                           did_you_mean(source.text, known_sources) or "a format (json, x12, xml) or a canonical model")
        target = definition.target.kind
        if target.text not in known_sources:
            self.bag.error("NAME005", f"unknown target '{target.text}' for a map", target.span,
                           did_you_mean(target.text, known_sources) or "a canonical model such as Order, or json")

    def path_compiler(self, kind: str, arguments: Mapping[str, str]) -> PathCompiler | None:
        """The path compiler for bodies of `kind` (None: JSON-like values, read with dotted paths)."""
        factory = PATH_COMPILERS.get(kind)
        return factory(arguments) if factory is not None else None

    def format_arguments(
        self, kind: str, tokens: Sequence[ast.OptToken], where: Span
    ) -> tuple[dict[str, str], tuple[ast.OptToken, ...]]:
        """The positional values after a format's name (`x12 850 004010`), and the tokens after them."""
        if kind not in format_names():
            return {}, tuple(tokens)
        declared = load_format(kind).SPEC.arguments
        values: dict[str, str] = {}
        rest = list(tokens)
        while rest and isinstance(rest[0], ast.NumberLit | ast.StringLit):
            token = rest.pop(0)
            if len(values) == len(declared):
                self.bag.error("OPT001", f"{kind} takes {len(declared)} value(s) after its name", token.span,
                               "; ".join(f"{name}: {text}" for name, text in declared) or None)
                continue
            text = token.value if isinstance(token, ast.StringLit) else str(token.value)
            values[declared[len(values)][0]] = text
        return values, tuple(rest)

    # ---- partners -------------------------------------------------------------------------------

    def compile_partners(self) -> dict[str, PartnerProfile]:
        for name, partner in self.project.partners.items():
            options = resolve_options(partner.options, PARTNER_OPTIONS, scope=Scope.ANY, role=None,
                                      owner=f"partner '{name}'", bag=self.bag, anchor=partner.name_span)
            version = options.get("version")
            if version is not None and version[:6] not in VERSIONS:
                self.bag.error("OPT002", f"'version' {version!r} is not a version crossdock writes",
                               options.span("version") or partner.span, "use " + " or ".join(VERSIONS))
            self.partners[name] = PartnerProfile.from_options(name, {k: options.get(k) for k in options.values})
        return self.partners

    # ---- connections ----------------------------------------------------------------------------

    def compile_connections(self) -> None:
        for name, connection in self.project.connections.items():
            spec = self._spec(connection.kind)
            if spec is None:
                continue
            self.connections[name] = resolve_options(
                connection.options, spec.options, scope=Scope.CONNECTION, role=None,
                owner=f"connection '{name}'", bag=self.bag, check_required=False, apply_defaults=False,
            )

    def _spec(self, kind: ast.Name) -> ConnectorSpec | None:
        try:
            return connector_spec(kind.text)
        except UnknownConnector as error:
            self.bag.error("NAME006", f"unknown connector '{kind.text}'", kind.span,
                           error.hint or "known connectors: " + ", ".join(connector_kinds()))
            return None

    def endpoint(self, node: ast.Endpoint, role: Role, extra: Sequence[OptionSpec] = ()) -> EndpointPlan | None:
        """Resolve a source, sink or dead-letter target: connection, kind and merged options."""
        spec = self._spec(node.kind)
        if spec is None:
            return None
        if role not in spec.roles:
            self.bag.error("OPT007", f"the {spec.kind} connector cannot be used as a {role.value}", node.kind.span)
            return None
        head = list(node.head)
        connection_name: str | None = None
        base = ResolvedOptions()
        if head and isinstance(head[0], ast.StringLit):
            first = head.pop(0)
            assert isinstance(first, ast.StringLit)
            connection_name = first.value
            connection = self.project.connections.get(connection_name)
            if connection is None:
                self.bag.error("NAME001", f"unknown connection '{connection_name}'", first.span,
                               did_you_mean(connection_name, self.project.connections)
                               or self._declared("connections", self.project.connections))
                return None
            if connection.kind.text != spec.kind:
                self.bag.error("NAME008", f"connection '{connection_name}' is a {connection.kind.text} connection, "
                               f"not {spec.kind}", first.span,
                               f"write: {'from' if role is Role.SOURCE else 'to'} {connection.kind.text} "
                               f'"{connection_name}"')
                return None
            base = self.connections.get(connection_name, ResolvedOptions())
        elif spec.connection == "required":
            self.bag.error("NAME010", f"the {spec.kind} connector needs a connection name", node.kind.span,
                           f'write: {node.kind.text} "connection-name"')
            return None
        specs = (*spec.options, *extra)
        lines = [*head_option_lines(tuple(head), specs, node.span), *node.options]
        step_options = resolve_options(
            lines, specs, scope=Scope.STEP, role=role, owner=f"{spec.kind} {role.value}",
            bag=self.bag, step_keywords=self.step_keywords, check_required=False, apply_defaults=False,
        )
        options = with_defaults(step_options.merged_over(base), [s for s in specs if role in s.roles], node.span)
        for option in spec.options:
            if option.required and role in option.roles and option.key not in options.values \
                    and not _misspelled(lines, option):
                self.bag.error("OPT006", f"{spec.kind} {role.value} needs '{option.name}'", node.kind.span,
                               f"add a line: {option.name} {option.example or '...'}"
                               + (f" (here or in connection '{connection_name}')" if connection_name else ""))
        if spec.check is not None:
            spec.check(options, role, node.kind.span, self.bag)
        self._check_templates(options)
        label = " ".join([spec.kind, *([f'"{connection_name}"'] if connection_name else []),
                          *(token_text(t) for t in head)])
        return EndpointPlan(spec.kind, connection_name, options, node.span, label)

    def _check_templates(self, options: ResolvedOptions) -> None:
        for entry in options.values.values():
            for value in entry if isinstance(entry, list) else [entry]:
                if value.spec.type is OptionType.TEMPLATE and isinstance(value.value, str) and is_template(value.value):
                    try:
                        compile_template(value.value)
                    except TemplateSyntaxError as error:
                        self.bag.error("TPL001", f"'{value.spec.name}' is not a valid template: {error.message}",
                                       value.span)

    def _declared(self, what: str, names: Any) -> str:
        listed = sorted(names)
        return f"declared {what}: {', '.join(listed)}" if listed else f"no {what} are declared"

    # ---- policies and settings ------------------------------------------------------------------

    def settings(self, items: Sequence[Any], inherited: Settings, where: str) -> Settings:
        """The settings of a step list: a `use policy`, then inline settings, over `inherited`."""
        seen: dict[type, Span] = {}
        policy_settings: Sequence[Any] = ()
        for item in items:
            if isinstance(item, ast.UsePolicy):
                if ast.UsePolicy in seen:
                    self.bag.error("POL004", f"this {where} uses a policy twice", item.span,
                                   f"the first is at line {seen[ast.UsePolicy].line}; a {where} uses one policy")
                    continue
                seen[ast.UsePolicy] = item.span
                policy = self.project.policies.get(item.name)
                if policy is None:
                    self.bag.error("NAME003", f"unknown policy '{item.name}'", item.name_span,
                                   did_you_mean(item.name, self.project.policies)
                                   or self._declared("policies", self.project.policies))
                else:
                    policy_settings = policy.settings
        current = self._apply(policy_settings, inherited, {}, "policy")
        return self._apply([i for i in items if not isinstance(i, ast.UsePolicy)], current, seen, where)

    def _apply(self, items: Sequence[Any], base: Settings, seen: dict[type, Span], where: str) -> Settings:
        settings = base
        for item in items:
            if not isinstance(item, ast.Retry | ast.RetryOn | ast.DeadLetter | ast.Concurrency):
                continue
            if type(item) in seen:
                self.bag.error("POL004", f"this {where} sets '{_setting_name(item)}' twice", item.span,
                               f"the first is at line {seen[type(item)].line}")
                continue
            seen[type(item)] = item.span
            settings = self._one_setting(item, settings)
        return settings

    def _one_setting(self, item: Any, settings: Settings) -> Settings:
        if isinstance(item, ast.Retry):
            return replace(settings, retry=self._retry(item, settings.retry))
        if isinstance(item, ast.RetryOn):
            kinds: set[TransientKind] = set()
            for name in item.kinds:
                if name.text == "transient":
                    kinds.update(TransientKind)
                    continue
                try:
                    kinds.add(TransientKind(name.text))
                except ValueError:
                    choices = [k.value for k in TransientKind] + ["transient"]
                    self.bag.error("POL003", f"'{name.text}' is not a kind of transient error", name.span,
                                   did_you_mean(name.text, choices) or "choose from: " + ", ".join(choices))
            return replace(settings, retry=replace(settings.retry, retry_on=frozenset(kinds)))
        if isinstance(item, ast.DeadLetter):
            return replace(settings, dead_letter=self._dead_letter(item))
        if item.count < 1 or item.count > MAX_CONCURRENCY:
            self.bag.error("POL008", f"process between 1 and {MAX_CONCURRENCY} at a time, not {item.count}", item.span)
            return settings
        return replace(settings, concurrency=item.count)

    def _retry(self, item: ast.Retry, base: RetryPlan) -> RetryPlan:
        if item.attempts > MAX_RETRIES:
            self.bag.error("POL001", f"retrying {item.attempts} times is effectively unbounded", item.span,
                           f"retry at most {MAX_RETRIES} times; failures then go to the dead-letter store")
        backoff = item.backoff
        if backoff is None:
            return replace(base, retries=item.attempts)
        if backoff.initial.seconds <= 0:
            self.bag.error("POL006", "the first wait must be longer than zero", backoff.initial.span)
        if backoff.maximum is not None and backoff.maximum.seconds < backoff.initial.seconds:
            self.bag.error("POL005", f"the longest wait ({backoff.maximum.text}) is shorter than the first "
                           f"({backoff.initial.text})", backoff.maximum.span)
        return replace(
            base,
            retries=item.attempts,
            backoff=backoff.kind,
            initial=backoff.initial.seconds,
            maximum=backoff.maximum.seconds if backoff.maximum else backoff.initial.seconds,
            jitter=backoff.jitter,
        )

    def _dead_letter(self, item: ast.DeadLetter) -> DeadLetterPlan:
        target = item.target
        if target.kind.text == "store" and not target.head and not target.options:
            return DeadLetterPlan(None, item.span)
        if target.kind.text == "store":
            if target.head:
                self.bag.error("OPT001", "'dead letter to store' takes no options", target.head[0].span)
            # Option lines under it are most often a misspelled step or the next definition after a
            # missing `end`; resolving them against no options says which.
            resolve_options(target.options, (), scope=Scope.STEP, role=Role.SINK, owner="dead letter to store",
                            bag=self.bag, step_keywords=self.step_keywords, check_required=False)
            return DeadLetterPlan(None, item.span)
        endpoint = self.endpoint(target, Role.SINK)
        return DeadLetterPlan(endpoint, item.span)

    def compile_policies(self) -> None:
        neutral = Settings(RetryPlan(), None, DEFAULT_CONCURRENCY)
        for policy in self.project.policies.values():
            self._apply(policy.settings, neutral, {}, "policy")

    # ---- routes ---------------------------------------------------------------------------------

    def compile_route(self, route: ast.Route, maps: dict[str, CompiledMap]) -> RoutePlan | None:
        source = self.endpoint(route.source, Role.SOURCE)
        base = Settings(RetryPlan(), None, DEFAULT_CONCURRENCY)
        settings = self.settings(route.steps, base, "route")
        context = _RouteContext(route, maps, has_sink=False)
        steps = self.steps(route.steps, settings, context, "", RAW)
        if not context.has_sink:
            self.bag.error("RTE001", f"route '{route.name}' never delivers: it has no 'to' step", route.name_span,
                           'add a sink, for example: to file "outbox"')
        elif not context.dead_letter_everywhere:
            self.bag.error("POL002", f"route '{route.name}' has no dead-letter target", route.name_span,
                           "add `dead letter to store` to the route or to a policy it uses")
        if source is None:
            return None
        return RoutePlan(route.name, source, steps, settings.retry, settings.dead_letter or DeadLetterPlan(None),
                         settings.concurrency, route.span, route)

    def steps(
        self, items: Sequence[Any], settings: Settings, context: _RouteContext, prefix: str, body: str
    ) -> list[StepPlan]:
        """Compile a list of steps; `body` is what the message body is when the list starts."""
        plans: list[StepPlan] = []
        for item in items:
            if plans and isinstance(plans[-1], RejectPlan) and type(item) in _STEP_HANDLERS:
                self.bag.warning("RTE013", "this step never runs: `reject` above dead-letters every message",
                                 item.span, "remove it, or put the `reject` under a `when`")
            path = f"{prefix}{len(plans)}"
            compiled, body = self.step(item, settings, context, path, body)
            if compiled is not None:
                plans.append(compiled)
        return plans

    def step(
        self, item: Any, settings: Settings, context: _RouteContext, path: str, body: str
    ) -> tuple[StepPlan | None, str]:
        handler = _STEP_HANDLERS.get(type(item))
        if handler is None:  # settings were applied by `settings`
            return None, body
        return handler(self, item, settings, context, path, body)

    def expression(self, node: ast.Expr, body: str, where: Span, context: _RouteContext) -> Getter:
        if body == RAW:
            self.bag.error("RTE006", "this step reads the message, but the route has not decoded it yet", where,
                           "add a step such as `read json` before it")
        paths = self.path_compiler(body, context.format_arguments.get(body, {}))
        env = CompileEnv(bag=self.bag, tables=self.tables, paths=paths, allow_message=True, allow_out=False)
        return compile_expr(node, env)

    def _read(self, item: ast.Read, settings: Settings, context: _RouteContext, path: str, body: str):
        name = item.format.kind
        try:
            fmt = load_format(name.text)
        except UnknownFormat as error:
            self.bag.error("NAME007", f"unknown format '{name.text}'", name.span,
                           error.hint or "known formats: " + ", ".join(format_names()))
            return None, body
        arguments, head = self.format_arguments(name.text, item.format.head, item.span)
        context.format_arguments[name.text] = arguments
        lines = list(item.format.options)
        inline = head_option_line(head, item.span)
        if inline is not None:
            lines.insert(0, inline)
        # A format's source role is decoding (`read`), its sink role encoding (options on a `to` step).
        options = resolve_options(lines, fmt.SPEC.options, scope=Scope.STEP, role=Role.SOURCE,
                                  owner=f"read {name.text}", bag=self.bag, step_keywords=self.step_keywords)
        plain = {**arguments, **{key: options.get(key) for key in options.values}}
        return ReadPlan(path, f"read {name.text}", item.span, name.text, plain), name.text

    def _split(self, item: ast.Split, settings: Settings, context: _RouteContext, path: str, body: str):
        return SplitPlan(path, "for each", item.span, self.expression(item.over, body, item.span, context)), body

    def _filter(self, item: ast.Filter, settings: Settings, context: _RouteContext, path: str, body: str):
        condition = self.expression(item.condition, body, item.span, context)
        return FilterPlan(path, "keep only when", item.span, condition), body

    def _dedupe(self, item: ast.Dedupe, settings: Settings, context: _RouteContext, path: str, body: str):
        if item.ttl.seconds <= 0:
            self.bag.error("RTE005", "duplicates must be remembered for some time", item.ttl.span,
                           "for example: for 30 days")
        key = self.expression(item.key, body, item.span, context)
        return DedupePlan(path, "skip duplicates", item.span, key, item.ttl.seconds), body

    def _track(self, item: ast.Track, settings: Settings, context: _RouteContext, path: str, body: str):
        for key in item.keys:
            if isinstance(key, ast.Literal):
                self.bag.warning("RTE011", "a constant key ties every message of the route to one story",
                                 key.span, "track by a field of the message, such as po_number")
        keys = [self.expression(key, body, item.span, context) for key in item.keys]
        return TrackPlan(path, "track by", item.span, keys), body

    def _map(self, item: ast.MapStep, settings: Settings, context: _RouteContext, path: str, body: str):
        compiled = context.maps.get(item.name)
        if compiled is None:
            self.bag.error("NAME002", f"unknown map '{item.name}'", item.name_span,
                           did_you_mean(item.name, self.project.maps) or self._declared("maps", self.project.maps))
            return None, body
        source = compiled.source_kind
        if body == RAW:
            self.bag.error("RTE006", f"map '{item.name}' needs a decoded message", item.span,
                           f"add `read {source if source in format_names() else 'json'}` before it")
        elif not _fits(source, body):
            self.bag.error("RTE003", f"map '{item.name}' reads {source}, but the message here is {body}",
                           item.name_span)
        target = compiled.definition.target
        arguments = self.format_arguments(target.kind.text, target.args, target.span)[0]
        return MapPlan(path, f'map with "{item.name}"', item.span, compiled, arguments), compiled.target_kind

    def _validate(self, item: ast.Validate, settings: Settings, context: _RouteContext, path: str, body: str):
        model = MODELS.get(item.model.text)
        if model is None:
            self.bag.error("NAME005", f"unknown model '{item.model.text}'", item.model.span,
                           did_you_mean(item.model.text, MODELS) or "models: " + ", ".join(sorted(MODELS)))
            return None, body
        return ValidatePlan(path, f"validate as {item.model.text}", item.span, model), item.model.text

    def _reject(self, item: ast.Reject, settings: Settings, context: _RouteContext, path: str, body: str):
        if not item.reason.strip():
            self.bag.error("RTE012", "`reject` needs a reason: it becomes the dead letter's error", item.reason_span,
                           'for example: reject "no allocation rule for this warehouse"')
        if settings.dead_letter is None:
            context.dead_letter_everywhere = False
        return RejectPlan(path, "reject", item.span, item.reason), body

    def _sink(self, item: ast.Sink, settings: Settings, context: _RouteContext, path: str, body: str):
        context.has_sink = True
        if settings.dead_letter is None:
            context.dead_letter_everywhere = False
        format_option = replace(FORMAT_OPTION, choices=tuple(format_names()))
        # The sink also takes the encoding options of its format (`pretty yes` for json), so the format
        # is looked up before the options are checked.
        format_specs = self._sink_format_options(item.endpoint, format_option)
        endpoint = self.endpoint(item.endpoint, Role.SINK, extra=(format_option, *format_specs))
        if endpoint is None:
            return None, body
        fmt = endpoint.options.get("format") or FORMAT_OPTION.default
        encode = {spec.key: endpoint.options.get(spec.key) for spec in format_specs
                  if spec.key in endpoint.options.values}
        partner = encode.get("partner")
        if partner is not None and partner not in self.project.partners:
            self.bag.error("NAME011", f"unknown partner '{partner}'", endpoint.options.span("partner") or item.span,
                           did_you_mean(partner, self.project.partners)
                           or self._declared("partners", self.project.partners))
        plan = SinkPlan(path, f"to {endpoint.label}", item.span, endpoint, fmt, encode, settings.retry,
                        settings.dead_letter or DeadLetterPlan(None))
        return plan, body

    def _sink_format_options(self, node: ast.Endpoint, format_option: OptionSpec) -> tuple[OptionSpec, ...]:
        """The encoding options of the format a sink names with `format NAME` (json when it names none)."""
        name = FORMAT_OPTION.default
        head = node.head[1:] if node.head[:1] and isinstance(node.head[0], ast.StringLit) else node.head
        for line in [*head_option_lines(head, [format_option], node.span), *node.options]:
            spec, used = match_option(line.tokens, [format_option])
            rest = line.tokens[used:]
            if spec is not None and len(rest) == 1 and isinstance(rest[0], ast.Word | ast.StringLit):
                name = rest[0].text if isinstance(rest[0], ast.Word) else rest[0].value
        if name not in format_names():
            return ()  # OPT002 says so when the options are checked
        return tuple(o for o in load_format(name).SPEC.options if Role.SINK in o.roles)

    def _fanout(self, item: ast.FanOut, settings: Settings, context: _RouteContext, path: str, body: str):
        branches = []
        for number, branch in enumerate(item.branches):
            inner = self.settings(branch.steps, settings, "branch")
            branches.append(self.steps(branch.steps, inner, context, f"{path}/branch{number}/", body))
        return FanOutPlan(path, "send to all", item.span, branches), body

    def _choice(self, item: ast.Choice, settings: Settings, context: _RouteContext, path: str, body: str):
        clauses = []
        for number, clause in enumerate(item.clauses):
            condition = self.expression(clause.condition, body, clause.span, context)
            inner = self.settings(clause.steps, settings, "branch")
            clauses.append((condition, self.steps(clause.steps, inner, context, f"{path}/when{number}/", body)))
        otherwise = None
        if item.otherwise is not None:
            inner = self.settings(item.otherwise, settings, "branch")
            otherwise = self.steps(item.otherwise, inner, context, f"{path}/otherwise/", body)
        else:
            self.bag.warning("RTE002", "messages that match no 'when' are dead-lettered", item.span,
                             "add an `otherwise` branch to say what happens to them")
        return ChoicePlan(path, "when", item.span, clauses, otherwise), body


    def _call(self, item: ast.CallStep, settings: Settings, context: _RouteContext, path: str, body: str):
        kind = item.endpoint.kind.text
        try:
            callable_kind = hasattr(load_connector(kind), "open_client")
        except UnknownConnector:
            callable_kind = True  # endpoint() below reports the unknown connector
        if not callable_kind:
            self.bag.error("RTE010", f"a {kind} connector cannot be called: it gives no answer",
                           item.endpoint.kind.span, 'call a REST API: call rest "erp-api" get "/prices/{{ sku }}"')
            return None, body
        format_option = replace(FORMAT_OPTION, choices=tuple(format_names()))
        endpoint = self.endpoint(item.endpoint, Role.SINK, extra=(format_option, *CALL_OPTIONS))
        if endpoint is None:
            return None, body
        wait = endpoint.options.get("wait_at_most")
        fallback = endpoint.options.get("fall_back_to_last_answer_for") or 0.0
        plan = CallPlan(path, f"call {endpoint.label}", item.span, endpoint, endpoint.options.get("format") or "json",
                        {}, settings.retry, settings.dead_letter or DeadLetterPlan(None), wait, fallback)
        return plan, "json"

    def _reply(self, item: ast.Reply, settings: Settings, context: _RouteContext, path: str, body: str):
        context.has_sink = True  # answering the caller is what a request-reply route delivers
        status = item.status.value
        if status != status.to_integral_value() or not 100 <= status <= 599:
            self.bag.error("RTE009", f"{status} is not an HTTP status", item.status.span, "for example: reply 200")
        format_option = replace(FORMAT_OPTION, roles=frozenset({Role.SOURCE}), choices=tuple(format_names()))
        header_option = OptionSpec("header", OptionType.HEADER, "A header of the reply: a name and a value or "
                                   "expression.", repeatable=True, example='"Cache-Control" "max-age=60"')
        chosen = self._reply_format(item)
        encoding = tuple(replace(o, roles=frozenset({Role.SOURCE})) for o in load_format(chosen).SPEC.options
                         if Role.SINK in o.roles) if chosen in format_names() else ()
        options = resolve_options(item.options, (format_option, header_option, *encoding), scope=Scope.STEP,
                                  role=Role.SOURCE, owner="reply", bag=self.bag, step_keywords=self.step_keywords)
        headers = []
        for name, value in options.get("header") or []:
            headers.append((name, value if isinstance(value, str) else self.expression(value, body, item.span,
                                                                                        context)))
        encode = {o.key: options.get(o.key) for o in encoding if o.key in options.values}
        plan = ReplyPlan(path, f"reply {int(status)}", item.span, int(status), chosen, encode, headers)
        return plan, body

    def _reply_format(self, item: ast.Reply) -> str:
        for line in item.options:
            spec, used = match_option(line.tokens, [FORMAT_OPTION])
            rest = line.tokens[used:]
            if spec is not None and len(rest) == 1 and isinstance(rest[0], ast.Word):
                return rest[0].text
        return str(FORMAT_OPTION.default)

    def _acknowledge(self, item: ast.Acknowledge, settings: Settings, context: _RouteContext, path: str, body: str):
        kind = None
        if item.kind is not None:
            kind = str(item.kind.value)
            if kind not in ACK_SETS:
                self.bag.error("RTE008", f"acknowledge with 997 or 999, not {kind}", item.kind.span,
                               "or leave the number out: the partner's profile decides")
        if body != "x12":
            self.bag.error("RTE007", "only X12 is acknowledged", item.span,
                           "put `acknowledge ...` right after `read x12`")
        if settings.dead_letter is None:
            context.dead_letter_everywhere = False
        endpoint = self.endpoint(item.endpoint, Role.SINK)
        if endpoint is None:
            return None, body
        plan = AcknowledgePlan(path, f"acknowledge to {endpoint.label}", item.span, endpoint, "x12", {},
                               settings.retry, settings.dead_letter or DeadLetterPlan(None), kind)
        return plan, body


@dataclass
class _RouteContext:
    route: ast.Route
    maps: dict[str, CompiledMap]
    has_sink: bool
    dead_letter_everywhere: bool = True
    format_arguments: dict[str, dict[str, str]] = field(default_factory=dict)


_STEP_HANDLERS: dict[type, Callable[..., tuple[StepPlan | None, str]]] = {
    ast.Read: ProjectCompiler._read,
    ast.Acknowledge: ProjectCompiler._acknowledge,
    ast.Reply: ProjectCompiler._reply,
    ast.CallStep: ProjectCompiler._call,
    ast.Split: ProjectCompiler._split,
    ast.Filter: ProjectCompiler._filter,
    ast.Dedupe: ProjectCompiler._dedupe,
    ast.Track: ProjectCompiler._track,
    ast.MapStep: ProjectCompiler._map,
    ast.Validate: ProjectCompiler._validate,
    ast.Reject: ProjectCompiler._reject,
    ast.Sink: ProjectCompiler._sink,
    ast.FanOut: ProjectCompiler._fanout,
    ast.Choice: ProjectCompiler._choice,
}


def _misspelled(lines: Sequence[ast.OptionLine], option: OptionSpec) -> bool:
    """Whether a line looks like `option` misspelled (OPT001 then already says "did you mean")."""
    for line in lines:
        words = [t.text for t in line.tokens if isinstance(t, ast.Word)]
        if words and closest(" ".join(words[: len(option.words)]), [option.name]) is not None:
            return True
    return False


def _word_groups(tokens: Sequence[ast.OptToken], span: Span) -> list[ast.OptionLine]:
    """`key "code" value "name"` on one line as two option lines, one per leading word."""
    groups: list[list[ast.OptToken]] = []
    for token in tokens:
        if isinstance(token, ast.Word) or not groups:
            groups.append([])
        groups[-1].append(token)
    return [line for group in groups if (line := head_option_line(tuple(group), span)) is not None]


def _fits(source: str, body: str) -> bool:
    """Whether a map reading `source` can take a body of kind `body`.

    A canonical model's data is JSON, so `json` and a model fit each other either way; two different
    models do not (a map from Order cannot read an Invoice).
    """
    if source == body:
        return True
    structured = {"json", *MODELS}
    return "json" in (source, body) and source in structured and body in structured


def _setting_name(item: Any) -> str:
    return {ast.Retry: "retry", ast.RetryOn: "retry on", ast.DeadLetter: "dead letter",
            ast.Concurrency: "process ... at a time"}[type(item)]


def compile_project(project: Project, bag: DiagnosticBag) -> Plan:
    """Compile every table, map, connection, policy and route of `project`; diagnostics go to `bag`."""
    compiler = ProjectCompiler(project, bag)
    for name, table in project.tables.items():
        compiler.tables[name] = compiler.load_table(table)
    plan = Plan()
    plan.partners = compiler.compile_partners()
    plan.maps = compiler.compile_maps()
    compiler.compile_connections()
    compiler.compile_policies()
    for name, route in project.routes.items():
        compiled = compiler.compile_route(route, plan.maps)
        if compiled is not None:
            plan.routes[name] = compiled
    return plan
