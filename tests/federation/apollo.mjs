// Serves a supergraph with Apollo Gateway on Apollo Server (standalone) on a free loopback
// port, forwarding the caller's Authorization header to every subgraph.
// argv: the supergraph SDL file. Prints {"url": ...} on its first line once it listens.
import { readFileSync } from "node:fs";
import { ApolloGateway, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";

class ForwardAuthorization extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.authorization) request.http.headers.set("authorization", context.authorization);
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(process.argv[2], "utf8"),
  buildService: ({ url }) => new ForwardAuthorization({ url }),
});
const server = new ApolloServer({
  gateway,
  csrfPrevention: false,
  includeStacktraceInErrorResponses: false,
});
const { url } = await startStandaloneServer(server, {
  listen: { port: 0, host: "127.0.0.1" },
  context: async ({ req }) => ({ authorization: req.headers.authorization }),
});
console.log(JSON.stringify({ url }));
process.on("SIGTERM", () => server.stop().then(() => process.exit(0)));
