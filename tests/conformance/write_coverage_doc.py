"""Write ``docs/spec-coverage.md`` from the operations table and the exclusions.

    python tests/conformance/write_coverage_doc.py > docs/spec-coverage.md

The conformance walk checks that every operation not excluded answers as the spec says, and
that the document lists every exclusion, so the page cannot drift from the tests.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from conformance.exclusions import EXCLUDED  # noqa: E402  (after the path set-up above)

SPEC = "https://spec.matrix.org/v1.16/client-server-api/"


def render() -> str:
    with open(os.path.join(HERE, "client_server_ops.json"), encoding="utf-8") as fh:
        table = json.load(fh)
    by_file: dict[str, list[dict]] = defaultdict(list)
    for op in table:
        by_file[op["file"]].append(op)
    total = len(table)
    left_out = sum(1 for op in table if (op["method"], op["path"].strip()) in EXCLUDED)
    lines = [
        "# Client-server API coverage",
        "",
        f"The node answers **{total - left_out} of the {total} operations** of the Matrix",
        f"client-server API ([spec]({SPEC}), API definitions of matrix-spec",
        "`data/api/client-server`).  `tests/e2e/test_e2e_spec_conformance.py` walks every one",
        "of them against a running node with real IDs and checks the status and the required",
        "fields of each answer; this page is written by `tests/conformance/write_coverage_doc.py`",
        "from the same table.  Operations under `/_matrix/client/v3` that existed in the r0 API",
        "are also served under `/_matrix/client/r0`.",
        "",
        "## Left out, and why",
        "",
        "| operation | reason |",
        "|---|---|",
    ]
    for (method, path), reason in EXCLUDED.items():
        lines.append(f"| `{method} {path}` | {reason} |")
    lines += ["", "## Every operation, by spec file", ""]
    for name in sorted(by_file):
        lines += [f"### {name}", "", "| operation | |", "|---|---|"]
        for op in by_file[name]:
            key = (op["method"], op["path"].strip())
            state = "left out" if key in EXCLUDED else "answered"
            if op["deprecated"]:
                state += " (deprecated in the spec)"
            lines.append(f"| `{op['method']} {op['path'].strip()}` | {state} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
