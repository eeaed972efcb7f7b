// Native tests of the example (no host, no component): `node --test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgument } from "../../plugins/sdk-js/logai-plugin.js";
import { TestHost } from "../../plugins/sdk-js/testing.js";
import { hello, wordCount } from "./app.js";

test("greets", () => {
  const r = new TestHost().call(hello, { name: "Ada", shout: true });
  assert.ok(r.text.startsWith("HELLO, ADA!"));
});

test("a wrong type names the path", () => {
  assert.throws(() => new TestHost().call(hello, { name: 5 }), (e) => e instanceof InvalidArgument && e.path === "$.name");
});

test("word_count logs and answers structured", () => {
  const host = new TestHost();
  const r = host.call(wordCount, { text: "a b a", top: 1 });
  assert.equal(r.text, "1 lines, 3 words, 5 characters, 5 bytes");
  assert.deepEqual(r.structured.top_words, [{ word: "a", count: 2 }]);
  assert.deepEqual(host.logs, [["debug", "word_count: 3 words for test@local"]]);
});
