"""``--set KEY=VALUE`` encoder overrides, shared by the benchmark scripts."""
from __future__ import annotations

import json


def parse_set(items) -> dict:
    """``KEY=VALUE`` strings to encoder options; values are read as JSON when they parse."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
