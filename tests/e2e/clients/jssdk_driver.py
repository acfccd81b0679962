"""matrix-js-sdk from Python: one Node.js process running ``jssdk/driver.mjs``.

``make test`` installs the pinned SDK (``jssdk/package.json``, ``npm ci``) through
``deploy/dev/test-deps.sh``.  Commands go to the driver as JSON lines; each answer comes back
as one JSON line.  Every warning or error the SDK logs is kept by the driver and read with
``warnings()``: a complaint about one of our responses is a bug of ours.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import shutil
import subprocess
import threading
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
JSSDK_DIR = os.path.join(HERE, "jssdk")
IN_CI = os.environ.get("CI", "").lower() == "true"


# What the SDK logs whatever the server, so not about our responses (the federation module
# runs one SDK client against Synapse 1.163, which logs the same):
SDK_OWN_WARNINGS = (
    # The SDK runs here without its Rust crypto module.
    "[crypto]",
    "End-to-end encryption",
    "initRustCrypto",
    # The SDK expects two unstable rule IDs (MSC3786, MSC3914) besides the spec's default
    # push rules and adds them itself; Synapse 1.163's defaults lack them too.
    "Adding default global override push rule .org.matrix.msc3786.rule.room.server_acl",
    "Adding default global underride push rule .org.matrix.msc3914.rule.room.call",
    # The SDK injects a room's state before it stores a room it sees for the first time
    # (sync.js), so its MatrixRTC manager logs this once per state event of every new room.
    "Got room state event for unknown room",
)


def complaints(sdk: "JsSdk") -> list[str]:
    """Every warning or error the SDK logged, except its own noise (``SDK_OWN_WARNINGS``)."""
    return [
        f"{w['level']}: {w['text']}"
        for w in sdk.warnings()
        if not any(marker in w["text"] for marker in SDK_OWN_WARNINGS)
    ]


class DriverError(Exception):
    pass


def unavailable_reason() -> str | None:
    """Why the SDK cannot run here (None: it can)."""
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not os.path.isdir(os.path.join(JSSDK_DIR, "node_modules", "matrix-js-sdk")):
        return "matrix-js-sdk is not installed (run deploy/dev/test-deps.sh or npm ci in " + (
            JSSDK_DIR + ")"
        )
    return None


class JsSdk:
    """The driver process; ``call(name, method, *args)`` runs ``client[method](...args)``."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._proc = subprocess.Popen(
            ["node", os.path.join(JSSDK_DIR, "driver.mjs")],
            cwd=JSSDK_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._answers: queue.Queue[dict | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self._answers.put(json.loads(line))
            except ValueError:
                self._stderr.append(line)
        self._answers.put(None)

    def _read_err(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)

    def send(self, op: str, timeout: float = 60.0, **fields: Any) -> Any:
        cmd_id = next(self._ids)
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"id": cmd_id, "op": op, **fields}) + "\n")
        self._proc.stdin.flush()
        while True:
            try:
                answer = self._answers.get(timeout=timeout)
            except queue.Empty:
                raise DriverError(f"{op}: no answer within {timeout} s") from None
            if answer is None:
                raise DriverError(f"driver exited: {''.join(self._stderr)[-2000:]}")
            if answer.get("id") != cmd_id:
                continue
            if not answer["ok"]:
                raise DriverError(f"{op} {fields.get('method', '')}: {answer['error']}")
            return answer["result"]

    def client(self, name: str, base_url: str, login: dict) -> None:
        self.send(
            "client",
            name=name,
            baseUrl=base_url,
            userId=login["user_id"],
            accessToken=login["access_token"],
            deviceId=login["device_id"],
        )

    def start(self, name: str, timeout_ms: int = 30_000) -> list[str]:
        return self.send("start", timeout=timeout_ms / 1000 + 10, name=name, timeoutMs=timeout_ms)

    def call(self, name: str, method: str, *args: Any, timeout: float = 60.0) -> Any:
        return self.send("call", timeout=timeout, name=name, method=method, args=list(args))

    def room(self, name: str, room_id: str) -> dict | None:
        return self.send("room", name=name, roomId=room_id)

    def wait_for(self, name: str, room_id: str, timeout_ms: int = 20_000, **what: Any) -> dict:
        return self.send(
            "waitFor",
            timeout=timeout_ms / 1000 + 10,
            name=name,
            roomId=room_id,
            timeoutMs=timeout_ms,
            **what,
        )

    def warnings(self) -> list[dict]:
        return self.send("warnings")

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
