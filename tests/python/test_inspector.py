"""The MCP Inspector CLI (`@modelcontextprotocol/inspector`, pinned in
tests/node/package.json) against `logai serve` over stdio, in both protocol
eras (`--protocol-era legacy` and `--protocol-era modern`)."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import logai_bin, node_tool


def inspector(manifest, env, era: str, *args: str) -> dict:
    cmd = [node_tool("inspector"), "--cli", "--format", "json", "-q", "--protocol-era", era,
           *args, "--", str(logai_bin()), "serve", "--config", str(manifest)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"inspector exited {r.returncode}\nstdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}"
    out = json.loads(r.stdout)
    # --format json wraps the method's result: {"result": {...}}
    assert "result" in out, out
    return out["result"]


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_tools_list(manifest, node_env, era):
    out = inspector(manifest, node_env, era, "--method", "tools/list")
    names = [t["name"] for t in out["tools"]]
    assert "hello" in names, out


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_tools_call_hello(manifest, node_env, era):
    out = inspector(manifest, node_env, era, "--method", "tools/call", "--tool-name", "hello", "--tool-arg", "name=Inspector")
    texts = [c.get("text", "") for c in out["content"]]
    assert any("Hello, Inspector!" in t for t in texts), out
    assert out.get("isError") in (None, False)
    # logai stamps its identity into _meta only on 2026-07-28 results: proof
    # of which era the Inspector actually spoke.
    stamped = "io.modelcontextprotocol/serverInfo" in (out.get("_meta") or {})
    assert stamped == (era == "modern"), out
