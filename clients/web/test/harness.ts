/**
 * Test fixtures: a fake OpenAI-compatible upstream, the real roleplay-server
 * binary on free loopback ports, a static server for dist/ (with the same CSP
 * the server sends), and Debian's chromium driven by playwright-core.
 * Everything listens on 127.0.0.1 only, and every wait has a deadline.
 *
 * The server binary is $ROLEPLAY_SERVER_BIN, else
 * <repo>/target/debug/roleplay-server. If that server serves the UI itself at
 * `/` (a build that embeds clients/web/dist), the page is loaded from it,
 * same-origin; otherwise from the static server with `?api=<server>`.
 */

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createNetServer, connect as netConnect, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { CharacterService } from "../src/gen/roleplay/v1/character_pb.js";
import { ChatSessionService } from "../src/gen/roleplay/v1/chat_session_pb.js";
import { LorebookService } from "../src/gen/roleplay/v1/lorebook_pb.js";
import { MessageService } from "../src/gen/roleplay/v1/message_pb.js";
import { SettingsService } from "../src/gen/roleplay/v1/settings_pb.js";
import { UserService } from "../src/gen/roleplay/v1/user_pb.js";
import { UserProfileService } from "../src/gen/roleplay/v1/user_profile_pb.js";

/** Tests run from clients/web/build/test/. */
const here = dirname(fileURLToPath(import.meta.url));
export const PACKAGE_DIR = resolve(here, "..", "..");
export const REPO_DIR = resolve(PACKAGE_DIR, "..", "..");
export const DIST_DIR = join(PACKAGE_DIR, "dist");
export const ARTIFACTS_DIR = join(PACKAGE_DIR, "test-artifacts");
export const API_KEY = "sk-test-0123456789abcdef";
export const RPC = { timeoutMs: 10_000 };
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** The CSP the server sends with the UI (src/api of the server), used by the test's static server too. */
export const CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export function serverBinary(): string {
  const path = process.env.ROLEPLAY_SERVER_BIN || join(REPO_DIR, "target", "debug", "roleplay-server");
  try {
    accessSync(path, constants.X_OK);
    if (!statSync(path).isFile()) throw new Error("not a file");
  } catch {
    throw new Error(
      `roleplay-server binary not found at ${path}: build it with \`cargo build\` ` +
        "or point ROLEPLAY_SERVER_BIN at one (e.g. ROLEPLAY_SERVER_BIN=/path/to/roleplay-server ./run_tests.sh)",
    );
  }
  return path;
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitUntil(predicate: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(20);
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

/** What the fake provider answers to the next requests. */
export interface Script {
  chunks: string[];
  delayMs: number;
  /** Answer this HTTP status with an error body instead of a stream. */
  status?: number;
}

/** The fake provider's model catalog. */
export const FAKE_CATALOG: Record<string, unknown>[] = [
  {
    id: "fake/small-model",
    name: "Fake: Small Model",
    context_length: 8192,
    pricing: { prompt: "0.000001", completion: "0.000002" },
    top_provider: { max_completion_tokens: 2048 },
    supported_parameters: ["temperature", "top_p", "max_tokens"],
  },
  {
    id: "fake/large-model",
    name: "Fake: Large Model",
    context_length: 200000,
    pricing: { prompt: "0.000003", completion: "0.000015" },
    supported_parameters: ["temperature", "top_p", "top_k", "min_p", "seed", "stop"],
  },
];

/**
 * An OpenAI-compatible `POST /chat/completions` that streams `script.chunks`
 * as SSE, waiting `delayMs` after each, then a finish chunk, a usage chunk
 * (with an OpenRouter-style cost) and [DONE]; it keeps each request body.
 * `GET /models` answers `models` (the catalog), or 404 when that is null.
 */
export class FakeUpstream {
  script: Script = { chunks: ["Hello", " there", "!"], delayMs: 0 };
  requests = 0;
  /** The JSON bodies of the chat requests, oldest first. */
  readonly bodies: Record<string, unknown>[] = [];
  /** `GET /models` answers this catalog (OpenRouter's shape); null answers 404. */
  models: Record<string, unknown>[] | null = FAKE_CATALOG;
  #server: HttpServer;
  port = 0;

  private constructor() {
    this.#server = createHttpServer((req, res) => {
      const body: Buffer[] = [];
      req.on("data", (b: Buffer) => body.push(b));
      req.on("end", () => {
        const path = req.url?.replace(/\/+$/, "");
        if (req.method === "GET" && path === "/models") {
          if (!this.models) {
            res.writeHead(404).end();
            return;
          }
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ data: this.models }));
          return;
        }
        if (req.method !== "POST" || path !== "/chat/completions") {
          res.writeHead(404).end();
          return;
        }
        this.requests += 1;
        try {
          this.bodies.push(JSON.parse(Buffer.concat(body).toString("utf8")) as Record<string, unknown>);
        } catch {
          this.bodies.push({});
        }
        const script = { ...this.script, chunks: [...this.script.chunks] };
        if (script.status) {
          res.writeHead(script.status, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: { message: `fake upstream says ${script.status}`, code: script.status } }));
          return;
        }
        void this.#stream(res, script);
      });
    });
  }

  async #stream(res: ServerResponse, script: Script): Promise<void> {
    let gone = false;
    res.on("close", () => (gone = true));
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "close" });
    const event = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);
    for (const chunk of script.chunks) {
      if (gone) return;
      event({ choices: [{ delta: { content: chunk }, finish_reason: null }] });
      if (script.delayMs > 0) await delay(script.delayMs);
    }
    if (gone) return;
    event({ choices: [{ delta: {}, finish_reason: "stop" }] });
    event({ choices: [], usage: { prompt_tokens: 40, completion_tokens: script.chunks.length, total_tokens: 40 + script.chunks.length, cost: 0.00042 } });
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

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

// --- Static server for dist/ ---------------------------------------------------

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
};

/** Serves dist/ with the server's CSP, allowing connections to `apiOrigin` too. */
export class StaticServer {
  #server: HttpServer;
  port = 0;

  /** The API's origin, allowed by the CSP's connect-src (set once the server runs). */
  apiOrigin = "";

  private constructor(root: string) {
    this.#server = createHttpServer((req, res) => {
      const csp = CSP.replace("connect-src 'self'", `connect-src 'self' ${this.apiOrigin}`.trimEnd());
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      const rel = normalize(path === "/" ? "/index.html" : path).replace(/^(\.\.[/\\])+/, "");
      const file = join(root, rel);
      if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found");
        return;
      }
      res.writeHead(200, {
        "content-type": MIME[extname(file)] ?? "application/octet-stream",
        "content-security-policy": csp,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      });
      res.end(readFileSync(file));
    });
  }

  static async start(root: string): Promise<StaticServer> {
    if (!existsSync(join(root, "index.html"))) throw new Error(`${root}/index.html is missing: run \`npm run build\``);
    const s = new StaticServer(root);
    await new Promise<void>((r) => s.#server.listen(0, "127.0.0.1", r));
    s.port = (s.#server.address() as { port: number }).port;
    return s;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
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
  #server: NetServer;
  #open = new Set<Socket>();

  /** Where connections go; set before the first one arrives. */
  targetPort: number;

  private constructor(targetPort: number) {
    this.targetPort = targetPort;
    this.#server = createNetServer((client) => {
      const upstream = netConnect(this.targetPort, "127.0.0.1");
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

export function clientsFor(baseUrl: string, token?: string) {
  const transport = createGrpcTransport({
    baseUrl,
    interceptors: token ? [(next) => (req) => { req.header.set("authorization", `Bearer ${token}`); return next(req); }] : [],
  });
  return {
    characters: createClient(CharacterService, transport),
    chats: createClient(ChatSessionService, transport),
    lorebooks: createClient(LorebookService, transport),
    messages: createClient(MessageService, transport),
    settings: createClient(SettingsService, transport),
    users: createClient(UserService, transport),
    profiles: createClient(UserProfileService, transport),
  };
}
export type Clients = ReturnType<typeof clientsFor>;

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

  static async start(upstreamBaseUrl: string, extraEnv: Record<string, string> = {}): Promise<RoleplayServer> {
    const bin = serverBinary();
    const dir = mkdtempSync(join(tmpdir(), "roleplay-web-test-"));
    mkdirSync(join(dir, "keys"));
    const port = await freePort();
    const env = {
      ...process.env,
      ROLEPLAY_LISTEN: `127.0.0.1:${port}`,
      DATABASE_URL: join(dir, "roleplay.db"),
      ROLEPLAY_MASTER_KEY_FILE: join(dir, "master.key"),
      ROLEPLAY_MASTER_KEY_DIR: join(dir, "keys"),
      OPENROUTER_BASE_URL: upstreamBaseUrl,
      ROLEPLAY_LOG_FORMAT: "json",
      ROLEPLAY_MESSAGES_PER_MINUTE_PER_CHAT: "0",
      ROLEPLAY_MESSAGES_PER_MINUTE_PER_USER: "0",
      ROLEPLAY_UPSTREAM_TRIES: "1",
      RUST_LOG: "warn",
      ...extraEnv,
    };
    const child = spawn(bin, ["serve"], { env, cwd: REPO_DIR, stdio: ["ignore", "pipe", "pipe"] });
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

  clients(token?: string): Clients {
    return clientsFor(this.baseUrl, token);
  }

  /** Whether this server serves the UI at `/` itself (a build that embeds clients/web/dist). */
  async servesUi(): Promise<boolean> {
    try {
      const res = await fetch(`${this.baseUrl}/`, { signal: AbortSignal.timeout(3000) });
      const body = await res.text();
      return res.ok && /assets\/app-[\w-]+\.js/.test(body);
    } catch {
      return false;
    }
  }

  /** Runs the server binary's CLI (`users add alice`, ...) with the server's environment; never rejects. */
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(serverBinary(), args, { env: this.#env, cwd: REPO_DIR, timeout: 30_000, encoding: "utf8" }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      });
    });
  }

  get log(): string {
    return this.#log;
  }

  async #waitReady(ms: number): Promise<void> {
    const clients = this.clients();
    let exitCode: number | null | undefined;
    void this.#exited.then((c) => (exitCode = c));
    const deadline = Date.now() + ms;
    let last: unknown;
    while (Date.now() < deadline) {
      if (exitCode !== undefined) throw new Error(`roleplay-server exited with ${exitCode} before it was ready:\n${this.#log}`);
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

// --- The browser ---------------------------------------------------------------

/**
 * Launches Debian's chromium. Playwright gives every launch a fresh temporary
 * profile (its own --user-data-dir, removed on close); it refuses one passed
 * in `args`.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The problems list of the World that opened each page (for failure messages). */
const PROBLEMS = new WeakMap<Page, string[]>();

/** Everything one test file needs: upstream, server, page origin, browser. */
export class World {
  upstream!: FakeUpstream;
  server!: RoleplayServer;
  static?: StaticServer;
  proxy?: TcpProxy;
  browser!: Browser;
  /** Where the page is loaded from, and the query that points it at the API. */
  pageOrigin = "";
  query = "";
  sameOrigin = false;
  /** Console messages and page errors that mean trouble (CSP violations, exceptions). */
  readonly problems: string[] = [];

  static async start(extraEnv: Record<string, string> = {}): Promise<World> {
    const w = new World();
    try {
      w.upstream = await FakeUpstream.start();
      // The static server's origin is allowed by the API server's CORS (a
      // server that serves the UI itself is used same-origin instead).
      // The browser reaches the server through a proxy whose connections a
      // test can cut; the server answers to the proxy's host:port too.
      w.static = await StaticServer.start(DIST_DIR);
      w.proxy = await TcpProxy.start(0);
      w.server = await RoleplayServer.start(w.upstream.baseUrl, {
        ROLEPLAY_CORS_ORIGINS: w.static.origin,
        ROLEPLAY_ALLOWED_HOSTS: `127.0.0.1:${w.proxy.port}`,
        ...extraEnv,
      });
      w.proxy.targetPort = w.server.port;
      w.static.apiOrigin = w.proxy.baseUrl;
      if (process.env.ROLEPLAY_WEB_CROSS_ORIGIN !== "1" && (await w.server.servesUi())) {
        w.sameOrigin = true;
        w.pageOrigin = w.proxy.baseUrl;
        await w.static.close();
        w.static = undefined;
      } else {
        w.pageOrigin = w.static.origin;
        w.query = `?api=${encodeURIComponent(w.proxy.baseUrl)}`;
      }
      console.log(
        w.sameOrigin
          ? `the page is served by the server itself, same-origin (${w.pageOrigin})`
          : `the page is served by the test's static server (${w.pageOrigin}), the API at ${w.proxy.baseUrl}`,
      );
      w.browser = await launchBrowser();
      mkdirSync(ARTIFACTS_DIR, { recursive: true });
    } catch (err) {
      await w.stop();
      throw err;
    }
    return w;
  }

  url(hash = "#/chats"): string {
    return `${this.pageOrigin}/${this.query}${hash}`;
  }

  async context(options: { width?: number; height?: number; token?: string } = {}): Promise<BrowserContext> {
    const ctx = await this.browser.newContext({
      viewport: { width: options.width ?? 1000, height: options.height ?? 760 },
      colorScheme: "light",
      reducedMotion: "reduce",
    });
    ctx.setDefaultTimeout(10_000);
    if (options.token) {
      await ctx.addInitScript((t: string) => {
        if (!localStorage.getItem("roleplay.token")) localStorage.setItem("roleplay.token", t);
      }, options.token);
    }
    return ctx;
  }

  watch(page: Page): Page {
    PROBLEMS.set(page, this.problems);
    page.on("console", (msg) => {
      const text = msg.text();
      if (/Content Security Policy|Refused to/i.test(text) || msg.type() === "error") {
        this.problems.push(`console ${msg.type()}: ${text}`);
      }
    });
    page.on("pageerror", (err) => this.problems.push(`page error: ${err.message}`));
    return page;
  }

  async newPage(ctx: BrowserContext, hash = "#/chats"): Promise<Page> {
    const page = this.watch(await ctx.newPage());
    await page.goto(this.url(hash), { timeout: 15_000 });
    return page;
  }

  async stop(): Promise<void> {
    await this.browser?.close().catch(() => undefined);
    await this.static?.close();
    await this.proxy?.close();
    await this.server?.stop();
    await this.upstream?.close();
  }
}

/** Stores the provider key, a character and a profile, and opens a chat; returns its id. */
export async function createChat(clients: Clients, title?: string): Promise<string> {
  await clients.settings.setProviderApiKey({ apiKey: API_KEY }, RPC);
  const character = await clients.characters.createCharacter({ name: "Ada", description: "A patient guide." }, RPC);
  const profile = await clients.profiles.createUserProfile({ name: "Tester" }, RPC);
  const chat = await clients.chats.createChatSession({ characterId: character.id, userProfileId: profile.id, title }, RPC);
  return chat.id;
}

/** Waits until `n` clients follow the chat (so a reply sent next is seen from its start). */
export async function waitForWatchers(clients: Clients, chatId: string, n: number, ms = 8000): Promise<void> {
  await waitUntil(async () => (await clients.messages.getStreamStatus({ chatSessionId: chatId }, RPC)).watchers >= n, ms, `${n} watchers`);
}

/** The last assistant message of a chat, once it is no longer streaming (its final write may trail its last event). */
export async function lastStoredReply(clients: Clients, chatId: string) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = await clients.chats.listMessages({ chatSessionId: chatId, pageSize: 500 }, RPC);
    const assistant = r.messages.filter((m) => m.role === 2);
    const last = assistant[assistant.length - 1];
    if (last.status !== 2 /* STREAMING */ || Date.now() > deadline) return last;
    await delay(50);
  }
}

/** A reply long and slow enough to interrupt: multi-byte text, no markdown syntax, one paragraph. */
export function slowReply(pieces = 40): string[] {
  const words = ["Über", "🎭", "naïve", "café", "日本語", "ok", "€5", "zoë", "🙂🙃", "plain"];
  const out: string[] = [];
  for (let i = 0; i < pieces; i++) out.push(`${i === 0 ? "" : " "}${words[i % words.length]}${i}`);
  return out;
}

// --- Page helpers ----------------------------------------------------------------

/** The text of the last finished assistant message on screen. */
export async function lastReplyOnScreen(page: Page): Promise<string> {
  return ((await page.locator(".msg-assistant:not(.live) .msg-body").last().textContent()) ?? "").trim();
}

export async function liveText(page: Page): Promise<string> {
  const live = page.locator(".live .msg-body");
  if ((await live.count()) === 0) return "";
  return ((await live.first().textContent()) ?? "").trim();
}

/** Waits until a reply is streaming on the page and shows at least `chars` characters. */
export async function waitForLiveText(page: Page, chars: number, ms = 10_000): Promise<string> {
  await page.waitForFunction(
    (n) => ((document.querySelector(".live .msg-body")?.textContent ?? "").trim().length >= n),
    chars,
    { timeout: ms },
  );
  return liveText(page);
}

export async function waitReplyDone(page: Page, ms = 15_000): Promise<void> {
  try {
    await page.waitForFunction(() => document.querySelector(".chat")?.getAttribute("data-streaming") === "false" && !document.querySelector(".live"), null, { timeout: ms });
  } catch (err) {
    // Say where the page stands, for the failure message.
    const state = await page
      .evaluate(() => ({
        conn: document.querySelector(".conn")?.textContent,
        reconnects: document.querySelector(".conn")?.getAttribute("data-reconnects"),
        streaming: document.querySelector(".chat")?.getAttribute("data-streaming"),
        live: document.querySelector(".live .msg-body")?.textContent?.slice(-60),
        error: document.querySelector(".chat .error")?.textContent,
        online: navigator.onLine,
      }))
      .catch((e: unknown) => String(e));
    const problems = (PROBLEMS.get(page) ?? []).slice(-10).join("\n");
    throw new Error(`the reply did not end on the page: ${JSON.stringify(state)}\n${problems}`, { cause: err });
  }
}

export async function send(page: Page, text: string): Promise<void> {
  const before = await page.locator(".msg-user").count();
  await page.fill("#composer", text);
  await page.press("#composer", "Enter");
  // Sending (or failing to) shows at once: the pending message, then the reply.
  // A short reply can be over before the first check, so a new user message
  // in the list counts too.
  await page.waitForFunction(
    (n) =>
      document.querySelector(".chat")?.getAttribute("data-streaming") === "true" ||
      document.querySelector(".error:not([hidden])") ||
      document.querySelectorAll(".msg-user").length > n,
    before,
    { timeout: 5000 },
  );
}
