// examples/chat.ts prints a reply live and survives a cut connection.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { utf8Length } from "../src/index.js";
import {
  createChat,
  FakeUpstream,
  grpcClients,
  PACKAGE_DIR,
  RoleplayServer,
  TcpProxy,
  waitUntil,
  withTimeout,
} from "./harness.js";

const CHUNKS = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? `🎭${i} ` : `é${i} `));
const EXPECTED = CHUNKS.join("");

let upstream: FakeUpstream;
let server: RoleplayServer;
let proxy: TcpProxy;

before(async () => {
  upstream = await FakeUpstream.start();
  upstream.chunks = CHUNKS;
  upstream.delayMs = 50;
  server = await RoleplayServer.start(upstream.baseUrl);
  proxy = await TcpProxy.start(server.port);
});

after(async () => {
  await proxy?.close();
  await server?.stop();
  await upstream?.close();
});

test("examples/chat.js prints the whole reply once across a cut", { timeout: 20_000 }, async () => {
  const chatId = await createChat(grpcClients(server.baseUrl).clients);
  const child = spawn(
    process.execPath,
    [join(PACKAGE_DIR, "dist", "examples", "chat.js"), "--url", proxy.baseUrl, "--chat", chatId, "Tell", "me"],
    // Single-user mode: no token, whatever this environment holds.
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ROLEPLAY_TOKEN: "" } },
  );
  const stdout: Buffer[] = [];
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => stdout.push(b));
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  try {
    const bytes = () => stdout.reduce((n, b) => n + b.length, 0);
    await waitUntil(() => bytes() >= utf8Length(EXPECTED) / 3, 10_000, "a third of the reply on stdout");
    assert.ok(proxy.cut() >= 1, "a connection to cut");
    const code = await withTimeout(exited, 15_000, "the example to finish");
    assert.equal(code, 0, `exit code ${code}; stderr:\n${stderr}`);
  } finally {
    child.kill("SIGKILL");
  }
  assert.equal(Buffer.concat(stdout).toString("utf8"), EXPECTED + "\n");
  assert.match(stderr, /\[connection lost at byte \d+/);
});

test("examples/chat.js --swipes 2 --select 0 regenerates twice, then keeps the first", { timeout: 20_000 }, async () => {
  const { clients } = grpcClients(server.baseUrl);
  const chatId = await createChat(clients);
  upstream.delayMs = 0;
  const child = spawn(
    process.execPath,
    [
      join(PACKAGE_DIR, "dist", "examples", "chat.js"),
      "--url",
      server.baseUrl,
      "--chat",
      chatId,
      "--swipes",
      "2",
      "--select",
      "0",
      "Sing",
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ROLEPLAY_TOKEN: "" } },
  );
  const stdout: Buffer[] = [];
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => stdout.push(b));
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  try {
    const code = await withTimeout(exited, 15_000, "the example to finish");
    assert.equal(code, 0, `exit code ${code}; stderr:\n${stderr}`);
  } finally {
    child.kill("SIGKILL");
    upstream.delayMs = 50;
  }
  assert.equal(Buffer.concat(stdout).toString("utf8"), `${EXPECTED}\n`.repeat(3));
  assert.match(stderr, /\[alternative 2 of 2\]/);
  assert.match(stderr, /\[alternative 3 of 3\]/);
  assert.match(stderr, /\[kept alternative 1 of 3: /);
  const { messages } = await clients.chats.listMessages({ chatSessionId: chatId }, { timeoutMs: 10_000 });
  assert.deepEqual(
    messages.map((m) => [m.alternativeIndex, m.alternativeCount]),
    [
      [0, 1],
      [0, 3],
    ],
  );
});
