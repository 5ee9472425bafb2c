// The official TypeScript SDK v2 client (@modelcontextprotocol/client) as a user's program would run
// it: connect (versionNegotiation 'auto' probes for 2026-07-28, 'legacy' initializes a session), list,
// call with progress, answer an elicitation, listen for a change, and print one JSON line per step.
// Usage: node v2_client.mjs URL auto|legacy streamable|sse [TOOL_THAT_CHANGES_THE_LIST]
import { Client, SSEClientTransport, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const [url, mode, kind, changer] = process.argv.slice(2);
const say = (step) => console.log(JSON.stringify(step));
const client = new Client(
  { name: 'mcp-sse-tests-v2', version: '1' },
  { capabilities: { elicitation: { form: {} } }, versionNegotiation: { mode } },
);
client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { name: 'Ada' } }));
let changes = 0;
client.setNotificationHandler('notifications/tools/list_changed', async () => { changes += 1; });
const Transport = kind === 'sse' ? SSEClientTransport : StreamableHTTPClientTransport;
await client.connect(new Transport(new URL(url)));
say({ version: client.getNegotiatedProtocolVersion() });
say({ tools: (await client.listTools()).tools.map((tool) => tool.name) });
const progress = [];
const counted = await client.callTool(
  { name: 'count', arguments: { to: 5, delay_ms: 20 } },
  { onprogress: (p) => progress.push(p.progress) },
);
say({ count: counted.content[0].text, progress });
try {
  const asked = await client.callTool({ name: 'ask_user', arguments: { question: 'Your name?' } });
  say({ ask_user: asked.content[0].text });
} catch (error) {
  say({ ask_user_error: error.message });
}
if (changer && client.getNegotiatedProtocolVersion() === '2026-07-28') {
  const subscription = await client.listen({ toolsListChanged: true });
  await client.callTool({ name: changer, arguments: {} });
  const deadline = Date.now() + 10000;
  while (changes === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  await subscription.close();
  say({ listen: subscription.honoredFilter, changes, closed: await subscription.closed });
}
say({ echo: (await client.callTool({ name: 'echo', arguments: { text: 'bye' } })).content[0].text });
await client.close();
