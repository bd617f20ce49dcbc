// TLS and mutual TLS against the real server, with certificates made by the openssl command.

import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { TickwireError, connect } from "@tickwire/client";

import { PASSWORD, USER, tempDir, uniqueTopic, withServer } from "./support/server.js";

/** A CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256, two days), and
 * a second CA nobody trusts. */
function makePki(): string {
  const d = tempDir("pki");
  const run = (cmd: string): void => {
    execSync(cmd, { cwd: d, stdio: "pipe" });
  };
  for (const ca of ["ca", "rogue"]) {
    run(
      `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 ` +
        `-keyout ${ca}.key -out ${ca}.crt -subj /CN=tickwire-js-test-${ca} ` +
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
    );
  }
  const leaves: Array<[string, string]> = [
    ["server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"],
    ["client", "extendedKeyUsage=clientAuth"],
  ];
  for (const [name, ext] of leaves) {
    writeFileSync(join(d, `${name}.ext`), `basicConstraints=CA:FALSE\n${ext}\n`);
    run(
      `openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ` +
        `-keyout ${name}.key -out ${name}.csr -subj /CN=${name} && ` +
        `openssl x509 -req -in ${name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial ` +
        `-days 2 -extfile ${name}.ext -out ${name}.crt`,
    );
  }
  return d;
}

test("TLS with mutual authentication: files or PEM text, and refusals", async () => {
  const pki = makePki();
  const env = {
    TLS_CERT_PATH: join(pki, "server.crt"),
    TLS_KEY_PATH: join(pki, "server.key"),
    TLS_CLIENT_CA_PATH: join(pki, "ca.crt"),
  };
  await withServer(env, async (s) => {
    const topic = uniqueTopic("tls");
    const tls = {
      caFile: join(pki, "ca.crt"),
      certFile: join(pki, "client.crt"),
      keyFile: join(pki, "client.key"),
    };
    const client = await connect({
      url: `tls://127.0.0.1:${s.port}`,
      username: USER,
      password: PASSWORD,
      tls,
    });
    try {
      await client.subscribe("tick", [topic]);
      assert.equal(await client.publish([[topic, 1.25, 2]], { ack: true }), 1);
      const ev = await client.nextEvent(5000);
      assert.ok(ev?.type === "batch");
      assert.deepEqual(
        ev.records.map((r) => [r.kind === "watermark" ? "" : r.topic, r.kind === "tick" ? r.seq : -1n]),
        [[topic, 1n]],
      );
    } finally {
      await client.close();
    }

    // The same with PEM text and host/port options.
    const pem = {
      ca: readFileSync(join(pki, "ca.crt"), "utf8"),
      cert: readFileSync(join(pki, "client.crt"), "utf8"),
      key: readFileSync(join(pki, "client.key"), "utf8"),
    };
    const again = await connect({ port: s.port, username: USER, password: PASSWORD, tls: pem });
    await again.close();

    // The server requires a client certificate: without one the handshake or AUTH fails.
    await assert.rejects(
      connect({
        port: s.port,
        username: USER,
        password: PASSWORD,
        tls: { caFile: tls.caFile },
        connectTimeoutMs: 3000,
      }),
      (e: unknown) => e instanceof TickwireError && ["io", "connect"].includes(e.kind),
    );
    // A server certificate from a CA the client does not trust is refused.
    await assert.rejects(
      connect({
        port: s.port,
        username: USER,
        password: PASSWORD,
        tls: { ...tls, caFile: join(pki, "rogue.crt") },
      }),
      (e: unknown) => e instanceof TickwireError && e.kind === "connect" && /certificate/i.test(e.message),
    );
    // Plain TCP to a TLS port does not get through AUTH.
    await assert.rejects(
      connect({ port: s.port, username: USER, password: PASSWORD, connectTimeoutMs: 2000 }),
      (e: unknown) => e instanceof TickwireError && e.kind !== "server",
    );
  });
});
