// Native unit tests (no host, no component): npm test
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgument } from "./logai-plugin/logai-plugin.js";
import { TestHost } from "./logai-plugin/testing.js";
import { hello } from "./app.js";

test("greets and logs", () => {
  const host = new TestHost();
  assert.equal(host.call(hello, { name: "Ada", shout: true }).text, "HELLO, ADA!");
  assert.deepEqual(host.logs, [["info", "greeting Ada for test@local"]]);
});

test("a wrong argument names its path", () => {
  assert.throws(() => new TestHost().call(hello, { name: 5 }), (e) => e instanceof InvalidArgument && e.path === "$.name");
});
