"""deploy/prometheus/parta-rules.yml: the roster alerts exist and only use series the node
really exports (a renamed metric would silently disable an alert)."""

from __future__ import annotations

import os
import re

import yaml

import node.federation.roster_refresh  # noqa: F401 - registers the roster metrics
from node import metrics

RULES = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "..", "deploy", "prometheus", "parta-rules.yml"
)


def _rules() -> dict:
    with open(RULES) as fh:
        doc = yaml.safe_load(fh)
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def _exported() -> set[str]:
    names = set()
    for family in metrics.REGISTRY.collect():
        names.update(s.name for s in family.samples)
        # A labelled counter has no sample before its first increment.
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_roster_alerts_exist_with_severity_and_text():
    rules = _rules()
    assert {"RosterStale", "RosterUpdateRejected"} <= set(rules)
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_alert_expressions_use_exported_series():
    exported = _exported()
    for name, rule in _rules().items():
        series = set(re.findall(r"\bparta_[a-z_]+", rule["expr"]))
        assert series, name
        assert series <= exported, (name, series - exported)
