// The logai plugin SDK for JavaScript (ComponentizeJS / jco).
//
// A tool is declared once: its name, its arguments as a schema built with
// `s` (from which the JSON Schema is derived and by which arguments are
// checked, with JSON-path errors), and a `call`:
//
//   export const hello = tool({
//     name: "hello", title: "Say hello", readOnly: true,
//     description: "Greet someone by name.",
//     input: s.object({ name: s.string({ description: "Who to greet.", minLength: 1 }) }),
//     call: (args, ctx) => `Hello, ${args.name}!`,
//   });
//   export const tools = [hello];
//
// Build: `node <sdk-js>/build.mjs app.js -o plugin.wasm`. Test natively with
// `TestHost` from `./testing.js` (no component, no host). The host imports
// go through `host`, set by the build's entry module or by the test host.

/** The host imports; the component entry (build.mjs) binds the real ones. */
export const host = {
  log: (_level, _message) => { throw new Error("logai host imports are only available inside logai (use TestHost in tests)"); },
  progress: (_done, _total, _message) => {},
  cancelled: () => false,
  search: null,
  /** The `aggregate` import (`summarize`: counts over time, levels, patterns, facets of a window). */
  aggregate: null,
  metrics: null,
  /** The text of `path` when a granted directory holds it, else null (throws on I/O errors). */
  readFile: (_path) => { throw new Error("logai host imports are only available inside logai (use TestHost in tests)"); },
};

export const log = {
  write: (level, message) => host.log(level, message),
  trace: (m) => host.log("trace", m),
  debug: (m) => host.log("debug", m),
  info: (m) => host.log("info", m),
  warn: (m) => host.log("warn", m),
  error: (m) => host.log("error", m),
};

/** Report progress of the current call. */
export function progress(done, total, message) { host.progress(done, total, message); }
/** True once the client cancelled this call. */
export function cancelled() { return host.cancelled(); }

/** A failure the model should read and act on (`isError: true`). */
export class ToolFailure extends Error {}

/** An argument is wrong; `path` is a JSON path (`$.name`). */
export class InvalidArgument extends Error {
  constructor(path, message) { super(`${path}: ${message}`); this.path = path; this.reason = message; }
}

/** A file or environment variable this plugin was not granted; names the grant to add. */
export class Denied extends ToolFailure {
  constructor(what, grant) {
    super(`${what}; to allow it, add ${grant} to the plugin's [[plugin]] entry in the logai manifest`);
    this.grant = grant;
  }
}

/** `path` without `.` and `..` (lexically: grants match the path asked for). */
export function normalize(path) {
  const out = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

/** The text of a granted file, or `Denied` naming the directory to grant. */
export function readText(path) {
  let text;
  try {
    text = host.readFile(path);
  } catch (e) {
    throw new ToolFailure(`cannot read ${path}: ${e && e.payload !== undefined ? e.payload : e}`);
  }
  if (text === null) {
    const n = normalize(path);
    const dir = n.slice(0, n.lastIndexOf("/")) || "/";
    throw new Denied(`${path} is outside the directories granted to this plugin`, `dirs = ["${dir}"]`);
  }
  return text;
}

/** A structured answer: `value` is the structured content, `text` the readable block. */
export class Structured { constructor(text, value) { this.text = text; this.value = value; } }
/** A structured answer whose text block is the JSON itself. */
export class Json { constructor(value) { this.value = value; } }

// ---- schemas: each builder is { schema, parse(value, path) } -------------

const typeOf = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);
const describe = (schema, o) => {
  for (const k of ["minLength", "maxLength", "minimum", "maximum", "enum", "description"]) if (o[k] !== undefined) schema[k] = o[k];
  return schema;
};
const prim = (type, check) => (o = {}) => ({
  schema: describe({ type }, o),
  optional: o.default !== undefined,
  default: o.default,
  parse(v, path) {
    if (!check(v)) throw new InvalidArgument(path, `expected ${type}, got ${JSON.stringify(v)}`);
    return v;
  },
});

export const s = {
  string: prim("string", (v) => typeof v === "string"),
  boolean: prim("boolean", (v) => typeof v === "boolean"),
  integer: prim("integer", (v) => Number.isInteger(v)),
  number: prim("number", (v) => typeof v === "number"),
  any: (o = {}) => ({ schema: describe({}, o), optional: false, parse: (v) => v }),
  array: (items, o = {}) => ({
    schema: describe({ type: "array", items: items.schema }, o),
    optional: o.default !== undefined,
    default: o.default,
    parse(v, path) {
      if (!Array.isArray(v)) throw new InvalidArgument(path, `expected array, got ${JSON.stringify(v)}`);
      return v.map((x, i) => items.parse(x, `${path}[${i}]`));
    },
  }),
  /** An object; `strict` (default true) rejects unknown fields. */
  object: (fields, o = {}) => {
    const strict = o.strict !== false;
    const properties = {}, required = [];
    for (const [k, f] of Object.entries(fields)) {
      properties[k] = f.optional ? { ...f.schema, default: f.default } : f.schema;
      if (!f.optional) required.push(k);
    }
    const schema = { type: "object", properties, required };
    if (strict) schema.additionalProperties = false;
    return {
      schema: describe(schema, o),
      optional: false,
      parse(v, path = "$") {
        if (typeOf(v) !== "object") throw new InvalidArgument(path, `expected object, got ${JSON.stringify(v)}`);
        const out = {};
        for (const [k, f] of Object.entries(fields)) {
          if (k in v) out[k] = f.parse(v[k], `${path}.${k}`);
          else if (f.optional) out[k] = f.default;
          else throw new InvalidArgument(`${path}.${k}`, "missing required field");
        }
        return out;
      },
    };
  },
};

/** Declare a tool: { name, title?, description, readOnly?, input, output?, call(args, ctx) }. */
export function tool(def) {
  if (!/^[a-zA-Z0-9_-]{1,64}$/.test(def.name)) throw new Error(`tool name ${JSON.stringify(def.name)} must match [a-zA-Z0-9_-]{1,64}`);
  return def;
}

/** The spec the host lists for `t`. */
export function spec(t) {
  return {
    name: t.name,
    title: t.title,
    description: t.description,
    inputSchema: JSON.stringify(t.input.schema),
    outputSchema: t.output ? JSON.stringify(t.output.schema) : undefined,
    annotations: t.readOnly ? { readOnlyHint: true } : undefined,
  };
}

/** Run `t`: { text, structured (JSON text or undefined), isError }; throws InvalidArgument. */
export function run(t, args, ctx) {
  const parsed = t.input.parse(args, "$");
  let out;
  try {
    out = t.call(parsed, ctx);
  } catch (e) {
    if (e instanceof ToolFailure) return { text: e.message, structured: undefined, isError: true };
    throw e;
  }
  if (out instanceof Structured) return { text: out.text, structured: JSON.stringify(out.value), isError: false };
  if (out instanceof Json) return { text: JSON.stringify(out.value, null, 2), structured: JSON.stringify(out.value), isError: false };
  return { text: String(out), structured: undefined, isError: false };
}

/** The call context the host gave (user, request and session ids, deadline, limits). */
export function context(name, call = {}) {
  return {
    tool: name,
    requestId: call.requestId ?? "test",
    sessionId: call.sessionId ?? "test",
    user: call.user ?? "test@local",
    deadlineMs: Number(call.deadlineMs ?? 60000),
    limits: call.limits,
  };
}

/** The `tools` export of the component over `list` of tools. */
export function exportTools(list) {
  const byName = new Map(list.map((t) => [t.name, t]));
  const err = (tag, val) => Object.assign(new Error(tag), { payload: { tag, val } });
  return {
    list: (_limits) => list.map(spec),
    call(name, argumentsJson, call) {
      const t = byName.get(name);
      if (!t) throw err("unknown-tool", name);
      let r;
      try {
        r = run(t, JSON.parse(argumentsJson), context(name, call));
      } catch (e) {
        if (e instanceof InvalidArgument) throw err("invalid-arguments", { path: e.path, message: e.reason });
        throw err("internal", `${name}: ${e && e.stack ? e.message : e}`);
      }
      return { content: [{ tag: "text", val: r.text }], structuredContent: r.structured, isError: r.isError };
    },
  };
}
