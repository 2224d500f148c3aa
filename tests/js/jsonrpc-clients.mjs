// Calls a live server with @open-rpc/client-js over HTTP and WebSocket,
// and compiles every schema of /openrpc.json and /docs.json with ajv in its
// default (strict) mode. Arguments: the node_modules folder that holds the
// packages (.ci/test installs them into target/node), and the server's
// base URL. Prints "ok" and exits 0 when every check holds.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, base] = process.argv.slice(2);
const require = createRequire(join(modules, "noop.js"));
const { Client, RequestManager, HTTPTransport, WebSocketTransport } = await import(
  pathToFileURL(join(modules, "@open-rpc/client-js/dist/index.js")).href
);

async function exercise(transport) {
  const client = new Client(new RequestManager([transport]));
  assert.deepEqual(await client.request({ method: "jr/add@1", params: { a: 2, b: 3 } }), { sum: 5 });
  assert.equal(await client.request({ method: "ping", params: {} }), "pong");
  await assert.rejects(client.request({ method: "jr/add", params: { a: "x", b: 1 } }), (error) => {
    assert.equal(error.code, -32602);
    assert.ok(error.data.errors.some((e) => e.path === "/a"), JSON.stringify(error.data));
    return true;
  });
  // A batch with a notification in it: the requests are answered.
  client.startBatch();
  const first = client.request({ method: "jr/add", params: { a: 1, b: 1 } });
  const counted = client.notify({ method: "jr/count", params: {} });
  const second = client.request({ method: "jr/add@2", params: { a: 2, b: 2 } });
  client.stopBatch();
  assert.deepEqual(await first, { sum: 2 });
  assert.equal(await second, "v2:4");
  await counted;
  client.close();
}

await exercise(new HTTPTransport(base + "/"));
const ws = new WebSocketTransport(base.replace(/^http/, "ws") + "/");
await exercise(ws);

// Every published schema compiles with ajv's defaults (strict mode).
const Ajv = require("ajv").default;
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const openrpc = await (await fetch(base + "/openrpc.json")).json();
// The document's references point into it (#/components/schemas/X); each
// component is added under a URL of its own, and references renamed to it.
const home = "https://schemas.invalid/components/";
const local = (schema) =>
  JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${home}`));
const draft07 = addFormats(new Ajv());
for (const [name, schema] of Object.entries(openrpc.components.schemas)) {
  draft07.addSchema(local(schema), home + name);
}
let compiled = 0;
for (const method of openrpc.methods) {
  for (const param of method.params) {
    draft07.compile(local(param.schema));
    compiled += 1;
  }
  draft07.compile(local(method.result.schema));
  compiled += 1;
}
for (const name of Object.keys(openrpc.components.schemas)) {
  draft07.getSchema(home + name);
  compiled += 1;
}
const docs = await (await fetch(base + "/docs.json")).json();
const draft2020 = addFormats(new Ajv2020());
for (const procedure of docs.procedures) {
  for (const schema of [procedure.argsSchema, procedure.outputSchema]) {
    draft2020.compile(schema);
    compiled += 1;
  }
}
// The check can fail: strict ajv refuses the formats schemars writes.
assert.throws(() => new Ajv().compile({ type: "integer", format: "int64" }));
console.log(`ok: ${compiled} schemas compiled`);
