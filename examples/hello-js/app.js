// The `hello` example plugin in JavaScript: the same three tools, schemas and
// answers as examples/hello-plugin (Rust).
//
// Build: scripts/build-plugins (or `node ../../plugins/sdk-js/build.mjs
// app.js -o hello-js.wasm`). Test natively: `node --test`.
import { tool, s, log, Structured, Json } from "../../plugins/sdk-js/logai-plugin.js";

export const hello = tool({
  name: "hello",
  title: "Say hello",
  description: "Greet someone by name. Returns one line of text.",
  readOnly: true,
  input: s.object({
    name: s.string({ description: "Who to greet.", minLength: 1, maxLength: 200 }),
    shout: s.boolean({ description: "Greet in capitals.", default: false }),
  }),
  call({ name, shout }) {
    const g = `Hello, ${name}! Greetings from a WebAssembly component.`;
    return shout ? g.toUpperCase() : g;
  },
});

const WordFreq = s.object(
  { word: s.string({ description: "The word, lowercased." }), count: s.integer({ description: "How often it occurs.", minimum: 0 }) },
  { strict: false, description: "One word and how often it occurs." },
);

const Counts = s.object(
  {
    lines: s.integer({ description: "Lines in the text.", minimum: 0 }),
    words: s.integer({ description: "Whitespace-separated words.", minimum: 0 }),
    chars: s.integer({ description: "Unicode characters.", minimum: 0 }),
    bytes: s.integer({ description: "UTF-8 bytes.", minimum: 0 }),
    top_words: s.array(WordFreq, { description: "The most frequent words (lowercased), most frequent first." }),
  },
  { strict: false },
);

// The component's engine has no Unicode property escapes (\p{L}): ASCII
// letters and digits, and every non-ASCII character, count as alphanumeric.
const isAlnum = (c) => c > "\x7f" || /[A-Za-z0-9]/.test(c);
function trimNonAlnum(w) {
  const cs = [...w];
  let a = 0, b = cs.length;
  while (a < b && !isAlnum(cs[a])) a++;
  while (b > a && !isAlnum(cs[b - 1])) b--;
  return cs.slice(a, b).join("");
}

/** Count `text` (pure, so it is unit-testable natively). */
export function count(text, top) {
  const words = text.split(/\s+/u).filter(Boolean);
  const freq = new Map();
  for (const w of words) {
    const t = trimNonAlnum(w).toLowerCase();
    if (t) freq.set(t, (freq.get(t) ?? 0) + 1);
  }
  const top_words = [...freq]
    .map(([word, count]) => ({ word, count }))
    .sort((a, b) => b.count - a.count || (a.word < b.word ? -1 : a.word > b.word ? 1 : 0))
    .slice(0, top);
  const lines = text === "" ? 0 : text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
  return { lines, words: words.length, chars: [...text].length, bytes: new TextEncoder().encode(text).length, top_words };
}

export const wordCount = tool({
  name: "word_count",
  title: "Count words",
  description: "Count the lines, words, characters and bytes of a text, and list its most frequent words.",
  readOnly: true,
  input: s.object({
    text: s.string({ description: "The text to count." }),
    top: s.integer({ description: "How many of the most frequent words to list.", minimum: 0, maximum: 100, default: 5 }),
  }),
  output: Counts,
  call({ text, top }, ctx) {
    const c = count(text, top);
    log.debug(`word_count: ${c.words} words for ${ctx.user}`);
    return new Structured(`${c.lines} lines, ${c.words} words, ${c.chars} characters, ${c.bytes} bytes`, c);
  },
});

export const echoJson = tool({
  name: "echo_json",
  title: "Echo JSON",
  description: "Return the `value` argument unchanged, as structured content and as JSON text.",
  readOnly: true,
  input: s.object({ value: s.any({ description: "Any JSON value." }) }, { strict: false }),
  output: s.object({ value: s.any({ description: "The value as sent." }) }, { strict: false }),
  call: ({ value }) => new Json({ value }),
});

export const tools = [hello, wordCount, echoJson];
