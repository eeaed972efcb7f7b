"""The official Python MCP SDK (PyPI `mcp`, pinned in requirements.txt)
against `logai serve` over stdio, in both protocol eras."""

from __future__ import annotations

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.client import Client
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from conftest import logai_bin

pytestmark = pytest.mark.anyio


def server(manifest) -> StdioServerParameters:
    return StdioServerParameters(command=str(logai_bin()), args=["serve", "--config", str(manifest)])


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")


async def test_legacy_handshake_list_and_call(manifest):
    async with stdio_client(server(manifest)) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.protocol_version == "2025-11-25"
            assert init.server_info.name
            assert init.capabilities.tools is not None
            assert init.instructions == "Test server for the real-client suites."

            tools = await session.list_tools()
            names = [t.name for t in tools.tools]
            assert "hello" in names, names
            hello = next(t for t in tools.tools if t.name == "hello")
            assert hello.input_schema["required"] == ["name"]
            assert hello.title == "Say hello"

            result = await session.call_tool("hello", {"name": "Ada"})
            assert not result.is_error
            assert "Hello, Ada!" in text_of(result)

            # structured content arrives parsed and mirrored as text
            result = await session.call_tool("word_count", {"text": "one two two"})
            assert result.structured_content["words"] == 3
            assert text_of(result)


async def test_bad_arguments_name_the_json_path(manifest):
    async with stdio_client(server(manifest)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            with pytest.raises(MCPError) as err:
                await session.call_tool("hello", {"name": 42})
            assert err.value.code == -32602
            assert err.value.message.startswith("$.arguments.name: expected string, got integer"), err.value.message
            assert err.value.data["path"] == "$.arguments.name"

            with pytest.raises(MCPError) as err:
                await session.call_tool("hello", {})
            assert err.value.code == -32602
            assert err.value.data["path"] == "$.arguments.name"

            with pytest.raises(MCPError) as err:
                await session.call_tool("no_such_tool", {})
            assert err.value.code == -32602
            assert "unknown tool 'no_such_tool'" in err.value.message

            # the session still serves after the errors
            result = await session.call_tool("hello", {"name": "again"})
            assert "Hello, again!" in text_of(result)


async def test_auto_mode_negotiates_2026_07_28(manifest):
    """`mode="auto"` probes server/discover and, since logai answers it,
    speaks 2026-07-28 (per-request _meta, no initialize)."""
    async with Client(server(manifest), mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        discover = client.session.discover_result
        assert discover is not None
        assert "2026-07-28" in discover.supported_versions
        assert discover.instructions == "Test server for the real-client suites."
        tools = await client.list_tools()
        assert "hello" in [t.name for t in tools.tools]
        result = await client.call_tool("hello", {"name": "Grace", "shout": True})
        assert "HELLO, GRACE!" in text_of(result)
        with pytest.raises(MCPError) as err:
            await client.call_tool("hello", {"name": "x", "bogus": 1})
        assert err.value.code == -32602
        assert err.value.data["path"] == "$.arguments.bogus"


async def test_pinned_2026_07_28_without_probe(manifest):
    async with Client(server(manifest), mode="2026-07-28") as client:
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool("hello", {"name": "Pin"})
        assert "Hello, Pin!" in text_of(result)


async def test_legacy_mode_client(manifest):
    async with Client(server(manifest), mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        result = await client.call_tool("hello", {"name": "Old"})
        assert "Hello, Old!" in text_of(result)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_progress_notifications_reach_the_sdk(conformance_manifest, mode):
    """A component's progress reports arrive as notifications/progress for
    the request's progressToken, increasing, before the result."""
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(server(conformance_manifest), mode=mode) as client:
        result = await client.session.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
        assert "Progress test completed" in text_of(result)
    assert [p for p, _, _ in seen] == [0.0, 50.0, 100.0], seen
    assert all(t == 100.0 for _, t, _ in seen)


async def test_image_and_audio_content(conformance_manifest):
    async with Client(server(conformance_manifest), mode="legacy") as client:
        image = await client.call_tool("test_image_content", {})
        assert image.content[0].type == "image" and image.content[0].mime_type == "image/png"
        audio = await client.call_tool("test_audio_content", {})
        assert audio.content[0].type == "audio" and audio.content[0].mime_type == "audio/wav"
        err = await client.call_tool("test_error_handling", {})
        assert err.is_error is True
