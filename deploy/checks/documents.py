"""Every YAML and JSON file under deploy/, parsed: the input of every other check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .report import Report

# Parsed YAML and JSON are checked field by field: their shape is what is being checked.
Docs = dict[str, list[Any]]


def parse_deploy_files(report: Report) -> Docs:
    """Parses every YAML and JSON file under deploy/; returns each one's documents by path."""
    docs: Docs = {}
    for path in sorted(str(p) for p in Path("deploy").rglob("*") if p.is_file()):
        if not path.endswith((".yaml", ".yml", ".json")):
            continue
        try:
            with Path(path).open(encoding="utf-8") as f:
                if path.endswith(".json"):
                    docs[path] = [json.load(f)]
                else:
                    docs[path] = [d for d in yaml.safe_load_all(f) if d is not None]
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            report.bad(f"parses: {path}: {exc}")
        else:
            report.ok(f"parses: {path}")
    return docs
