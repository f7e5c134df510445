"""libs.domain.templating's bounds: the immutable sandbox, ``*`` and ``**`` checked before they
run (and before a save), an output cap and one range() budget per render."""

from __future__ import annotations

import pytest

from libs.domain import templating
from libs.domain.templating import TemplateError, check, render


def test_templates_cannot_change_their_context() -> None:
    """Before: ``system.update(...)`` changed contact_id for the steps after."""
    system = {"contact_id": "c1"}
    with pytest.raises(TemplateError):
        render("{{ system.update({'contact_id': 'evil'}) }}", {"system": system})
    with pytest.raises(TemplateError):
        render("{{ body.items.append(1) }}", {"body": {"items": []}})
    assert system == {"contact_id": "c1"}


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 10**9 }}",
        "{{ 7**(10**7) }}",
        "{{ 7**(10**6) }}",
        "{{ [1, 2] * 10**6 }}",
        "{{ 2**5000 }}",
        "{{ (10**1000) * (10**1000) }}",
    ],
)
def test_constant_bombs_are_refused_at_save_and_at_render(source: str) -> None:
    problem = check(source)
    assert problem is not None and "bound" in problem
    with pytest.raises(TemplateError):
        render(source, {})


@pytest.mark.parametrize(
    ("source", "context"),
    [
        ("{{ body.s * body.n }}", {"body": {"s": "ab", "n": 10**8}}),
        ("{{ body.n ** body.n }}", {"body": {"n": 10**5}}),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", {}),
        ("{% for i in range(90000) %}{{ body.s }}{% endfor %}", {"body": {"s": "x" * 10}}),
    ],
)
def test_webhook_values_cannot_blow_up_a_render(source: str, context: dict[str, object]) -> None:
    assert check(source) is None  # nothing constant to refuse: the render stops it
    with pytest.raises(TemplateError):
        render(source, context)


def test_ordinary_templates_still_render() -> None:
    assert render("{{ 'ab' * 3 }}{{ 2**10 }}", {}).text == "ababab1024"
    assert render("{% for i in range(3) %}{{ i }}{% endfor %}", {}).text == "012"
    assert render("{{ body.id | json }}", {"body": {"id": 2**70}}).text == str(2**70)
    long = "x" * (templating.MAX_OUTPUT_CHARS - 1)
    assert render("{{ s }}", {"s": long}).text == long


@pytest.mark.parametrize(
    ("source", "context"),
    [
        ("{{ 'x' | center(body.n) }}", {"body": {"n": 10**8}}),
        ("{{ 'x' | indent(body.n, true) }}", {"body": {"n": 10**8}}),
        ("{{ body.s.zfill(body.n) }}", {"body": {"s": "1", "n": 10**8}}),
        ("{{ body.s.center(10**8) }}", {"body": {"s": "1"}}),
        (
            # 2000^3 loop steps: bounded only by the data before.
            "{% for a in body.x %}{% for b in body.x %}{% for c in body.x %}"
            "{% endfor %}{% endfor %}{% endfor %}",
            {"body": {"x": list(range(2000))}},
        ),
    ],
)
def test_sizes_and_loop_steps_from_webhook_values_are_bounded(
    source: str, context: dict[str, object]
) -> None:
    with pytest.raises(TemplateError, match=r"size argument|loops over"):
        render(source, context)


def test_a_render_past_its_wall_clock_budget_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loop steps within the step budget, but slower than the time budget allows."""
    monkeypatch.setattr(templating, "RENDER_BUDGET_S", 0.0)
    source = "{% for a in body.x %}{{ a }}{% endfor %}"
    with pytest.raises(TemplateError, match="render took over"):
        render(source, {"body": {"x": ["y"] * 5000}})
    monkeypatch.setattr(templating, "RENDER_BUDGET_S", 60.0)
    assert len(render(source, {"body": {"x": ["y"] * 5000}}).text) == 5000


def test_big_values_still_go_through_filters_and_loops() -> None:
    """The size check reads a filter's arguments, not the value it filters."""
    assert render("{{ body.n | string }}", {"body": {"n": 10**9}}).text == str(10**9)
    text = render("{% for i in body.x %}{{ loop.index }}{% endfor %}", {"body": {"x": [5, 6]}})
    assert text.text == "12"
    with pytest.raises(TemplateError):  # lipsum(n=10**5) would write megabytes
        render("{{ lipsum(n=100000) }}", {})
