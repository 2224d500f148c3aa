// Runs the generated TypeScript client (compiled to JavaScript by tsc)
// against a live quickstart server. Arguments: the compiled module, the
// node_modules folder holding `ws`, and the server's base URL. Prints
// "ready" once its WebSocket has the identity of user-1 (the test then
// pushes to that user), and "ok" when every check holds.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [compiled, modules, base] = process.argv.slice(2);
const require = createRequire(join(modules, "noop.js"));
const WebSocket = require("ws");
const { httpClient, wsClient, RpcError } = await import(pathToFileURL(compiled).href);

// Over HTTP: a call, a 422 with its errors, an auth call with identity.
const http = httpClient(base + "/");
assert.equal(await http.math.add({ a: 2, b: 3 }), 5);
await assert.rejects(http.math.add({ a: "2", b: 3 }), (error) => {
  assert.ok(error instanceof RpcError);
  assert.equal(error.code, 422);
  assert.ok(error.errors.some((e) => e.path === "/a"), JSON.stringify(error.errors));
  return true;
});
await assert.rejects(http.auth.me(), (error) => error.code === 401);
const session = await http.auth.login({ email: "test@test.com", password: "secret" });
assert.equal(typeof session.token, "string");
const authed = httpClient(base + "/", { identity: { authorization: "Bearer demo-token" } });
assert.equal((await authed.auth.me()).user_id, "user-1");

// Over WebSocket: concurrent calls, identity, a push.
const ws = wsClient(base.replace(/^http/, "ws") + "/", { WebSocket });
const sums = await Promise.all([1, 2, 3, 4, 5].map((a) => ws.math.add({ a, b: 10 })));
assert.deepEqual(sums, [11, 12, 13, 14, 15]);
await assert.rejects(ws.math.add({ a: 1 }), (error) => error.code === 422);
await ws.transport.setIdentity({ authorization: "Bearer demo-token" });
assert.equal((await ws.auth.me()).user_id, "user-1");
const locations = await ws.geo.listLocations({ contains: "o" });
assert.ok(Array.isArray(locations) && locations.every((l) => typeof l.name === "string"));
const pushed = new Promise((resolve) => ws.transport.onServerMessage(resolve));
ws.transport.sendClientMessage({ hello: "server" });
console.log("ready");
assert.deepEqual(await pushed, { note: "for user-1" });
ws.transport.close();
console.log("ok");
