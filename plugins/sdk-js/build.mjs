#!/usr/bin/env node
// Builds a logai tool plugin from a JS module that exports `tools` (a list
// made with `tool(...)`): writes the component entry (host imports bound,
// `tools` exported) and runs ComponentizeJS (SpiderMonkey, pre-initialized
// with Wizer at build time).
//   node build.mjs app.js -o plugin.wasm [--wit DIR]
import { componentize } from "@bytecodealliance/componentize-js";
import { mkdtempSync, mkdirSync, writeFileSync, copyFileSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname, basename } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 ? argv.splice(i, 2)[1] : dflt; };
const out = resolve(opt("-o", "plugin.wasm"));
const wit = resolve(opt("--wit", join(here, "wit")));
const witFile = wit.endsWith(".wit") ? wit : join(wit, "plugin.wit");
const app = argv[0] && resolve(argv[0]);
if (!app) { console.error("usage: build.mjs app.js -o plugin.wasm [--wit DIR]"); process.exit(2); }

// One module: the SDK and the app are bundled with the entry by rolldown.
const work = mkdtempSync(join(tmpdir(), "logai-js-"));
try {
  // The build world: logai's tool-plugin world plus the WASI preopens the
  // SDK's file helper reads granted directories through (the engine imports
  // wasi:filesystem anyway; this only gives the JS code bindings to it).
  const world = join(work, "wit");
  for (const p of ["logai", "filesystem", "io", "clocks"]) mkdirSync(join(world, "deps", p), { recursive: true });
  copyFileSync(witFile, join(world, "deps/logai/plugin.wit"));
  for (const p of ["filesystem", "io", "clocks"]) copyFileSync(join(here, "wasi", `${p}.wit`), join(world, "deps", p, "package.wit"));
  writeFileSync(join(world, "world.wit"), `package logai:js-build;
world js-tool-plugin {
  include logai:plugin/tool-plugin@0.2.0;
  import wasi:filesystem/preopens@0.2.12;
}
`);
  // A plugin's own copy of the WIT may predate the aggregate interface
  // (added within 0.2): bind it only when the world has it.
  const hasAggregate = readFileSync(witFile, "utf8").includes("interface aggregate");
  const entry = join(work, "entry.js");
  writeFileSync(entry, `
import { write } from "logai:plugin/log@0.2.0";
import { report } from "logai:plugin/progress@0.2.0";
import { isCancelled } from "logai:plugin/cancelled@0.2.0";
import * as search from "logai:plugin/search@0.2.0";
import * as metrics from "logai:plugin/metrics@0.2.0";
${hasAggregate ? 'import * as aggregate from "logai:plugin/aggregate@0.2.0";' : ""}
import { getDirectories } from "wasi:filesystem/preopens@0.2.12";
import { host, exportTools, normalize } from ${JSON.stringify(join(here, "logai-plugin.js"))};
import { tools as list } from ${JSON.stringify(app)};
host.log = (level, message) => write(level, String(message));
host.progress = (done, total, message) => report(done, total, message);
host.cancelled = () => isCancelled();
host.search = search;
host.metrics = metrics;
${hasAggregate ? "host.aggregate = aggregate;" : ""}
host.readFile = (path) => {
  const norm = normalize(path);
  for (const [dir, guest] of getDirectories()) {
    const g = normalize(guest);
    if (norm !== g && !norm.startsWith(g === "/" ? "/" : g + "/")) continue;
    const rel = norm.slice(g.length).replace(/^\\/+/, "") || ".";
    const fd = dir.openAt({}, rel, {}, { read: true });
    const chunks = [];
    let offset = 0n;
    for (;;) {
      const [data, eof] = fd.read(65536n, offset);
      chunks.push(data);
      offset += BigInt(data.length);
      if (eof || data.length === 0) break;
    }
    const all = new Uint8Array(Number(offset));
    let at = 0;
    for (const c of chunks) { all.set(c, at); at += c.length; }
    return new TextDecoder().decode(all);
  }
  return null;
};
export const tools = exportTools(list);
`);
  const { rolldown } = await import("rolldown");
  const bundle = await rolldown({ input: entry, external: [/^logai:/, /^wasi:/], platform: "neutral" });
  const { output } = await bundle.generate({ format: "esm" });
  const source = output[0].code;
  const { component } = await componentize(source, { witPath: world, worldName: "js-tool-plugin", disableFeatures: ["http", "fetch-event"] });
  writeFileSync(out, component);
  console.error(`built ${out} (${(component.length / 1024) | 0} KiB)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
