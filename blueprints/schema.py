"""The blueprint JSON Schema, generated from the models; ``python -m blueprints.schema`` rewrites schema.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from blueprints.campaign import Campaign

SCHEMA_PATH = Path(__file__).with_name("schema.json")


def generate() -> dict[str, Any]:
    """The JSON Schema of a campaign blueprint (validation mode)."""
    schema = Campaign.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gameday campaign blueprint"
    return schema


def render() -> str:
    """The schema as the exact text kept in schema.json."""
    return json.dumps(generate(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render())
    print(f"wrote {SCHEMA_PATH}")
