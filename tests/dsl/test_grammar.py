"""Every construct of `crossdock/dsl/route.lark`, parsed from a small text, with its AST node and span.

Spans are 1-based (line, column) with an exclusive end; a statement's span ends at the end of its own
line (not at the start of the next one).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from crossdock.dsl import ast
from crossdock.dsl.diagnostics import Span
from crossdock.dsl.parser import parse_text


def parse(text: str) -> ast.Module:
    """Parse `text`, failing the test on any diagnostic."""
    module, diagnostics = parse_text(text, "t.route")
    assert diagnostics == [], [str(d) for d in diagnostics]
    assert module is not None
    return module


def at(span: Span) -> tuple[int, int, int, int]:
    return span.line, span.column, span.end_line, span.end_column


def only(text: str) -> ast.Definition:
    definitions = parse(text).definitions
    assert len(definitions) == 1
    return definitions[0]


def expr(source: str) -> ast.Expr:
    """The expression of `x = <source>` on line 4 of a map; it starts at column 7."""
    definition = only(f'map "m"\n  from json\n  to json\n  x = {source}\nend\n')
    assert isinstance(definition, ast.MapDef)
    item = definition.items[0]
    assert isinstance(item, ast.Assign)
    return item.expr


def route_steps(body: str) -> tuple[ast.Step, ...]:
    """The steps of a route whose step lines (`body`) start on line 3."""
    definition = only(f'route "r"\n  from file "in"\n{body}end\n')
    assert isinstance(definition, ast.Route)
    return definition.steps


# ---- connections and option tokens ---------------------------------------------------------------


def test_connection_with_every_option_token_kind() -> None:
    connection = only(
        'connection "erp-api" is file\n'
        '  folder "in/orders"\n'
        "  batch 50\n"
        "  timeout 30s\n"
        "  timeout 30 seconds\n"
        '  base url env "ERP_URL"\n'
        '  auth bearer secret "ERP_TOKEN"\n'
        '  header "Idempotency-Key" = order.po_number\n'
        "end\n"
    )
    assert isinstance(connection, ast.Connection)
    assert connection.name == "erp-api"
    assert at(connection.name_span) == (1, 12, 1, 21)
    assert connection.kind == ast.Name("file", Span("t.route", 1, 25, 1, 29))
    assert at(connection.span) == (1, 1, 9, 4)
    folder, batch, joined, spaced, env, secret, header = connection.options

    assert folder.tokens == (ast.Word("folder", Span("t.route", 2, 3, 2, 9)),
                             ast.StringLit("in/orders", Span("t.route", 2, 10, 2, 21)))
    assert at(folder.span) == (2, 3, 2, 21)
    assert folder.expr is None

    assert batch.tokens[1] == ast.NumberLit(Decimal("50"), Span("t.route", 3, 9, 3, 11))

    duration = joined.tokens[1]
    assert isinstance(duration, ast.DurationLit)
    assert (duration.seconds, duration.text, at(duration.span)) == (30.0, "30s", (4, 11, 4, 14))

    # `30 seconds` stays two tokens on an option line; the option's declared type reads it as a duration.
    assert spaced.tokens[1:] == (ast.NumberLit(Decimal("30"), Span("t.route", 5, 11, 5, 13)),
                                 ast.Word("seconds", Span("t.route", 5, 14, 5, 21)))

    assert [t.text for t in env.tokens[:2]] == ["base", "url"]  # type: ignore[union-attr]
    assert env.tokens[2] == ast.EnvRef("ERP_URL", Span("t.route", 6, 12, 6, 25))
    assert secret.tokens[2] == ast.SecretRef("ERP_TOKEN", Span("t.route", 7, 15, 7, 33))

    assert header.tokens[1] == ast.StringLit("Idempotency-Key", Span("t.route", 8, 10, 8, 27))
    assert isinstance(header.expr, ast.Path)
    assert header.expr.dotted == "order.po_number"
    assert at(header.expr.span) == (8, 30, 8, 45)
    assert at(header.span) == (8, 3, 8, 45)


def test_option_line_span_ends_at_its_last_token_not_at_a_trailing_comment() -> None:
    connection = only('connection "c" is file\n  folder "x"   # the inbox\nend\n')
    assert isinstance(connection, ast.Connection)
    assert at(connection.options[0].span) == (2, 3, 2, 13)


# ---- policies ------------------------------------------------------------------------------------


def test_policy_with_every_setting() -> None:
    policy = only(
        'policy "standard"\n'
        "  retry 5 times backoff exponential from 2s up to 5 minutes with jitter\n"
        "  retry on timeout, throttled\n"
        "  dead letter to store\n"
        "  process 8 at a time\n"
        "end\n"
    )
    assert isinstance(policy, ast.Policy)
    assert (policy.name, at(policy.name_span), at(policy.span)) == ("standard", (1, 8, 1, 18), (1, 1, 6, 4))
    retry, retry_on, dead_letter, concurrency = policy.settings

    assert isinstance(retry, ast.Retry)
    assert retry.attempts == 5
    assert at(retry.span) == (2, 3, 2, 72)
    backoff = retry.backoff
    assert backoff is not None
    assert (backoff.kind, backoff.jitter) == ("exponential", True)
    assert (backoff.initial.seconds, at(backoff.initial.span)) == (2.0, (2, 42, 2, 44))
    assert backoff.maximum is not None
    assert (backoff.maximum.seconds, backoff.maximum.text) == (300.0, "5 minutes")
    assert at(backoff.maximum.span) == (2, 51, 2, 60)
    assert at(backoff.span) == (2, 17, 2, 72)

    assert isinstance(retry_on, ast.RetryOn)
    assert retry_on.kinds == (ast.Name("timeout", Span("t.route", 3, 12, 3, 19)),
                              ast.Name("throttled", Span("t.route", 3, 21, 3, 30)))

    assert isinstance(dead_letter, ast.DeadLetter)
    assert dead_letter.target.kind == ast.Name("store", Span("t.route", 4, 18, 4, 23))
    assert dead_letter.target.head == () and dead_letter.target.options == ()
    assert at(dead_letter.span) == (4, 3, 4, 23)

    assert isinstance(concurrency, ast.Concurrency)
    assert (concurrency.count, at(concurrency.span)) == (8, (5, 3, 5, 22))


def test_fixed_backoff_without_jitter_and_never_retry() -> None:
    policy = only('policy "p"\n  retry 3 times backoff fixed 10s\n  never retry\nend\n')
    assert isinstance(policy, ast.Policy)
    fixed, never = policy.settings
    assert isinstance(fixed, ast.Retry) and fixed.backoff is not None
    assert (fixed.backoff.kind, fixed.backoff.initial.seconds, fixed.backoff.maximum, fixed.backoff.jitter) == (
        "fixed", 10.0, None, False)
    assert at(fixed.backoff.span) == (2, 17, 2, 34)
    assert isinstance(never, ast.Retry)
    assert (never.attempts, never.backoff, at(never.span)) == (0, None, (3, 3, 3, 14))


def test_retry_without_backoff() -> None:
    policy = only('policy "p"\n  retry 2 times\nend\n')
    assert isinstance(policy, ast.Policy)
    assert policy.settings == (ast.Retry(2, None, Span("t.route", 2, 3, 2, 16)),)


def test_dead_letter_to_a_connector_with_head_options_and_option_lines() -> None:
    policy = only('policy "p"\n  dead letter to queue "broker" queue "orders.dlq"\n    lease 5m\nend\n')
    assert isinstance(policy, ast.Policy)
    (dead_letter,) = policy.settings
    assert isinstance(dead_letter, ast.DeadLetter)
    target = dead_letter.target
    assert target.kind.text == "queue"
    assert [t.value for t in target.head if isinstance(t, ast.StringLit)] == ["broker", "orders.dlq"]
    assert isinstance(target.head[1], ast.Word) and target.head[1].text == "queue"
    assert len(target.options) == 1 and at(target.options[0].span) == (3, 5, 3, 13)
    assert at(dead_letter.span) == (2, 3, 3, 13)


# ---- routes --------------------------------------------------------------------------------------


def test_route_source_with_head_and_option_lines() -> None:
    route = only('route "Orders"\n  from file "inbox" files "*.json"\n    check every 30s\n  to file "out"\nend\n')
    assert isinstance(route, ast.Route)
    assert (route.name, at(route.name_span), at(route.span)) == ("Orders", (1, 7, 1, 15), (1, 1, 5, 4))
    source = route.source
    assert source.kind == ast.Name("file", Span("t.route", 2, 8, 2, 12))
    assert source.head == (ast.StringLit("inbox", Span("t.route", 2, 13, 2, 20)),
                           ast.Word("files", Span("t.route", 2, 21, 2, 26)),
                           ast.StringLit("*.json", Span("t.route", 2, 27, 2, 35)))
    assert len(source.options) == 1 and at(source.options[0].span) == (3, 5, 3, 20)
    assert at(source.span) == (2, 3, 3, 20)


def test_read_with_arguments_and_options() -> None:
    (read,) = route_steps("  read x12 850\n    strict yes\n")
    assert isinstance(read, ast.Read)
    assert read.format.kind == ast.Name("x12", Span("t.route", 3, 8, 3, 11))
    assert read.format.head == (ast.NumberLit(Decimal(850), Span("t.route", 3, 12, 3, 15)),)
    assert [t.text for t in read.format.options[0].tokens if isinstance(t, ast.Word)] == ["strict", "yes"]
    assert at(read.span) == (3, 3, 4, 15)


def test_split_filter_dedupe_map_validate_use_policy() -> None:
    split, keep, dedupe, dedupe_spaced, map_step, validate, use = route_steps(
        "  for each $.items[*]\n"
        '  keep only when status = "open"\n'
        "  skip duplicates by po_number for 90d\n"
        "  skip duplicates by customer.id for 30 days\n"
        '  map with "Web order to Order"\n'
        "  validate as Order\n"
        '  use policy "standard"\n'
    )
    assert isinstance(split, ast.Split) and isinstance(split.over, ast.JsonPath)
    assert (split.over.text, at(split.span)) == ("$.items[*]", (3, 3, 3, 22))

    assert isinstance(keep, ast.Filter) and isinstance(keep.condition, ast.Binary)
    assert keep.condition.op == "=" and at(keep.condition.span) == (4, 18, 4, 33)

    assert isinstance(dedupe, ast.Dedupe) and isinstance(dedupe.key, ast.Path)
    assert (dedupe.key.dotted, dedupe.ttl.seconds, at(dedupe.ttl.span)) == ("po_number", 90 * 86400.0, (5, 36, 5, 39))
    assert isinstance(dedupe_spaced, ast.Dedupe)
    assert (dedupe_spaced.ttl.seconds, dedupe_spaced.ttl.text) == (30 * 86400.0, "30 days")
    assert at(dedupe_spaced.ttl.span) == (6, 38, 6, 45)

    assert isinstance(map_step, ast.MapStep)
    assert (map_step.name, at(map_step.name_span), at(map_step.span)) == (
        "Web order to Order", (7, 12, 7, 32), (7, 3, 7, 32))
    assert isinstance(validate, ast.Validate)
    assert validate.model == ast.Name("Order", Span("t.route", 8, 15, 8, 20))
    assert isinstance(use, ast.UsePolicy)
    assert (use.name, at(use.name_span), at(use.span)) == ("standard", (9, 14, 9, 24), (9, 3, 9, 24))


def test_sink_with_inline_head_option_and_option_lines() -> None:
    (sink,) = route_steps('  to queue "broker" queue "orders"\n    header "X-Source" = "web"\n    format json\n')
    assert isinstance(sink, ast.Sink)
    endpoint = sink.endpoint
    assert endpoint.kind.text == "queue"
    assert [token for token in endpoint.head] == [
        ast.StringLit("broker", Span("t.route", 3, 12, 3, 20)),
        ast.Word("queue", Span("t.route", 3, 21, 3, 26)),
        ast.StringLit("orders", Span("t.route", 3, 27, 3, 35)),
    ]
    header, fmt = endpoint.options
    assert isinstance(header.expr, ast.Literal) and header.expr.value == "web"
    assert [t.text for t in fmt.tokens if isinstance(t, ast.Word)] == ["format", "json"]
    assert at(sink.span) == (3, 3, 5, 16)


def test_send_to_all_with_plain_sinks_and_named_branches() -> None:
    (fanout,) = route_steps(
        "  send to all\n"
        '    to file "a"\n'
        '    branch "erp"\n'
        '      map with "Order to ERP"\n'
        '      to queue "erp" queue "in"\n'
        "      retry 3 times\n"
        "    end\n"
        "  end\n"
    )
    assert isinstance(fanout, ast.FanOut)
    assert at(fanout.span) == (3, 3, 10, 6)
    plain, named = fanout.branches
    assert plain.name is None and len(plain.steps) == 1 and isinstance(plain.steps[0], ast.Sink)
    assert at(plain.span) == (4, 5, 4, 16)
    assert named.name == "erp"
    assert [type(s) for s in named.steps] == [ast.MapStep, ast.Sink, ast.Retry]
    assert at(named.span) == (5, 5, 9, 8)


def test_choice_with_when_clauses_and_otherwise() -> None:
    (choice,) = route_steps(
        '  when warehouse = "DAL"\n'
        '    to queue "q" queue "dal"\n'
        '  when warehouse in ("RNO", "SLC")\n'
        '    map with "m"\n'
        '    to queue "q" queue "west"\n'
        "  otherwise\n"
        "    dead letter to store\n"
        "  end\n"
    )
    assert isinstance(choice, ast.Choice)
    assert at(choice.span) == (3, 3, 10, 6)
    first, second = choice.clauses
    assert isinstance(first.condition, ast.Binary) and at(first.condition.span) == (3, 8, 3, 25)
    assert at(first.span) == (3, 3, 4, 29)
    assert isinstance(second.condition, ast.InList)
    assert [type(s) for s in second.steps] == [ast.MapStep, ast.Sink]
    assert choice.otherwise is not None and isinstance(choice.otherwise[0], ast.DeadLetter)
    assert choice.otherwise_span is not None and at(choice.otherwise_span) == (8, 3, 9, 25)


def test_choice_without_otherwise() -> None:
    (choice,) = route_steps('  when a = 1\n    to file "x"\n  end\n')
    assert isinstance(choice, ast.Choice)
    assert (len(choice.clauses), choice.otherwise, choice.otherwise_span) == (1, None, None)


def test_inline_settings_in_a_route() -> None:
    steps = route_steps(
        "  retry 4 times backoff fixed 1s with jitter\n"
        "  retry on connection\n"
        '  dead letter to file "dead"\n'
        "  process 2 at a time\n"
        "  never retry\n"
    )
    assert [type(s) for s in steps] == [ast.Retry, ast.RetryOn, ast.DeadLetter, ast.Concurrency, ast.Retry]
    retry = steps[0]
    assert isinstance(retry, ast.Retry) and retry.backoff is not None and retry.backoff.jitter
    dead_letter = steps[2]
    assert isinstance(dead_letter, ast.DeadLetter)
    assert dead_letter.target.head == (ast.StringLit("dead", Span("t.route", 5, 23, 5, 29)),)


# ---- maps ----------------------------------------------------------------------------------------


def test_map_source_target_and_assignments() -> None:
    definition = only(
        'map "X12 850 to Order"\n'
        "  from x12 850\n"
        "  to Order\n"
        "  po_number = BEG03\n"
        "  ship_to.name = N1.N102\n"
        "end\n"
    )
    assert isinstance(definition, ast.MapDef)
    assert (definition.name, at(definition.name_span), at(definition.span)) == (
        "X12 850 to Order", (1, 5, 1, 23), (1, 1, 6, 4))
    assert definition.source.kind.text == "x12"
    assert definition.source.args == (ast.NumberLit(Decimal(850), Span("t.route", 2, 12, 2, 15)),)
    assert at(definition.source.span) == (2, 3, 2, 15)
    assert (definition.target.kind.text, definition.target.args, at(definition.target.span)) == (
        "Order", (), (3, 3, 3, 11))
    plain, dotted = definition.items
    assert isinstance(plain, ast.Assign) and plain.target.parts == ("po_number",)
    assert at(plain.target.span) == (4, 3, 4, 12) and at(plain.span) == (4, 3, 4, 20)
    assert isinstance(dotted, ast.Assign) and dotted.target.dotted == "ship_to.name"
    assert at(dotted.target.span) == (5, 3, 5, 15)


def test_map_source_with_schema_argument() -> None:
    definition = only('map "m"\n  from json schema "schemas/in.json"\n  to Order\nend\n')
    assert isinstance(definition, ast.MapDef)
    assert definition.source.args == (ast.Word("schema", Span("t.route", 2, 13, 2, 19)),
                                      ast.StringLit("schemas/in.json", Span("t.route", 2, 20, 2, 37)))


def test_map_for_each_with_where_and_nested_object() -> None:
    definition = only(
        'map "m"\n'
        "  from json\n"
        "  to Order\n"
        '  lines = for each line_items where status != "void"\n'
        "    sku = sku\n"
        "    line_number = loop.index\n"
        "  end\n"
        "  customer = object from buyer\n"
        "    id = id\n"
        "  end\n"
        "  ship_to = object\n"
        "    name = shipping.name\n"
        "  end\n"
        "end\n"
    )
    assert isinstance(definition, ast.MapDef)
    each, with_context, without_context = definition.items
    assert isinstance(each, ast.AssignEach)
    assert isinstance(each.over, ast.Path) and each.over.dotted == "line_items"
    assert isinstance(each.where, ast.Binary) and each.where.op == "!="
    assert at(each.where.span) == (4, 37, 4, 53)
    assert [i.target.dotted for i in each.items if isinstance(i, ast.Assign)] == ["sku", "line_number"]
    assert at(each.span) == (4, 3, 7, 6)

    assert isinstance(with_context, ast.AssignObject)
    assert isinstance(with_context.context, ast.Path) and with_context.context.dotted == "buyer"
    assert at(with_context.span) == (8, 3, 10, 6)
    assert isinstance(without_context, ast.AssignObject) and without_context.context is None
    assert len(without_context.items) == 1


def test_map_for_each_without_where() -> None:
    definition = only('map "m"\n  from json\n  to json\n  lines = for each items\n    a = 1\n  end\nend\n')
    assert isinstance(definition, ast.MapDef)
    each = definition.items[0]
    assert isinstance(each, ast.AssignEach) and each.where is None


def test_map_when_otherwise() -> None:
    definition = only(
        'map "m"\n'
        "  from json\n"
        "  to json\n"
        '  when kind = "b2b"\n'
        "    channel = \"edi\"\n"
        "    lines = for each items\n"
        "      a = 1\n"
        "    end\n"
        "  when kind is missing\n"
        "    account = object\n"
        "      id = 0\n"
        "    end\n"
        "  otherwise\n"
        '    channel = "web"\n'
        "  end\n"
        "end\n"
    )
    assert isinstance(definition, ast.MapDef)
    (when,) = definition.items
    assert isinstance(when, ast.MapWhen)
    assert at(when.span) == (4, 3, 15, 6)
    (first_condition, first_items), (second_condition, second_items) = when.clauses
    assert isinstance(first_condition, ast.Binary)
    assert [type(i) for i in first_items] == [ast.Assign, ast.AssignEach]
    assert isinstance(second_condition, ast.Presence) and not second_condition.present
    assert [type(i) for i in second_items] == [ast.AssignObject]
    assert when.otherwise is not None and [i.target.dotted for i in when.otherwise] == ["channel"]


def test_map_when_without_otherwise() -> None:
    definition = only('map "m"\n  from json\n  to json\n  when a = 1\n    b = 2\n  end\nend\n')
    assert isinstance(definition, ast.MapDef)
    (when,) = definition.items
    assert isinstance(when, ast.MapWhen) and when.otherwise is None and len(when.clauses) == 1


def test_map_inline_table_and_test_block() -> None:
    definition = only(
        'map "m"\n'
        "  from json\n"
        "  to json\n"
        "  table units\n"
        '    "EA" -> "each"\n'
        "  end\n"
        '  test "two lines"\n'
        '    input "tests/in.json"\n'
        '    expect "tests/out.json"\n'
        "  end\n"
        "end\n"
    )
    assert isinstance(definition, ast.MapDef)
    (table,) = definition.tables
    assert table.name == ast.Name("units", Span("t.route", 4, 9, 4, 14))
    assert at(table.span) == (4, 3, 6, 6)
    (test,) = definition.tests
    assert test.name == "two lines"
    assert at(test.span) == (7, 3, 10, 6)
    assert test.settings == (
        (ast.Name("input", Span("t.route", 8, 5, 8, 10)),
         ast.StringLit("tests/in.json", Span("t.route", 8, 11, 8, 26))),
        (ast.Name("expect", Span("t.route", 9, 5, 9, 11)),
         ast.StringLit("tests/out.json", Span("t.route", 9, 12, 9, 28))),
    )


# ---- tables --------------------------------------------------------------------------------------


def test_top_level_inline_table_with_every_literal_kind() -> None:
    table = only('table units\n  "EA" -> "each"\n  1 -> 2.5\n  true -> false\n  "x" -> null\nend\n')
    assert isinstance(table, ast.Table)
    assert table.csv is None and table.csv_options == ()
    assert at(table.span) == (1, 1, 6, 4)
    assert [(e.key.value, e.value.value) for e in table.entries] == [
        ("EA", "each"), (Decimal(1), Decimal("2.5")), (True, False), ("x", None)]
    first = table.entries[0]
    assert at(first.span) == (2, 3, 2, 17)
    assert at(first.key.span) == (2, 3, 2, 7) and at(first.value.span) == (2, 11, 2, 17)


def test_top_level_csv_table() -> None:
    table = only('table warehouses from csv "tables/wh.csv" key "code" value "name"\n')
    assert isinstance(table, ast.Table)
    assert table.entries == ()
    assert table.csv == ast.StringLit("tables/wh.csv", Span("t.route", 1, 27, 1, 42))
    assert [t.text if isinstance(t, ast.Word) else t.value for t in table.csv_options] == [  # type: ignore[union-attr]
        "key", "code", "value", "name"]
    assert at(table.span) == (1, 1, 1, 66)


# ---- expressions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value", "end"),
    [('"text"', "text", 13), ("42", Decimal(42), 9), ("12.50", Decimal("12.50"), 12), ("true", True, 11),
     ("false", False, 12), ("null", None, 11)],
)
def test_literals(source: str, value: object, end: int) -> None:
    node = expr(source)
    assert node == ast.Literal(value, Span("t.route", 4, 7, 4, end))


def test_plain_path() -> None:
    node = expr("customer.address.city")
    assert isinstance(node, ast.Path)
    assert [s.name for s in node.steps] == ["customer", "address", "city"]
    assert at(node.span) == (4, 7, 4, 28)
    assert at(node.steps[1].span) == (4, 16, 4, 23)


def test_path_with_qualifier_condition() -> None:
    node = expr('N1[N101 = "ST"].N102')
    assert isinstance(node, ast.Path)
    first, second = node.steps
    assert first.name == "N1" and at(first.span) == (4, 7, 4, 22)
    qualifier = first.qualifier
    assert isinstance(qualifier, ast.Binary) and qualifier.op == "="
    assert isinstance(qualifier.left, ast.Path) and qualifier.left.dotted == "N101"
    assert qualifier.right == ast.Literal("ST", Span("t.route", 4, 17, 4, 21))
    assert second == ast.PathStep("N102", Span("t.route", 4, 23, 4, 27))


def test_path_with_index_and_table_lookup() -> None:
    node = expr("lines[0].sku")
    assert isinstance(node, ast.Path)
    assert node.steps[0].qualifier == ast.Literal(Decimal(0), Span("t.route", 4, 13, 4, 14))
    lookup = expr("units[lower(unit)]")
    assert isinstance(lookup, ast.Path) and isinstance(lookup.steps[0].qualifier, ast.Call)


def test_jsonpath() -> None:
    node = expr("$.items[*].sku")
    assert node == ast.JsonPath("$.items[*].sku", Span("t.route", 4, 7, 4, 21))
    assert expr("$..sku") == ast.JsonPath("$..sku", Span("t.route", 4, 7, 4, 13))
    assert expr('$["odd key"]') == ast.JsonPath('$["odd key"]', Span("t.route", 4, 7, 4, 19))


@pytest.mark.parametrize(("source", "count"), [("uuid()", 0), ("upper(name)", 1), ('concat(a, " ", b)', 3)])
def test_calls_with_zero_to_n_arguments(source: str, count: int) -> None:
    node = expr(source)
    assert isinstance(node, ast.Call)
    assert len(node.args) == count
    assert at(node.span) == (4, 7, 4, 7 + len(source))


@pytest.mark.parametrize(("source", "op"), [
    ("a + b", "+"), ("a - b", "-"), ("a * b", "*"), ("a / b", "/"), ("a = b", "="), ("a != b", "!="),
    ("a < b", "<"), ("a <= b", "<="), ("a > b", ">"), ("a >= b", ">="), ("a and b", "and"), ("a or b", "or"),
    ("a default b", "default"),
])
def test_binary_operators(source: str, op: str) -> None:
    node = expr(source)
    assert isinstance(node, ast.Binary)
    assert node.op == op
    assert isinstance(node.left, ast.Path) and node.left.dotted == "a"
    assert isinstance(node.right, ast.Path) and node.right.dotted == "b"
    assert at(node.span) == (4, 7, 4, 7 + len(source))
    assert at(node.right.span) == (4, 6 + len(source), 4, 7 + len(source))


def test_unary_minus_and_not() -> None:
    negate = expr("-price")
    assert isinstance(negate, ast.Unary) and negate.op == "-" and at(negate.span) == (4, 7, 4, 13)
    negation = expr("not a = 1")
    assert isinstance(negation, ast.Unary) and negation.op == "not"
    assert isinstance(negation.operand, ast.Binary) and negation.operand.op == "="


def test_in_list_and_presence() -> None:
    node = expr('code in ("EA", "CS")')
    assert isinstance(node, ast.InList)
    assert [o.value for o in node.options] == ["EA", "CS"]  # type: ignore[union-attr]
    assert at(node.span) == (4, 7, 4, 27)
    single = expr("code in (1)")
    assert isinstance(single, ast.InList) and len(single.options) == 1
    missing = expr("note is missing")
    assert isinstance(missing, ast.Presence) and not missing.present and at(missing.span) == (4, 7, 4, 22)
    present = expr("note is present")
    assert isinstance(present, ast.Presence) and present.present


def test_precedence_multiplication_before_addition() -> None:
    node = expr("a + b * c - d")
    # ((a + (b * c)) - d)
    assert isinstance(node, ast.Binary) and node.op == "-"
    assert isinstance(node.left, ast.Binary) and node.left.op == "+"
    assert isinstance(node.left.right, ast.Binary) and node.left.right.op == "*"


def test_precedence_of_logic_comparison_and_default() -> None:
    node = expr("a = 1 or b < 2 and not c default d")
    # (a = 1 or (b < 2 and (not c))) default d
    assert isinstance(node, ast.Binary) and node.op == "default"
    left = node.left
    assert isinstance(left, ast.Binary) and left.op == "or"
    assert isinstance(left.left, ast.Binary) and left.left.op == "="
    assert isinstance(left.right, ast.Binary) and left.right.op == "and"
    assert isinstance(left.right.right, ast.Unary) and left.right.right.op == "not"


def test_default_is_right_associative() -> None:
    node = expr("a default b default c")
    assert isinstance(node, ast.Binary) and isinstance(node.right, ast.Binary)
    assert node.right.op == "default"


def test_parentheses_override_precedence() -> None:
    node = expr("(a + b) * c")
    assert isinstance(node, ast.Binary) and node.op == "*"
    assert isinstance(node.left, ast.Binary) and node.left.op == "+"
    assert at(node.left.span) == (4, 8, 4, 13)
    assert at(node.span) == (4, 7, 4, 18)


def test_subtraction_is_left_associative_and_unary_binds_tighter() -> None:
    node = expr("a - b - -c")
    assert isinstance(node, ast.Binary) and node.op == "-"
    assert isinstance(node.left, ast.Binary) and node.left.op == "-"
    assert isinstance(node.right, ast.Unary) and node.right.op == "-"


# ---- lexical matters -----------------------------------------------------------------------------


def test_comments_and_blank_lines_anywhere() -> None:
    module = parse(
        "\n# a comment at the top\n\n"
        'table t   # after a header\n'
        "\n"
        "  # inside a block\n"
        '  "a" -> "b"   # after an entry\n'
        "\n\n"
        "end\n"
        "# at the end"
    )
    (table,) = module.definitions
    assert isinstance(table, ast.Table)
    assert at(table.span) == (4, 1, 10, 4)
    assert at(table.entries[0].span) == (7, 3, 7, 13)


def test_crlf_line_endings() -> None:
    module = parse('route "r"\r\n  from file "in"\r\n  to file "out"\r\nend\r\n')
    (route,) = module.definitions
    assert isinstance(route, ast.Route)
    assert at(route.span) == (1, 1, 4, 4)
    assert at(route.steps[0].span) == (3, 3, 3, 16)


def test_file_without_final_newline() -> None:
    module = parse('table t\n  "a" -> "b"\nend')
    (table,) = module.definitions
    assert isinstance(table, ast.Table) and at(table.span) == (1, 1, 3, 4)


def test_empty_and_comment_only_files() -> None:
    assert parse("").definitions == ()
    assert parse("# nothing here\n\n").definitions == ()


def test_string_escapes() -> None:
    node = expr(r'"say \"hi\"\\ \n\t\r"')
    assert isinstance(node, ast.Literal)
    assert node.value == 'say "hi"\\ \n\t\r'


def test_line_continuation_with_backslash() -> None:
    connection = only('connection "c" is file\n  header "X" = a + \\\n    b\nend\n')
    assert isinstance(connection, ast.Connection)
    (option,) = connection.options
    assert isinstance(option.expr, ast.Binary)
    assert at(option.expr.span) == (2, 16, 3, 6)


def test_several_definitions_in_one_file_keep_their_order() -> None:
    module = parse('connection "c" is file\nend\npolicy "p"\nend\ntable t\nend\n')
    assert [type(d) for d in module.definitions] == [ast.Connection, ast.Policy, ast.Table]
    assert [d.span.line for d in module.definitions] == [1, 3, 5]
