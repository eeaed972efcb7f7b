"""{{name}}: a logai tool plugin in Python. Each tool is a dataclass of
arguments (its JSON Schema derived from the fields) and a function."""
from dataclasses import dataclass
from typing import Annotated

from logai_plugin import Context, Field, log, plugin, tool


@dataclass
class Hello:
    """Greet someone by name. Returns one line of text."""

    name: Annotated[str, Field("Who to greet.", min_length=1, max_length=200)]
    shout: Annotated[bool, Field("Greet in capitals.")] = False


@tool("{{tool}}", title="Say hello", read_only=True)
def hello(args: Hello, ctx: Context) -> str:
    log.info(f"greeting {args.name} for {ctx.user}")
    greeting = f"Hello, {args.name}!"
    return greeting.upper() if args.shout else greeting


Tools = plugin(hello)
