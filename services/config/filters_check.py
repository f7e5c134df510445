"""Static checks of filter groups (the executor evaluates them; config only validates)."""

from __future__ import annotations

import re

from libs import paths
from libs.connector import Group

NEEDS_VALUE = {
    "equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with",
    "greater_than", "less_than", "greater_or_equal", "less_or_equal", "in_list",
    "not_in_list", "regex",
}


def check_group(group: Group, at: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for i, cond in enumerate(group.conditions):
        here = f"{at}.conditions[{i}]"
        try:
            paths.parse(cond.attribute)
        except paths.PathError as exc:
            problems.append((f"{here}.attribute", str(exc)))
        if cond.op in NEEDS_VALUE and cond.value is None:
            problems.append((f"{here}.value", f"operator {cond.op!r} needs a value"))
        if cond.op == "regex" and isinstance(cond.value, str):
            try:
                re.compile(cond.value)
            except re.error as exc:
                problems.append((f"{here}.value", f"invalid regular expression: {exc}"))
        if cond.op in {"in_list", "not_in_list"} and not isinstance(cond.value, (list, str)):
            problems.append((f"{here}.value", "in_list needs a list or a comma-separated string"))
    for j, sub in enumerate(group.groups):
        problems.extend(check_group(sub, f"{at}.groups[{j}]"))
    return problems
