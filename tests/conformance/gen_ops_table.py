"""Write ``client_server_ops.json``: every operation of the Matrix client-server API.

Read from a checkout of https://github.com/matrix-org/matrix-spec (``data/api/client-server``):
for each operation its method, full path, spec file, deprecation, the HTTP statuses the spec
documents, the required top-level fields of its 200 answer and the request body example.
The conformance test (``tests/e2e/test_e2e_spec_conformance.py``) walks this table.

    python tests/conformance/gen_ops_table.py MATRIX_SPEC_DIR \
        > tests/conformance/client_server_ops.json
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import yaml

METHODS = ("get", "put", "post", "delete")


class Refs:
    """Resolves ``$ref``s relative to the file that holds them (the spec's own layout)."""

    def __init__(self) -> None:
        self._files: dict[str, Any] = {}

    def load(self, path: str) -> Any:
        path = os.path.normpath(path)
        if path not in self._files:
            with open(path, encoding="utf-8") as fh:
                self._files[path] = yaml.safe_load(fh)
        return self._files[path]

    def resolve(self, node: Any, base: str, depth: int = 0) -> tuple[Any, str]:
        while isinstance(node, dict) and "$ref" in node and depth < 20:
            ref = node["$ref"]
            file_part, _, pointer = ref.partition("#")
            target_file = os.path.join(os.path.dirname(base), file_part) if file_part else base
            doc = self.load(target_file)
            for part in [p for p in pointer.split("/") if p]:
                doc = doc[part]
            node, base, depth = doc, target_file, depth + 1
        return node, base


def required_fields(refs: Refs, schema: Any, base: str) -> list[str]:
    schema, base = refs.resolve(schema, base)
    if not isinstance(schema, dict):
        return []
    out = list(schema.get("required", []))
    for part in schema.get("allOf", []):
        out += required_fields(refs, part, base)
    return sorted(set(out))


def request_example(refs: Refs, body: Any, base: str) -> Any:
    body, base = refs.resolve(body, base)
    if not isinstance(body, dict):
        return None
    media = body.get("content", {}).get("application/json")
    if not media:
        return None
    if "example" in media:
        return media["example"]
    for example in media.get("examples", {}).values():
        example, _ = refs.resolve(example, base)
        if isinstance(example, dict) and "value" in example:
            return example["value"]
    schema, _ = refs.resolve(media.get("schema", {}), base)
    return schema.get("example") if isinstance(schema, dict) else None


def main(spec_dir: str) -> list[dict]:
    refs = Refs()
    api = os.path.join(spec_dir, "data", "api", "client-server")
    ops = []
    for name in sorted(os.listdir(api)):
        if not name.endswith(".yaml"):
            continue
        path = os.path.join(api, name)
        doc = refs.load(path)
        base_path = ""
        for server in doc.get("servers", []):
            base_path = server.get("variables", {}).get("basePath", {}).get("default", "")
        for template, item in doc.get("paths", {}).items():
            for method in METHODS:
                op = item.get(method)
                if op is None:
                    continue
                ok = op.get("responses", {}).get(200) or op.get("responses", {}).get("200")
                ok_fields: list[str] = []
                if ok:
                    ok, ok_base = refs.resolve(ok, path)
                    media = (ok.get("content") or {}).get("application/json") or {}
                    ok_fields = required_fields(refs, media.get("schema", {}), ok_base)
                ops.append(
                    {
                        "method": method.upper(),
                        "path": (base_path + template.strip()).replace("//", "/"),
                        "file": name,
                        "operation_id": op.get("operationId"),
                        "deprecated": bool(op.get("deprecated", False)),
                        "statuses": sorted(int(s) for s in op.get("responses", {})),
                        "ok_required": ok_fields,
                        "auth": bool(op.get("security")),
                        "request_example": request_example(refs, op.get("requestBody"), path),
                    }
                )
    return ops


if __name__ == "__main__":
    json.dump(main(sys.argv[1]), sys.stdout, indent=1, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\n")
