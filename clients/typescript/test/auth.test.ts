// Once a user has a token, calls need it: over gRPC and gRPC-Web, unary and
// streaming, including the resumes. The user is made with the server's CLI.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { createClients, MessageStatus, Role, sendMessage, utf8Length, watchChat } from "../src/index.js";
import { createChat, FakeUpstream, grpcClients, RoleplayServer, RPC_TIMEOUT_MS, withTimeout } from "./harness.js";

let upstream: FakeUpstream;
// Its own server and database: adding a user ends single-user mode for good.
let server: RoleplayServer;

before(async () => {
  upstream = await FakeUpstream.start();
  server = await RoleplayServer.start(upstream.baseUrl);
});

after(async () => {
  await server?.stop();
  await upstream?.close();
});

const unauthenticated = (e: unknown) => e instanceof ConnectError && e.code === Code.Unauthenticated;

async function collect(stream: AsyncIterable<string>, what: string): Promise<string> {
  let text = "";
  await withTimeout(
    (async () => {
      for await (const piece of stream) text += piece;
    })(),
    15_000,
    what,
  );
  return text;
}

test("a user's token is needed and enough, over gRPC and gRPC-Web", { timeout: 40_000 }, async () => {
  const opts = { timeoutMs: RPC_TIMEOUT_MS };
  const added = await server.cli(["users", "add", "alice", "--admin"]);
  // No assertion here shows stdout: it is the token.
  assert.equal(added.code, 0, `\`users add\` exited with ${added.code}:\n${added.stderr}`);
  const lines = added.stdout.replace(/\r?\n$/, "").split(/\r?\n/);
  const count = lines.length;
  const blank = lines.some((line) => line.trim() === "");
  assert.ok(count === 1 && !blank, `expected the token alone on stdout, got ${count} line(s)${blank ? " (blank)" : ""}`);
  const token = lines[0].trim();

  const alice = grpcClients(server.baseUrl, token).clients;
  const me = await alice.users.getCurrentUser({}, opts);
  assert.deepEqual([me.name, me.admin, me.active], ["alice", true, true]);

  // No token, or a wrong one: UNAUTHENTICATED, unary and streaming alike.
  // A server in single-user mode notices a user added by the CLI (another
  // process) within a second.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const anonymous = grpcClients(server.baseUrl).clients;
  const wrong = grpcClients(server.baseUrl, "not-a-token").clients;
  await assert.rejects(anonymous.users.getCurrentUser({}, opts), unauthenticated);
  await assert.rejects(wrong.users.getCurrentUser({}, opts), unauthenticated);
  await assert.rejects(anonymous.settings.getSettings({}, opts), unauthenticated);

  // A whole conversation as alice (an admin, so she may set the API key).
  const chatId = await createChat(alice);
  upstream.chunks = ["Hello, ", "Alice", "! Café? ", "🎭"];
  const reply = sendMessage(alice.messages, chatId, "Sing me something.");
  const text = await collect(reply, "the reply");
  assert.equal(text, "Hello, Alice! Café? 🎭");
  assert.equal(reply.outcome?.event.case, "completed");
  assert.equal(reply.offset, utf8Length(text));

  await assert.rejects(collect(sendMessage(anonymous.messages, chatId, "Let me in."), "the refusal"), unauthenticated);
  const { messages } = await alice.chats.listMessages({ chatSessionId: chatId }, opts);
  assert.deepEqual(
    messages.map((m) => [m.role, m.status, m.content]),
    [
      [Role.USER, MessageStatus.COMPLETED, "Sing me something."],
      [Role.ASSISTANT, MessageStatus.COMPLETED, text],
    ],
  );

  // Resuming by offset carries the token too.
  const resumed = watchChat(alice.messages, chatId, { resume: { streamId: reply.streamId!, offset: utf8Length("Hello, ") } });
  let tail = "";
  await withTimeout(
    (async () => {
      for await (const event of resumed.events()) {
        if (event.event.case === "delta") tail += event.event.value.text;
        if (event.event.case === "completed") break;
      }
    })(),
    10_000,
    "the resumed tail",
  );
  assert.equal(tail, "Alice! Café? 🎭");

  // gRPC-Web: the same token in the same header.
  const web = createClients(createGrpcWebTransport({ baseUrl: server.baseUrl }), { token });
  assert.equal((await web.users.getCurrentUser({}, opts)).name, "alice");
  const anonymousWeb = createClients(createGrpcWebTransport({ baseUrl: server.baseUrl }));
  await assert.rejects(anonymousWeb.users.getCurrentUser({}, opts), unauthenticated);
  upstream.chunks = ["Again", " 🎭"];
  assert.equal(await collect(sendMessage(web.messages, chatId, "Once more."), "the reply over gRPC-Web"), "Again 🎭");
});
