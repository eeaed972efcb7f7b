"""The `tools` export over the generated bindings (only imported inside a component or a test host)."""
import json

import logai_plugin as sdk


def _types():
    from wit_world.imports import types

    return types


def _spec(t: "sdk.ToolDef", types):
    ann = types.ToolAnnotations(True, None, None, None) if t.read_only else None
    out = t.output_schema()
    return types.ToolSpec(t.name, t.title, t.description(), json.dumps(t.input_schema()), None if out is None else json.dumps(out), ann)


def run(t: "sdk.ToolDef", arguments: dict, ctx: "sdk.Context"):
    """(text, structured JSON or None, is_error) of one call; raises InvalidArgument."""
    args = sdk.from_json(t.args, arguments)
    try:
        out = t.func(args, ctx)
    except sdk.ToolFailure as e:
        return str(e), None, True
    if isinstance(out, sdk.Structured):
        return out.text, json.dumps(sdk.to_json(out.value), separators=(",", ":")), False
    if isinstance(out, sdk.Json):
        data = sdk.to_json(out.value)
        return json.dumps(data, indent=2), json.dumps(data, separators=(",", ":")), False
    return str(out), None, False


def make_tools_class(tools):
    by_name = {t.name: t for t in tools}

    class Tools:
        def list(self, limits):
            types = _types()
            return [_spec(t, types) for t in tools]

        def call(self, name, arguments, context):
            from componentize_py_types import Err

            types = _types()
            t = by_name.get(name)
            if t is None:
                raise Err(types.ToolError_UnknownTool(name))
            try:
                text, structured, is_error = run(t, json.loads(arguments), sdk.Context(name, context))
            except sdk.InvalidArgument as e:
                raise Err(types.ToolError_InvalidArguments(types.InvalidArgument(e.path, e.message)))
            except Exception as e:  # a bug in the tool: a protocol error naming it
                raise Err(types.ToolError_Internal(f"{name}: {type(e).__name__}: {e}"))
            return types.CallResult([types.ContentBlock_Text(text)], structured, is_error)

    Tools.tools = tools
    return Tools
