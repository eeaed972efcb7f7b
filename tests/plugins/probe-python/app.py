"""The language contract's probes (tests/plugin_languages.rs) in Python: the
same tools as tests/plugins/probe (Rust)."""
from dataclasses import dataclass
from typing import Annotated

from logai_plugin import Context, Field, plugin, read_text, tool


@dataclass
class ProbeRead:
    """Read a file through the SDK's file helper."""

    path: Annotated[str, Field("The file to read.")]


@tool("probe_read")
def probe_read(args: ProbeRead, ctx: Context) -> str:
    return read_text(args.path)


@dataclass
class ProbeSpin:
    """Loop forever (pure CPU, no host calls)."""


@tool("probe_spin")
def probe_spin(args: ProbeSpin, ctx: Context) -> str:
    x = 0
    while True:
        x += 1


Tools = plugin(probe_read, probe_spin)
