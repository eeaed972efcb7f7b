"""The logai plugin SDK for Python (componentize-py).

A tool is a function taking one typed argument object (a dataclass whose
fields are annotated) and a `Context`; its JSON Schema is derived from the
dataclass, its description from the dataclass's docstring, and its name is
written once, in `@tool`:

    @dataclass
    class Hello:
        "Greet someone by name."
        name: Annotated[str, Field("Who to greet.", min_length=1)]

    @tool("hello", title="Say hello", read_only=True)
    def hello(args: Hello, ctx: Context) -> str:
        return f"Hello, {args.name}!"

    Tools = plugin(hello)          # the export componentize-py looks for

Build with `componentize-py -d <sdk>/wit -w tool-plugin componentize app -o
plugin.wasm -p . -p <sdk-python>`; test natively with `logai_plugin.testing`.
The host imports (`log`, `progress`, `cancelled`, `search`, `metrics`) go
through `host`, which the test host replaces.
"""
import dataclasses
import errno
import json
import os
import typing
from typing import Annotated, Any, Callable, Optional

__all__ = [
    "Field", "Context", "Structured", "Json", "ToolFailure", "InvalidArgument", "Denied",
    "tool", "plugin", "log", "progress", "cancelled", "read_text", "env_var", "host",
]


try:  # inside a component: the generated bindings (imported now, so they are in the build-time snapshot)
    from wit_world.imports import cancelled as _cancelled, log as _log, metrics as _metrics, progress as _progress, search as _search

    try:  # a plugin's own copy of the WIT may predate `aggregate` (added within 0.2)
        from wit_world.imports import aggregate as _aggregate
    except ImportError:
        _aggregate = None
    _IMPORTS = {"log": _log, "progress": _progress, "cancelled": _cancelled, "search": _search, "aggregate": _aggregate, "metrics": _metrics}
except ImportError:  # natively: only logai_plugin.testing.TestHost provides them
    _IMPORTS = None


class _Host:
    """The host imports (natively there is no host: use `logai_plugin.testing.TestHost`)."""

    def imports(self):
        if _IMPORTS is None:
            raise RuntimeError("logai host imports are only available inside logai (use logai_plugin.testing.TestHost in tests)")
        return _IMPORTS

    def log(self, level: str, message: str):
        m = self.imports()["log"]
        m.write(getattr(m.Level, level.upper()), message)

    def progress(self, done: float, total: Optional[float], message: Optional[str]):
        self.imports()["progress"].report(done, total, message)

    def cancelled(self) -> bool:
        return self.imports()["cancelled"].is_cancelled()

    def search(self):
        return self.imports()["search"]

    def aggregate(self):
        """The `aggregate` import (`summarize`: counts over time, levels, patterns, facets of a window)."""
        m = self.imports()["aggregate"]
        if m is None:
            raise RuntimeError("this plugin was built against a plugin.wit without the aggregate interface: copy the SDK's wit/plugin.wit and rebuild")
        return m

    def metrics(self):
        return self.imports()["metrics"].read()


host = _Host()


class log:
    """Write to the host's log, attributed to this plugin."""

    @staticmethod
    def write(level: str, message: str):
        host.log(level, message)

    trace = staticmethod(lambda m: host.log("trace", m))
    debug = staticmethod(lambda m: host.log("debug", m))
    info = staticmethod(lambda m: host.log("info", m))
    warn = staticmethod(lambda m: host.log("warn", m))
    error = staticmethod(lambda m: host.log("error", m))


def progress(done: float, total: Optional[float] = None, message: Optional[str] = None):
    """Report progress of the current call (forwarded when the client asked)."""
    host.progress(float(done), None if total is None else float(total), message)


def cancelled() -> bool:
    """True once the client cancelled this call."""
    return host.cancelled()


@dataclasses.dataclass(frozen=True)
class Field:
    """Schema facts of one argument field: `Annotated[str, Field("doc", min_length=1)]`."""

    description: Optional[str] = None
    min_length: Optional[int] = None
    max_length: Optional[int] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    enum: Optional[list] = None


class ToolFailure(Exception):
    """A failure the model should read and act on (`isError: true`)."""


class InvalidArgument(Exception):
    """An argument is wrong: `path` is a JSON path (`$.name`)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


class Denied(ToolFailure):
    """A file, directory or environment variable this plugin was not granted.
    Its message names the manifest grant to add."""

    def __init__(self, what: str, grant: str):
        super().__init__(f"{what}; to allow it, add {grant} to the plugin's [[plugin]] entry in the logai manifest")
        self.grant = grant


def read_text(path: str) -> str:
    """The text of a granted file, or `Denied` naming the directory to grant."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        d = os.path.dirname(os.path.normpath(path)) or "/"
        # In the sandbox a path outside every grant is "not capable", or,
        # for an ungranted directory, simply absent (errno values are WASI's
        # inside a component: use the names).
        refused = (errno.EACCES, errno.EPERM, getattr(errno, "ENOTCAPABLE", 76))
        if e.errno in refused or (e.errno == errno.ENOENT and not os.path.isdir(d)):
            raise Denied(f"{path} is outside the directories granted to this plugin", f'dirs = ["{d}"]') from e
        raise ToolFailure(f"cannot read {path}: {e.strerror}") from e


def env_var(name: str) -> str:
    """The value of a granted environment variable, or `Denied` naming the grant."""
    v = os.environ.get(name)
    if v is None:
        raise Denied(f"environment variable {name} is not visible to this plugin (not granted, or not set where logai runs)", f'env = ["{name}"]')
    return v


class Context:
    """What the host says about the call being served."""

    def __init__(self, tool: str, call=None, limits=None):
        self.tool = tool
        self.request_id = getattr(call, "request_id", "test")
        self.session_id = getattr(call, "session_id", "test")
        self.user = getattr(call, "user", "test@local")
        self.deadline_ms = getattr(call, "deadline_ms", 60_000)
        self.limits = getattr(call, "limits", limits)


class Structured:
    """A structured answer: `value` (a dataclass or dict) becomes structured content, `text` the readable block."""

    def __init__(self, text: str, value: Any):
        self.text, self.value = text, value


class Json:
    """A structured answer whose text block is the JSON itself."""

    def __init__(self, value: Any):
        self.value = value


# ---- schemas -------------------------------------------------------------

_PRIMS = {str: {"type": "string"}, bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"}}


def _field_schema(tp, meta: Optional[Field]) -> dict:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        args = typing.get_args(tp)
        meta = next((a for a in args[1:] if isinstance(a, Field)), meta)
        return _field_schema(args[0], meta)
    if tp in _PRIMS:
        s = dict(_PRIMS[tp])
    elif tp is Any:
        s = {}
    elif origin in (list, typing.List):
        s = {"type": "array", "items": _field_schema(typing.get_args(tp)[0], None)}
    elif origin is typing.Union and type(None) in typing.get_args(tp):
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        s = _field_schema(inner, None)
        s["type"] = [s["type"], "null"] if "type" in s else s.get("type")
    elif dataclasses.is_dataclass(tp):
        s = schema_of(tp, strict=False)
    else:
        raise TypeError(f"no JSON Schema for {tp!r}")
    if meta is not None:
        for k, key in (("min_length", "minLength"), ("max_length", "maxLength"), ("minimum", "minimum"), ("maximum", "maximum"), ("enum", "enum")):
            v = getattr(meta, k)
            if v is not None:
                s[key] = v
        if meta.description:
            s["description"] = meta.description
    return s


def schema_of(cls, strict: bool = True) -> dict:
    """The JSON Schema of a dataclass (`strict`: no unknown fields)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        s = _field_schema(hints[f.name], None)
        if f.default is not dataclasses.MISSING:
            s["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            s["default"] = f.default_factory()
        else:
            required.append(f.name)
        props[f.name] = s
    schema = {"type": "object", "properties": props, "required": required}
    if strict:
        schema["additionalProperties"] = False
    return schema


# ---- arguments -----------------------------------------------------------


def _convert(tp, value, path: str):
    if typing.get_origin(tp) is Annotated:
        return _convert(typing.get_args(tp)[0], value, path)
    if tp is Any:
        return value
    if tp in _PRIMS:
        ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise InvalidArgument(path, f"expected {_PRIMS[tp]['type']}, got {json.dumps(value)}")
        return value
    origin = typing.get_origin(tp)
    if origin in (list, typing.List):
        if not isinstance(value, list):
            raise InvalidArgument(path, f"expected array, got {json.dumps(value)}")
        return [_convert(typing.get_args(tp)[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is typing.Union and type(None) in typing.get_args(tp):
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return None if value is None else _convert(inner, value, path)
    if dataclasses.is_dataclass(tp):
        return from_json(tp, value, path)
    return value


def from_json(cls, obj, path: str = "$"):
    """Build `cls` from JSON arguments; errors carry the JSON path."""
    if not isinstance(obj, dict):
        raise InvalidArgument(path, f"expected object, got {json.dumps(obj)}")
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in obj:
            kwargs[f.name] = _convert(hints[f.name], obj[f.name], f"{path}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InvalidArgument(f"{path}.{f.name}", "missing required field")
    return cls(**kwargs)


def to_json(value):
    """Plain JSON data of a result value (dataclasses become objects)."""
    if dataclasses.is_dataclass(value):
        return {k: to_json(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


# ---- tools ---------------------------------------------------------------


@dataclasses.dataclass
class ToolDef:
    name: str
    func: Callable
    args: type
    title: Optional[str]
    read_only: bool
    strict: bool
    output: Optional[type]

    def input_schema(self) -> dict:
        return schema_of(self.args, strict=self.strict)

    def output_schema(self) -> Optional[dict]:
        return None if self.output is None else schema_of(self.output, strict=False)

    def description(self) -> str:
        return " ".join((self.args.__doc__ or self.name).split())


def tool(name: str, *, title: Optional[str] = None, read_only: bool = False, strict: bool = True, output: Optional[type] = None):
    """Declare a tool: `fn(args: ArgsDataclass, ctx: Context) -> str | Structured | Json`.
    `output` (a dataclass) gives the output schema of structured results."""

    def wrap(func):
        hints = typing.get_type_hints(func)
        args_type = next(iter(hints.values()))
        return ToolDef(name, func, args_type, title, read_only, strict, output)

    return wrap


def plugin(*tools: ToolDef):
    """The `Tools` export class for componentize-py, over `tools`."""
    from logai_plugin import _export

    return _export.make_tools_class(list(tools))
