// The official TypeScript SDK client (@modelcontextprotocol/sdk, as a host built on it runs it) for
// tests/e2e/test_crash_restart.py: one session, a long tool call whose progress goes to stdout a line
// each, then the call's outcome and the outcome of the next calls on the same session, as JSON lines.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, steps] = process.argv.slice(2);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const transport = new StreamableHTTPClientTransport(new URL(url));
const client = new Client({ name: "mcp-sse-crash-test", version: "1.0.0" });
await client.connect(transport);
say({ session: transport.sessionId });
try {
  const result = await client.callTool(
    { name: "count", arguments: { to: Number(steps), delay_ms: 3 } },
    undefined,
    { onprogress: (p) => say({ progress: p.progress }), timeout: 60000, resetTimeoutOnProgress: true },
  );
  say({ result: result.content[0].text });
} catch (error) {
  say({ error: { code: error.code, message: error.message } });
}
const after = await client.callTool({ name: "echo", arguments: { text: "after" } });
say({ after: after.content[0].text, session: transport.sessionId });
await client.close();
