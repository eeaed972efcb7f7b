// The language contract's probes (tests/plugin_languages.rs) in JavaScript:
// the same tools as tests/plugins/probe (Rust).
import { tool, s, readText } from "../../../plugins/sdk-js/logai-plugin.js";

export const probeRead = tool({
  name: "probe_read",
  description: "Read a file through the SDK's file helper.",
  input: s.object({ path: s.string({ description: "The file to read." }) }),
  call: ({ path }) => readText(path),
});

export const probeSpin = tool({
  name: "probe_spin",
  description: "Loop forever (pure CPU, no host calls).",
  input: s.object({}),
  call() {
    let x = 0;
    for (;;) x = (x + 1) | 0;
  },
});

export const tools = [probeRead, probeSpin];
