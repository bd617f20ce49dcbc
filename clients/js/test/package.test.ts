// The package as applications see it: the entry points its "exports" select, and a browser
// entry point that reaches no node: module.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";

import { PACKAGE_DIR } from "./support/server.js";

/** Every module the ESM file `entry` imports, transitively: relative files, and bare names. */
function importGraph(entry: string): { files: string[]; bare: Set<string> } {
  const files: string[] = [];
  const bare = new Set<string>();
  const queue = [entry];
  const seen = new Set<string>();
  const specifiers =
    /(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)/g;
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    files.push(file);
    const text = readFileSync(file, "utf8");
    assert.doesNotMatch(text, /\brequire\s*\(/, `${file} uses require()`);
    for (const m of text.matchAll(specifiers)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith(".")) queue.push(resolve(dirname(file), spec));
      else bare.add(spec);
    }
  }
  return { files, bare };
}

test("the browser entry point reaches no node: module and no Node-only package", () => {
  const { files, bare } = importGraph(join(PACKAGE_DIR, "dist/browser.js"));
  assert.ok(files.some((f) => f.endsWith("client.js")) && files.some((f) => f.endsWith("websocket.js")));
  assert.ok(!files.some((f) => f.endsWith("tcp.js") || f.endsWith("node.js")), files.join("\n"));
  for (const spec of bare) {
    assert.ok(spec.startsWith("@bufbuild/protobuf"), `the browser build imports ${spec}`);
  }
  // And the protobuf runtime it uses imports nothing of Node either.
  const runtime = join(PACKAGE_DIR, "node_modules/@bufbuild/protobuf/dist/esm");
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? walk(p) : p.endsWith(".js") ? [p] : [];
    });
  for (const file of walk(runtime)) {
    assert.doesNotMatch(readFileSync(file, "utf8"), /from\s*["']node:|import\(["']node:/, file);
  }
});

/** Runs `code` as an ES module in the package directory with extra node flags. */
function runModule(code: string, flags: string[] = []): string {
  const r = spawnSync(process.execPath, [...flags, "--input-type=module", "-e", code], {
    cwd: PACKAGE_DIR,
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test("exports: Node gets TCP and WebSocket, the browser condition gets WebSocket only", () => {
  const probe = `
    const m = await import("@tickwire/client");
    const r = await m.connect({ url: "tcp://127.0.0.1:1", username: "u", password: "p" }).catch((e) => e);
    console.log(r.kind ?? r.message);`;
  assert.equal(runModule(probe), "connect"); // Node: TCP tried (and refused)
  assert.match(runModule(probe, ["--conditions=browser"]), /url must start with ws:\/\/ or wss:\/\//);
  for (const sub of ["node", "browser"]) {
    assert.equal(
      runModule(`const m = await import("@tickwire/client/${sub}"); console.log(typeof m.connect);`),
      "function",
    );
  }
  const pkg = JSON.parse(readFileSync(join(PACKAGE_DIR, "package.json"), "utf8"));
  for (const target of [pkg.exports["."].browser, pkg.exports["."].node, pkg.exports["."].default]) {
    assert.ok(existsSync(join(PACKAGE_DIR, target.types)) && existsSync(join(PACKAGE_DIR, target.default)));
  }
  assert.equal(pkg.engines.node, ">=18");
  assert.equal(pkg.type, "module");
});
