// The real tickwire-server for the tests: started on 127.0.0.1 port 0 with PORT_FILE (the
// environment tests/support/server_process.cc gives the C++ tests), stopped by PID.

import { spawn, spawnSync } from "node:child_process";
import { pbkdf2Sync, randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const USER = "test";
export const PASSWORD = "secret";

// build/test/support/server.js -> the repository root.
const HERE = dirname(fileURLToPath(import.meta.url));
export const PACKAGE_DIR = resolve(HERE, "../../..");
export const REPO = resolve(PACKAGE_DIR, "../..");

/** TICKWIRE_SERVER_BIN, else the release build of this tree. */
export function serverBinary(): string {
  const path = process.env.TICKWIRE_SERVER_BIN || join(REPO, "build/release/apps/server/tickwire-server");
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(
      `no tickwire-server at ${path}: build it (cmake --build --preset release) or set TICKWIRE_SERVER_BIN`,
    );
  }
  return path;
}

/** What `tickwire-server --help` lists (to find out which settings this binary has). */
export function serverHelp(): string {
  const r = spawnSync(serverBinary(), ["--help"], { encoding: "utf8", timeout: 10000 });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `predicate` until it is true or `timeoutMs` passes; returns whether it became true. */
export async function waitUntil(
  predicate: () => boolean,
  timeoutMs: number,
  intervalMs = 5,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (predicate()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/** A prefix that makes the server die with the test process (setpriv --pdeathsig, util-linux),
 * so that no server outlives a test run that is killed. */
function dieWithParent(): string[] {
  for (const dir of ["/usr/bin", "/bin"]) {
    const p = join(dir, "setpriv");
    if (existsSync(p)) return [p, "--pdeathsig", "KILL", "--"];
  }
  return [];
}

let tempRoot: string | undefined;

/** A fresh directory under one per-process temp directory (removed at exit). */
export function tempDir(prefix: string): string {
  if (tempRoot === undefined) {
    const root = mkdtempSync(join(tmpdir(), "tickwire-js-"));
    tempRoot = root;
    process.on("exit", () => rmSync(root, { recursive: true, force: true }));
  }
  return mkdtempSync(join(tempRoot, `${prefix}-`));
}

/** One tickwire-server child. `env` overrides (an undefined value removes a variable). */
export class ServerProcess {
  port = 0;
  proc: ChildProcess | undefined;
  private starts = 0;
  private exit: Promise<number | null> | undefined;
  readonly workdir: string;

  constructor(readonly overrides: { [name: string]: string | undefined } = {}) {
    this.workdir = tempDir("server");
  }

  private env(listen: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      STREAM_USER: USER,
      STREAM_PASS: PASSWORD,
      LISTEN_ADDR: listen,
      PORT_FILE: join(this.workdir, "port"),
      WORKERS: "2",
      METRICS_ADDR: "",
      // Tests stop servers often: drain at once unless a test sets a period.
      DRAIN_PERIOD: "0s",
    };
    for (const name of ["ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"]) {
      if (process.env[name] !== undefined) env[name] = process.env[name];
    }
    for (const [name, value] of Object.entries(this.overrides)) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    return env;
  }

  /** Starts the server (on port 0 the first time, on the same port after a stop) and waits
   * until it listens. */
  async start(timeoutMs = 10000): Promise<this> {
    if (this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null) {
      throw new Error("already running");
    }
    const portFile = join(this.workdir, "port");
    rmSync(portFile, { force: true });
    this.starts++;
    const log = openSync(join(this.workdir, `server-${this.starts}.log`), "w");
    const argv = [...dieWithParent(), serverBinary()];
    const proc = spawn(argv[0]!, argv.slice(1), {
      env: this.env(`127.0.0.1:${this.port}`),
      stdio: ["ignore", log, log],
    });
    closeSync(log);
    this.proc = proc;
    this.exit = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
    const text = (): string => (existsSync(portFile) ? readFileSync(portFile, "utf8") : "");
    await waitUntil(
      () => proc.exitCode !== null || proc.signalCode !== null || text().endsWith("\n"),
      timeoutMs,
    );
    if (!text().endsWith("\n")) {
      await this.stop("SIGKILL");
      throw new Error(`tickwire-server did not start: ${this.logTail()}`);
    }
    this.port = Number(text().trim());
    return this;
  }

  get pid(): number {
    return this.proc!.pid!;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  logTail(lines = 10): string {
    const path = join(this.workdir, `server-${this.starts}.log`);
    const text = existsSync(path) ? readFileSync(path, "utf8") : "";
    return text
      .split("\n")
      .slice(-lines - 1)
      .join("\n");
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`); the exit code. */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10000): Promise<number | null> {
    const proc = this.proc;
    if (proc === undefined) return null;
    if (this.running) {
      process.kill(proc.pid!, signal);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const exited = await Promise.race([
        this.exit!.then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (!exited) process.kill(proc.pid!, "SIGKILL");
    }
    await this.exit;
    return proc.exitCode;
  }

  kill(): Promise<number | null> {
    return this.stop("SIGKILL");
  }
}

/** Starts a server for the duration of `fn`. */
export async function withServer<T>(
  env: { [name: string]: string | undefined },
  fn: (s: ServerProcess) => Promise<T>,
): Promise<T> {
  const s = await new ServerProcess(env).start();
  try {
    return await fn(s);
  } finally {
    await s.stop("SIGTERM", 5000);
  }
}

/** The start of the current UTC second in ns, with at least 300 ms of it left (ticks stamped
 * in it go into its bar: the bucket closes 100 ms after it ends). */
export async function freshSecondNs(): Promise<bigint> {
  let now = Date.now();
  if (now % 1000 > 700) {
    await sleep(1000 - (now % 1000) + 10);
    now = Date.now();
  }
  return BigInt(now - (now % 1000)) * 1_000_000n;
}

let topicCounter = 0;

/** A topic no other test publishes to. */
export function uniqueTopic(name: string): string {
  return `T.${name.replace(/[^A-Za-z0-9._:-]/g, "_").slice(0, 60)}.${process.pid}.${++topicCounter}`;
}

/** A USERS_FILE with PBKDF2 hashes (the server's format, docs/SECURITY.md). */
export function writeUsersFile(path: string, users: Array<[string, string, string]>): string {
  const lines = users.map(([user, password, perms]) => {
    const salt = randomBytes(16);
    const key = pbkdf2Sync(password, salt, 1000, 32, "sha256");
    return `${user} pbkdf2-sha256$1000$${salt.toString("base64")}$${key.toString("base64")} ${perms}`;
  });
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}
