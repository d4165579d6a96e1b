// A client Catalyst did not generate: @grpc/grpc-js with the contracts loaded from proto/ at run time.
// Usage: node feed-client.mjs <host:port> <bearer token> <title> <body>
// Calls catalyst.feed.v1.FeedService/CreatePost and prints the response as JSON on stdout;
// on a gRPC error prints {"code": <number>, "details": "..."} on stdout and exits with 1.
import path from "node:path";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const protoRoot = path.resolve(here, "../../../proto");

function loadFeedService() {
  const definition = protoLoader.loadSync("catalyst/feed/v1/feed.proto", {
    includeDirs: [protoRoot],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).catalyst.feed.v1.FeedService;
}

function main() {
  const [address, token, title, body] = process.argv.slice(2);
  if (!address || !token || !title) {
    console.error("usage: node feed-client.mjs <host:port> <token> <title> <body>");
    process.exit(2);
  }
  const FeedService = loadFeedService();
  const client = new FeedService(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  const deadline = new Date(Date.now() + 15000);
  client.CreatePost({ title, body: body ?? "" }, metadata, { deadline }, (error, response) => {
    client.close();
    if (error) {
      console.log(JSON.stringify({ code: error.code, details: error.details }));
      process.exit(1);
    }
    console.log(JSON.stringify(response));
  });
}

main();
