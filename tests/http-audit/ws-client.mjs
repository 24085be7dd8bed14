// The graphql-ws reference JS client, as a partner agency's app would use it: subscribes to the
// document in argv[3] at the URL in argv[2] and prints each result as one JSON line; exits after
// argv[4] results, or with code 2 on an error.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, query, wanted] = process.argv.slice(2);
const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
let seen = 0;
client.subscribe(
  { query },
  {
    next: (result) => {
      process.stdout.write(JSON.stringify(result) + "\n");
      seen += 1;
      if (seen >= Number(wanted)) {
        client.dispose();
        process.exit(0);
      }
    },
    error: (error) => {
      process.stderr.write(String(error?.message ?? JSON.stringify(error)) + "\n");
      process.exit(2);
    },
    complete: () => process.exit(seen >= Number(wanted) ? 0 : 3),
  },
);
