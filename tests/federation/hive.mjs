// Serves a supergraph with Hive Gateway (@graphql-hive/gateway's runtime) on a free loopback
// port, forwarding the caller's Authorization header to every subgraph.
// argv: the supergraph SDL file. Prints {"url": ...} on its first line once it listens.
import { createServer } from "node:http";
import { createGatewayRuntime } from "@graphql-hive/gateway";

const gateway = createGatewayRuntime({
  supergraph: process.argv[2],
  logging: "error",
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => {
      const authorization = request.headers.get("authorization");
      return authorization ? { authorization } : {};
    },
  },
});
const server = createServer(gateway);
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}/graphql` }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
