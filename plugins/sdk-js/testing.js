// Native test doubles for the host imports: logs and progress captured,
// `cancelled` answered, tools run without a host or a component.
import { host, run, context } from "./logai-plugin.js";

export class TestHost {
  /** `files`: path -> text, the granted files `readText` sees. */
  constructor(user = "test@local", files = {}) {
    this.logs = [];
    this.progress = [];
    this.isCancelled = false;
    this.user = user;
    host.log = (level, message) => this.logs.push([level, message]);
    host.progress = (done, total, message) => this.progress.push([done, total, message]);
    host.cancelled = () => this.isCancelled;
    host.readFile = (path) => (path in files ? files[path] : null);
  }

  /** { text, structured (object or undefined), isError }; throws InvalidArgument. */
  call(t, args) {
    const r = run(t, JSON.parse(JSON.stringify(args)), context(t.name, { user: this.user }));
    return { ...r, structured: r.structured === undefined ? undefined : JSON.parse(r.structured) };
  }
}
