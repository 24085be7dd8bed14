// PostGraphile 4 (with the connection filter plugin) on an ephemeral loopback port, for
// tests/sources/test_graphql.py: `node server.js DSN SCHEMA` prints the port once listening.
// GET /requests answers how many GraphQL requests it has served, so a test counts them where
// they arrive. Closing stdin (the test process gone) stops it.
const http = require("http");
const { postgraphile } = require("postgraphile");
const ConnectionFilterPlugin = require("postgraphile-plugin-connection-filter");

const [dsn, schema] = process.argv.slice(2);
const middleware = postgraphile(dsn, schema, {
  appendPlugins: [ConnectionFilterPlugin],
  disableQueryLog: true,
  retryOnInitFail: false,
});
let served = 0;
const server = http.createServer((request, response) => {
  if (request.url === "/requests") {
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ graphql: served }));
    return;
  }
  if (request.url === "/graphql") served += 1;
  middleware(request, response);
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
