// Composes a supergraph with @theguild/federation-composition (the composer Hive uses; the same
// validation rules and messages as @apollo/composition).
// stdin: [{"name", "url", "sdl"}, ...]; stdout: the supergraph SDL; exit 1 with the errors.
import { readFileSync } from "node:fs";
import { parse } from "graphql";
import { composeServices, compositionHasErrors } from "@theguild/federation-composition";

const services = JSON.parse(readFileSync(0, "utf8"));
const result = composeServices(
  services.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })),
);
if (compositionHasErrors(result)) {
  for (const error of result.errors) console.error(error.message);
  process.exit(1);
}
process.stdout.write(result.supergraphSdl);
