"""What a consumer of an older schema would trip over in a newer one. Pure functions.

A change is breaking when a field the old schema had is removed, when its
schema changes (type, format, constraints: anything but its title,
description, default or examples), or when a field that was always present
becomes optional. Adding a field is not breaking: consumers ignore what they
do not know.
"""

from __future__ import annotations

from typing import Any

_ANNOTATIONS = frozenset({"title", "description", "default", "examples"})


def _resolve(schema: dict[str, Any], fragment: Any) -> Any:
    """The fragment with every local $ref replaced by what it points to, annotations dropped."""
    if isinstance(fragment, list):
        return [_resolve(schema, item) for item in fragment]
    if not isinstance(fragment, dict):
        return fragment
    if "$ref" in fragment:
        name = fragment["$ref"].rsplit("/", 1)[-1]
        return _resolve(schema, schema["$defs"][name])
    return {
        key: _resolve(schema, value) for key, value in fragment.items() if key not in _ANNOTATIONS
    }


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    new_properties = new.get("properties", {})
    for name, old_field in old.get("properties", {}).items():
        if name not in new_properties:
            problems.append(f"{name}: removed")
        elif _resolve(old, old_field) != _resolve(new, new_properties[name]):
            problems.append(f"{name}: schema changed")
    for name in set(old.get("required", [])) - set(new.get("required", [])):
        if name in new_properties:
            problems.append(f"{name}: no longer always present")
    return sorted(problems)
