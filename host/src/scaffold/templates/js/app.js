// {{name}}: a logai tool plugin in JavaScript. Each tool is declared once:
// its arguments as a schema built with `s` (the JSON Schema is derived from
// it, and arguments are checked against it) and a `call`.
import { tool, s, log } from "./logai-plugin/logai-plugin.js";

export const hello = tool({
  name: "{{tool}}",
  title: "Say hello",
  description: "Greet someone by name. Returns one line of text.",
  readOnly: true,
  input: s.object({
    name: s.string({ description: "Who to greet.", minLength: 1, maxLength: 200 }),
    shout: s.boolean({ description: "Greet in capitals.", default: false }),
  }),
  call({ name, shout }, ctx) {
    log.info(`greeting ${name} for ${ctx.user}`);
    const greeting = `Hello, ${name}!`;
    return shout ? greeting.toUpperCase() : greeting;
  },
});

export const tools = [hello];
