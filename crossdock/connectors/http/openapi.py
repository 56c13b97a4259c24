"""`GET /openapi.json`: an OpenAPI 3.1 document of the endpoints one server serves.

Built from the endpoints' settings (method, path, parameters, authentication, limits) and, when the
engine shares its plan, from each route's steps: the request body schema is the JSON Schema file of
the route's first map when it reads `from json schema "file"`, or the canonical model's schema when the
route validates the body as a model before any map; request-reply routes list the statuses of their
`reply` steps. Nested schema definitions (`$defs`) are moved into `components/schemas`, because a
`#/$defs/...` reference inside an OpenAPI document would be resolved against the document's root.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from crossdock import __version__
from crossdock.canonical.schemas import schema_of
from crossdock.connectors.http.body import CONTENT_TYPES, JSON_KIND
from crossdock.connectors.http.settings import EndpointSettings
from crossdock.dsl import ast
from crossdock.engine.plan import MapPlan, ReadPlan, ReplyPlan, RoutePlan, ValidatePlan, walk_steps
from crossdock.formats.base import format_spec

OPENAPI_VERSION = "3.1.0"
_REF = re.compile(r"^#/(\$defs|definitions)/(.+)$")

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message", "correlation_id"],
    "properties": {
        "error": {"type": "string", "description": "A stable code: HTP0xx, or the dead letter's code (V001...)."},
        "message": {"type": "string"},
        "correlation_id": {"type": "string"},
    },
}
_ACCEPTED_SCHEMA = {
    "type": "object",
    "required": ["correlation_id", "status"],
    "properties": {"correlation_id": {"type": "string"}, "status": {"const": "accepted"}},
}
_ERRORS = {
    "400": "Malformed request or body (HTP022, HTP023, HTP025)",
    "401": "Missing or wrong API key or signature (HTP010-HTP014)",
    "408": "The body took too long to arrive (HTP026)",
    "413": "Body larger than the endpoint takes (HTP020)",
    "415": "Content type not accepted (HTP021)",
    "422": "Idempotency-Key reused with another request (HTP024), or the request was dead-lettered",
    "429": "Rate limit reached; see Retry-After (HTP029)",
    "503": "Stopping or unable to store the request now; see Retry-After (HTP033, HTP035)",
}


def build(endpoints: Iterable[EndpointSettings], routes: Mapping[str, RoutePlan]) -> dict[str, Any]:
    """The OpenAPI document for `endpoints`; `routes` (the engine's plans, possibly empty) add schemas."""
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA, "Accepted": _ACCEPTED_SCHEMA}
    security: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in sorted(endpoints, key=lambda e: (e.path, e.method)):
        plan = _plan_of(endpoint, routes)
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, plan, components,
                                                                                  security)
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "crossdock REST intake", "version": __version__},
        "paths": paths,
        "components": {"schemas": components},
    }
    if security:
        document["components"]["securitySchemes"] = security
    return document


def _plan_of(endpoint: EndpointSettings, routes: Mapping[str, RoutePlan]) -> RoutePlan | None:
    plan = routes.get(endpoint.route)
    if plan is not None and plan.source.kind == "http":
        return plan
    for candidate in routes.values():  # the route was renamed under us: find it by what it serves
        if candidate.source.kind == "http" and candidate.source.options.get(endpoint.method.lower()) == endpoint.path:
            return candidate
    return None


def _operation(endpoint: EndpointSettings, plan: RoutePlan | None, components: dict[str, Any],
               security: dict[str, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in endpoint.parameters
    ]
    parameters.append({"name": "X-Correlation-ID", "in": "header", "required": False, "schema": {"type": "string"},
                       "description": "Kept when given (up to 128 of A-Z a-z 0-9 . _ : -), else assigned; "
                                      "always returned."})
    if endpoint.intake:
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "maxLength": 255},
                           "description": "The same key with the same request returns the first answer and "
                                          "stores nothing; with another request it is refused (422)."})
    operation: dict[str, Any] = {
        "operationId": _operation_id(endpoint),
        "summary": endpoint.route,
        "parameters": parameters,
        "responses": _responses(endpoint, plan),
    }
    if endpoint.takes_body:
        operation["requestBody"] = {"required": True, "content": _request_content(plan, components)}
    requirements = _security(endpoint, security)
    if requirements:
        operation["security"] = [requirements]
    return operation


def _operation_id(endpoint: EndpointSettings) -> str:
    words = re.findall(r"[A-Za-z0-9]+", f"{endpoint.method} {endpoint.path}")
    return "_".join(word.lower() for word in words)


def _responses(endpoint: EndpointSettings, plan: RoutePlan | None) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    responses: dict[str, Any] = {}
    if endpoint.intake:
        responses["202"] = {"description": "Stored durably; the route processes it next.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}}
    else:
        for status, content_type in _replies(plan):
            responses[str(status)] = {"description": "The route's reply.", "content": {content_type: {}}}
        if not responses:
            responses["200"] = {"description": "The route's reply."}
        responses["204"] = {"description": "The route delivered the request (or skipped a duplicate) "
                                           "without a reply."}
        responses["404"] = {"description": "The route filtered the request out (HTP031).", **error}
        responses["504"] = {"description": "No reply within the answer timeout (HTP032).", **error}
    for status, description in _ERRORS.items():
        if not endpoint.takes_body and status in {"408", "413", "415"}:
            continue
        if not endpoint.auth.open or status != "401":
            responses.setdefault(status, {"description": description, **error})
    return dict(sorted(responses.items()))


def _replies(plan: RoutePlan | None) -> list[tuple[int, str]]:
    if plan is None:
        return []
    return sorted({(step.status, format_spec(step.format).content_type)
                   for step in walk_steps(plan.steps) if isinstance(step, ReplyPlan)})


def _request_content(plan: RoutePlan | None, components: dict[str, Any]) -> dict[str, Any]:
    kinds = list(CONTENT_TYPES)
    schema: dict[str, Any] | None = None
    if plan is not None:
        read = next((s for s in plan.steps if isinstance(s, ReadPlan)), None)
        if read is not None and read.format in CONTENT_TYPES:
            kinds = [read.format]  # the route decodes one format: the others would only be dead-lettered
        if read is None or read.format == JSON_KIND:
            schema = _body_schema(plan, components)
    content: dict[str, Any] = {}
    for kind in kinds:
        for media in CONTENT_TYPES[kind]:
            content[media] = {"schema": schema} if kind == JSON_KIND and schema is not None else {}
    return content


def _body_schema(plan: RoutePlan, components: dict[str, Any]) -> dict[str, Any] | None:
    """What the body must look like: the first map's source schema, or the model validated before any map."""
    for step in plan.steps:
        if isinstance(step, ValidatePlan):
            return _component(step.model.__name__, schema_of(step.model), components)
        if isinstance(step, MapPlan):
            definition = step.map.definition
            args = definition.source.args
            if definition.source.kind.text == "json" and len(args) == 2 and isinstance(args[1], ast.StringLit):
                path = Path(definition.span.file).parent / args[1].value
                try:
                    loaded = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):  # lint reported it (MAP008); the document goes on without
                    return None
                return _component(_name(path), loaded, components)
            return None
    return None


def _name(path: Path) -> str:
    stem = path.name.removesuffix(".json").removesuffix(".schema")
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", stem) if part) or "Body"


def _component(name: str, schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Register `schema` (and its `$defs`) under components; returns a reference to it."""
    schema = dict(schema)
    schema.pop("$schema", None)  # the document's dialect applies; a per-schema one confuses some tools
    schema.pop("$id", None)
    definitions = {**schema.pop("definitions", {}), **schema.pop("$defs", {})}
    renamed = {old: f"{name}.{old}" for old in definitions}
    for old, definition in definitions.items():
        components[renamed[old]] = _rewrite(definition, renamed)
    components[name] = _rewrite(schema, renamed)
    return {"$ref": f"#/components/schemas/{name}"}


def _rewrite(value: Any, renamed: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            match = _REF.match(item) if key == "$ref" and isinstance(item, str) else None
            out[key] = f"#/components/schemas/{renamed.get(match[2], match[2])}" if match else _rewrite(item, renamed)
        return out
    if isinstance(value, list):
        return [_rewrite(item, renamed) for item in value]
    return value


def _security(endpoint: EndpointSettings, schemes: dict[str, Any]) -> dict[str, list[str]]:
    requirements: dict[str, list[str]] = {}
    if endpoint.auth.keys:
        name = f"apiKey.{endpoint.auth.key_header}"
        schemes[name] = {"type": "apiKey", "in": "header", "name": endpoint.auth.key_header}
        requirements[name] = []
    if endpoint.auth.hmac_secret is not None:
        name = f"signature.{endpoint.auth.signature_header}"
        schemes[name] = {
            "type": "apiKey", "in": "header", "name": endpoint.auth.signature_header,
            "description": f"sha256=<hex HMAC-SHA256(secret, {endpoint.auth.timestamp_header} + '.' + body)>, "
                           f"with the Unix time in {endpoint.auth.timestamp_header}, within "
                           f"{endpoint.auth.window:g}s of the server's clock.",
        }
        requirements[name] = []
    return requirements
