// PostGraphile 5 (Grafast) on the benchmark database, one process or a cluster of them.
//
// Usage: node server.mjs <connection string> <port> [workers]
// PostGraphile 5's CLI has no cluster option, so this file is its server in both cases: with
// workers > 1 the primary only forks the workers, which share the port through node:cluster
// (as PostGraphile 4's --cluster-workers does). Amber preset (its defaults), no GraphiQL, no
// watch mode, the pg pool's default size of 10.
import cluster from "node:cluster";
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";

const [connectionString, port, workers = "1"] = process.argv.slice(2);
if (!connectionString || !port) {
  console.error("usage: node server.mjs <connection string> <port> [workers]");
  process.exit(2);
}

if (Number(workers) > 1 && cluster.isPrimary) {
  for (let i = 0; i < Number(workers); i++) cluster.fork();
  cluster.on("exit", (worker, code) => {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
  const stop = () => {
    for (const worker of Object.values(cluster.workers)) worker.kill();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  const preset = {
    extends: [PostGraphileAmberPreset],
    pgServices: [makePgService({ connectionString, schemas: ["public"] })],
    grafserv: { graphiql: false, watch: false },
    grafast: { explain: false },
  };
  const pgl = postgraphile(preset);
  const serv = pgl.createServ(grafserv);
  const server = createServer();
  server.keepAliveTimeout = 65000;
  serv.addTo(server).then(
    () => server.listen(Number(port), "127.0.0.1"),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
  process.on("SIGTERM", () => {
    server.close();
    pgl.release().then(() => process.exit(0));
  });
}
