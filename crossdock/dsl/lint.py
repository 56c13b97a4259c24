"""`crossdock lint`: syntax, then names, options, policies, maps and (optionally) the environment.

Lint and `crossdock run` share one compiler (:mod:`crossdock.engine.compiler`), so whatever lint
accepts, run understands the same way; lint adds the checks that need no running engine: maps against
their target models and source schemas, and env/secret names with `--require-env`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crossdock.dsl.diagnostics import Diagnostic, DiagnosticBag, Severity
from crossdock.dsl.mapcheck import check_maps
from crossdock.dsl.options import Deferred
from crossdock.dsl.project import Project, load_project
from crossdock.engine.compiler import compile_project
from crossdock.engine.plan import EndpointPlan, Plan, SinkPlan, StepPlan, walk_steps


@dataclass
class LintResult:
    """What lint found, and what it built on the way (for `run` and `test` to reuse)."""

    project: Project
    plan: Plan | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]


def endpoints(plan: Plan) -> Iterator[EndpointPlan]:
    """Every endpoint the routes of `plan` use: sources, sinks and dead-letter targets."""
    for route in plan.routes.values():
        yield route.source
        if route.dead_letter.endpoint is not None:
            yield route.dead_letter.endpoint
        steps: list[StepPlan] = walk_steps(route.steps)
        for step in steps:
            if isinstance(step, SinkPlan):
                yield step.endpoint
                if step.dead_letter.endpoint is not None:
                    yield step.dead_letter.endpoint


def unset_references(plan: Plan, env: Mapping[str, str] | None = None) -> list[Deferred]:
    """The env and secret references of `plan` that have no value now, each once."""
    seen: dict[tuple[str, str, str], Deferred] = {}
    for endpoint in endpoints(plan):
        for reference in endpoint.options.deferred():
            if reference.resolve(env) is None:
                seen.setdefault((reference.source, reference.name, str(reference.span)), reference)
    return list(seen.values())


def lint(paths: Sequence[str | Path], *, require_env: bool = False, env: Mapping[str, str] | None = None) -> LintResult:
    """Lint every route file under `paths`."""
    project = load_project(paths)
    bag = DiagnosticBag(list(project.diagnostics))
    plan = None
    if project.modules:
        plan = compile_project(project, bag)
        check_maps(project.maps, set(project.tables), bag)
        if require_env:
            for reference in unset_references(plan, env):
                code, what = ("ENV001", "environment variable") if reference.source == "env" else ("SEC001", "secret")
                bag.error(code, f"{what} '{reference.name}' is not set", reference.span,
                          "set it before `crossdock run`" if reference.source == "env"
                          else "put it in $CROSSDOCK_SECRETS_DIR/<name> or the environment")
    return LintResult(project, plan, bag.sorted())
