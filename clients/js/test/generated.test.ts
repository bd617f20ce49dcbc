// The committed protobuf code (src/gen) is what protoc-gen-es makes of the schema today: a change
// to proto/tickwire/v1/tickwire.proto without `npm run generate` fails here.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { PACKAGE_DIR, REPO, tempDir } from "./support/server.js";

const GENERATED = "tickwire/v1/tickwire_pb.ts";

test("src/gen matches the schema (regenerated with protoc and protoc-gen-es)", () => {
  const out = tempDir("gen");
  // The same command as `npm run generate`, into a scratch directory.
  const r = spawnSync(
    "protoc",
    [
      `-I${join(REPO, "proto")}`,
      `--plugin=protoc-gen-es=${join(PACKAGE_DIR, "node_modules/.bin/protoc-gen-es")}`,
      `--es_out=${out}`,
      "--es_opt=target=ts,import_extension=js",
      join(REPO, "proto/tickwire/v1/tickwire.proto"),
    ],
    { encoding: "utf8" },
  );
  assert.ok(
    !r.error,
    `protoc did not run (${r.error?.message}): scripts/setup.sh installs protobuf-compiler`,
  );
  assert.equal(r.status, 0, r.stderr);
  const fresh = readFileSync(join(out, GENERATED), "utf8");
  const committed = readFileSync(join(PACKAGE_DIR, "src/gen", GENERATED), "utf8");
  assert.ok(
    fresh === committed,
    "src/gen/tickwire/v1/tickwire_pb.ts is stale: run `npm run generate` in clients/js and commit it",
  );
});
