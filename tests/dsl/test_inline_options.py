"""Several options on a step's opening line: a new option starts at every word that names one."""

from __future__ import annotations

from pathlib import Path

from crossdock.dsl.lint import lint
from crossdock.engine.plan import SinkPlan

ROUTES = """
connection "broker" is amqp
  url env "AMQP_URL"
end

connection "out" is file
  folder "out"
end

route "r"
  from amqp "broker" queue "in" prefetch 10
  read json
  to amqp "broker" exchange "orders" routing key "orders.dal"
  to file "out" format json pretty yes
  dead letter to store
end
"""


def test_options_on_the_opening_line_are_split_at_option_names(tmp_path: Path) -> None:
    (tmp_path / "r.route").write_text(ROUTES)
    result = lint([tmp_path])
    assert result.diagnostics == []
    assert result.plan is not None
    route = result.plan.routes["r"]
    assert (route.source.options.get("queue"), route.source.options.get("prefetch")) == ("in", 10)
    amqp, file = [step for step in route.steps if isinstance(step, SinkPlan)]
    assert (amqp.endpoint.options.get("exchange"), amqp.endpoint.options.get("routing_key")) == ("orders", "orders.dal")
    assert (file.format, file.format_options) == ("json", {"pretty": True})


def test_a_word_that_names_no_option_is_still_reported(tmp_path: Path) -> None:
    (tmp_path / "r.route").write_text(ROUTES.replace('routing key "orders.dal"', 'routting key "orders.dal"'))
    problems = lint([tmp_path]).diagnostics
    unknown = next(p for p in problems if p.code == "OPT001")
    assert (unknown.span.line, unknown.span.column) == (13, 38)
    assert unknown.hint == "did you mean 'routing key'?"
