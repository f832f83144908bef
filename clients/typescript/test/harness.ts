/**
 * Test fixtures: a fake OpenAI-compatible upstream, the real roleplay-server
 * binary on free loopback ports, and a TCP proxy whose connections a test can
 * cut. Everything listens on 127.0.0.1 only, and every wait has a deadline.
 *
 * The server binary is $ROLEPLAY_SERVER_BIN, else
 * <repo>/target/debug/roleplay-server (built by `cargo build` / `cargo test`).
 */

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createNetServer, connect as netConnect, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createClients, type RoleplayClients } from "../src/index.js";

/** The repository root: tests run from clients/typescript/dist/test/. */
const here = dirname(fileURLToPath(import.meta.url));
export const PACKAGE_DIR = resolve(here, "..", "..");
export const REPO_DIR = resolve(PACKAGE_DIR, "..", "..");
export const API_KEY = "sk-test-0123456789abcdef";
/** The web front end's origin that the test server lists in ROLEPLAY_CORS_ORIGINS. */
export const WEB_ORIGIN = "http://app.example";
/** Deadline for every unary call, in ms. */
export const RPC_TIMEOUT_MS = 10_000;

export function serverBinary(): string {
  const path = process.env.ROLEPLAY_SERVER_BIN || join(REPO_DIR, "target", "debug", "roleplay-server");
  try {
    accessSync(path, constants.X_OK);
    if (!statSync(path).isFile()) throw new Error("not a file");
  } catch {
    throw new Error(
      `roleplay-server binary not found at ${path}: build it with \`cargo build\` ` +
        "or point ROLEPLAY_SERVER_BIN at it",
    );
  }
  return path;
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rejects with a clear message when `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function waitUntil(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(10);
  }
}

export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

// --- Fake upstream -----------------------------------------------------------

/**
 * An OpenAI-compatible `POST /chat/completions` that streams `chunks` as SSE,
 * waiting `delayMs` after each, then a finish chunk, a usage chunk and [DONE].
 */
export class FakeUpstream {
  chunks: string[] = ["Hello", " there", "!"];
  delayMs = 0;
  readonly requests: unknown[] = [];
  #server: HttpServer;
  port = 0;

  private constructor() {
    this.#server = createHttpServer((req, res) => {
      const body: Buffer[] = [];
      req.on("data", (b: Buffer) => body.push(b));
      req.on("end", () => {
        if (req.method !== "POST" || req.url?.replace(/\/+$/, "") !== "/chat/completions") {
          res.writeHead(404).end();
          return;
        }
        try {
          this.requests.push(JSON.parse(Buffer.concat(body).toString("utf8") || "{}"));
        } catch {
          this.requests.push(null);
        }
        void this.#stream(res, [...this.chunks], this.delayMs);
      });
    });
  }

  async #stream(res: import("node:http").ServerResponse, chunks: string[], delayMs: number): Promise<void> {
    let gone = false;
    res.on("close", () => (gone = true));
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "close" });
    const event = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);
    for (const chunk of chunks) {
      if (gone) return; // the server dropped the request (cancelled)
      event({ choices: [{ delta: { content: chunk }, finish_reason: null }] });
      if (delayMs > 0) await delay(delayMs);
    }
    if (gone) return;
    event({ choices: [{ delta: {}, finish_reason: "stop" }] });
    event({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } });
    res.end("data: [DONE]\n\n");
  }

  static async start(): Promise<FakeUpstream> {
    const upstream = new FakeUpstream();
    await new Promise<void>((r) => upstream.#server.listen(0, "127.0.0.1", r));
    upstream.port = (upstream.#server.address() as { port: number }).port;
    return upstream;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  reply(): string {
    return this.chunks.join("");
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

// --- TCP proxy ---------------------------------------------------------------

/** Forwards 127.0.0.1:<port> to a target port; `cut()` drops every open connection while new ones are still accepted. */
export class TcpProxy {
  port = 0;
  accepted = 0;
  cuts = 0;
  /** The first bytes each client sent: "PRI * HTTP/2.0" for HTTP/2, "POST /... HTTP/1.1" for HTTP/1.1. */
  readonly preambles: string[] = [];
  #server: NetServer;
  #open = new Set<Socket>();

  private constructor(targetPort: number) {
    this.#server = createNetServer((client) => {
      this.accepted += 1;
      const upstream = netConnect(targetPort, "127.0.0.1");
      this.#open.add(client);
      this.#open.add(upstream);
      const kill = () => {
        client.destroy();
        upstream.destroy();
        this.#open.delete(client);
        this.#open.delete(upstream);
      };
      client.on("error", kill).on("close", kill);
      upstream.on("error", kill).on("close", kill);
      client.once("data", (b: Buffer) => this.preambles.push(b.subarray(0, 128).toString("latin1")));
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await new Promise<void>((r) => proxy.#server.listen(0, "127.0.0.1", r));
    proxy.port = (proxy.#server.address() as { port: number }).port;
    return proxy;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Drops every connection open now, both sides, with a TCP reset. */
  cut(): number {
    const victims = [...this.#open];
    this.#open.clear();
    this.cuts += 1;
    for (const s of victims) s.resetAndDestroy();
    return victims.length / 2;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

// --- The server ---------------------------------------------------------------

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** roleplay-server on a free port, with its own database and master key in a temporary directory. */
export class RoleplayServer {
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #env: NodeJS.ProcessEnv;
  #log = "";
  #exited: Promise<number | null>;

  private constructor(port: number, child: ChildProcess, dir: string, env: NodeJS.ProcessEnv) {
    this.port = port;
    this.#child = child;
    this.#dir = dir;
    this.#env = env;
    const keep = (b: Buffer) => {
      this.#log = (this.#log + b.toString("utf8")).slice(-8000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.#exited = new Promise((r) => child.on("exit", (code) => r(code)));
  }

  static async start(upstreamBaseUrl: string): Promise<RoleplayServer> {
    const bin = serverBinary();
    const dir = mkdtempSync(join(tmpdir(), "roleplay-ts-test-"));
    const port = await freePort();
    const env = {
      ...process.env,
      ROLEPLAY_LISTEN: `127.0.0.1:${port}`,
      DATABASE_URL: join(dir, "db.sqlite"),
      ROLEPLAY_MASTER_KEY_FILE: join(dir, "master.key"),
      OPENROUTER_BASE_URL: upstreamBaseUrl,
      // The origin the gRPC-Web tests call from, as a browser front end would.
      ROLEPLAY_CORS_ORIGINS: WEB_ORIGIN,
      RUST_LOG: "warn",
    };
    const child = spawn(bin, ["serve"], { env, cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    const server = new RoleplayServer(port, child, dir, env);
    try {
      await server.#waitReady(20_000);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Runs the server binary's CLI (`users add alice`, ...) with the server's
   * environment (its database and master key); never rejects.
   */
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        serverBinary(),
        args,
        { env: this.#env, cwd: this.#dir, timeout: 30_000, encoding: "utf8" },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
          resolve({ code, stdout, stderr: error !== null && code === -1 ? `${stderr}${error.message}` : stderr });
        },
      );
    });
  }

  /** Recent stdout and stderr of the server, for failure messages. */
  get log(): string {
    return this.#log;
  }

  async #waitReady(ms: number): Promise<void> {
    const transport = createGrpcTransport({ baseUrl: this.baseUrl });
    const clients = createClients(transport);
    let exitCode: number | null | undefined;
    void this.#exited.then((c) => (exitCode = c));
    const deadline = Date.now() + ms;
    let last: unknown;
    while (Date.now() < deadline) {
      if (exitCode !== undefined) {
        throw new Error(`roleplay-server exited with ${exitCode} before it was ready:\n${this.#log}`);
      }
      try {
        await clients.settings.getSettings({}, { timeoutMs: 1000 });
        return;
      } catch (err) {
        last = err;
        await delay(50);
      }
    }
    throw new Error(`roleplay-server was not ready after ${ms} ms (last error: ${String(last)}):\n${this.#log}`);
  }

  /** SIGTERM, then SIGKILL if it has not exited within 5 s; removes its directory. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGTERM");
      const timer = setTimeout(() => this.#child.kill("SIGKILL"), 5000);
      await this.#exited;
      clearTimeout(timer);
    }
    running.delete(this.#child);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

// --- Chats -------------------------------------------------------------------

/** Stores the provider key, a character and a user profile, and opens a chat; returns its id. */
export async function createChat(clients: RoleplayClients): Promise<string> {
  const opts = { timeoutMs: RPC_TIMEOUT_MS };
  await clients.settings.setProviderApiKey({ apiKey: API_KEY }, opts);
  const character = await clients.characters.createCharacter(
    { name: "Ada", description: "A patient guide who answers briefly." },
    opts,
  );
  const profile = await clients.userProfiles.createUserProfile({ name: "Tester" }, opts);
  const chat = await clients.chats.createChatSession(
    { characterId: character.id, userProfileId: profile.id },
    opts,
  );
  return chat.id;
}

/** Clients over gRPC (HTTP/2) to `baseUrl`, sending `token` when given. */
export function grpcClients(baseUrl: string, token?: string): { clients: RoleplayClients; transport: Transport } {
  const transport = createGrpcTransport({ baseUrl });
  return { clients: createClients(transport, { token }), transport };
}


/** Waits until `n` clients are subscribed to the chat, so a reply sent next is seen from its start. */
export async function waitForWatchers(clients: RoleplayClients, chatId: string, n: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const status = await clients.messages.getStreamStatus({ chatSessionId: chatId }, { timeoutMs: RPC_TIMEOUT_MS });
    if (status.watchers >= n) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${n} watchers (have ${status.watchers})`);
    await delay(20);
  }
}
