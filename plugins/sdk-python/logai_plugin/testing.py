"""Native test doubles for the host imports: `TestHost` captures logs and
progress, answers `cancelled`, and runs tools without a host or a component.

    host = TestHost()
    text, structured, is_error = host.call(hello, {"name": "Ada"})
    assert host.logs == [("debug", "...")]
"""
import json

import logai_plugin as sdk
from logai_plugin import _export


class TestHost:
    __test__ = False  # not a pytest class

    def __init__(self, user: str = "test@local"):
        self.logs = []
        self.progress = []
        self.is_cancelled = False
        self.user = user
        sdk.host.log = lambda level, message: self.logs.append((level, message))
        sdk.host.progress = lambda done, total, message: self.progress.append((done, total, message))
        sdk.host.cancelled = lambda: self.is_cancelled

    def call(self, tool: "sdk.ToolDef", arguments: dict):
        """(text, structured object or None, is_error); raises InvalidArgument."""
        ctx = sdk.Context(tool.name)
        ctx.user = self.user
        text, structured, is_error = _export.run(tool, json.loads(json.dumps(arguments)), ctx)
        return text, None if structured is None else json.loads(structured), is_error

    @staticmethod
    def specs(tools):
        """[(name, input schema, output schema)] as the host would list them."""
        return [(t.name, t.input_schema(), t.output_schema()) for t in tools]
