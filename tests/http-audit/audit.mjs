// Runs graphql-http's GraphQL-over-HTTP server audits against the URL given as the only
// argument and prints one JSON array: [{id, name, status, reason?}], in the suite's order.
// tests/gateway/test_http_audit.py starts the gateway and asserts every status is "ok".
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs http://127.0.0.1:PORT/graphql');
  process.exit(2);
}

const results = [];
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    entry.httpStatus = result.response.status;
    entry.contentType = result.response.headers.get('content-type');
    entry.body = await result.response.text().catch(() => null);
  }
  results.push(entry);
}
process.stdout.write(JSON.stringify(results));
