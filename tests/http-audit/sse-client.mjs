// The graphql-sse reference JS client, as a partner agency's web app would use it, in the mode
// named by argv[2] ("single": one reserved event stream for every operation, "distinct": a
// stream per operation). At the URL in argv[3] it runs the query in argv[4] and, at the same
// time, subscribes to the document in argv[5]; it prints each result as one JSON line
// {"op": "query" | "subscription", "result": ...} and exits after argv[6] subscription results,
// or with code 2 on an error.
import { createClient } from "graphql-sse";

const [mode, url, query, subscription, wanted] = process.argv.slice(2);
const client = createClient({ url, singleConnection: mode === "single", retryAttempts: 0 });
const fail = (error) => {
  const response = error?.response;
  const detail = response ? `${response.status} ${response.statusText}` : error?.message;
  process.stderr.write(String(detail ?? JSON.stringify(error)) + "\n");
  process.exit(2);
};
const print = (op, result) => process.stdout.write(JSON.stringify({ op, result }) + "\n");

let seen = 0;
client.subscribe(
  { query: subscription },
  {
    next: (result) => {
      print("subscription", result);
      seen += 1;
      if (seen >= Number(wanted)) {
        client.dispose();
        process.exit(0);
      }
    },
    error: fail,
    complete: () => process.exit(seen >= Number(wanted) ? 0 : 3),
  },
);
try {
  for await (const result of client.iterate({ query })) print("query", result);
  process.stdout.write(JSON.stringify({ op: "query-complete" }) + "\n");
} catch (error) {
  fail(error);
}
