// A whole conversation over gRPC (HTTP/2) against the real server.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { after, before, test } from "node:test";
import { MessageStatus, Role, sendMessage, utf8Length, watchChat } from "../src/index.js";
import { createChat, FakeUpstream, grpcClients, RoleplayServer, RPC_TIMEOUT_MS, withTimeout } from "./harness.js";

let upstream: FakeUpstream;
let server: RoleplayServer;

before(async () => {
  upstream = await FakeUpstream.start();
  server = await RoleplayServer.start(upstream.baseUrl);
});

after(async () => {
  await server?.stop();
  await upstream?.close();
});

test("a conversation over gRPC (HTTP/2)", { timeout: 20_000 }, async () => {
  const { clients } = grpcClients(server.baseUrl);
  const chatId = await createChat(clients);
  upstream.chunks = ["Bonjour", ", ", "ça va", " ? ", "🎭"];
  upstream.delayMs = 5;

  const reply = sendMessage(clients.messages, chatId, "Hello, Ada!");
  const pieces: string[] = [];
  await withTimeout(
    (async () => {
      for await (const piece of reply) pieces.push(piece);
    })(),
    15_000,
    "the reply",
  );
  const text = pieces.join("");
  assert.equal(text, upstream.reply());
  assert.equal(reply.offset, utf8Length(text));
  assert.equal(reply.reconnects, 0);
  assert.equal(reply.outcome?.event.case, "completed");
  const completed = reply.outcome!.event.value as { message?: { content: string; status: MessageStatus } };
  assert.equal(completed.message?.content, text);

  const { messages } = await clients.chats.listMessages({ chatSessionId: chatId }, { timeoutMs: RPC_TIMEOUT_MS });
  assert.deepEqual(
    messages.map((m) => [m.role, m.status, m.content]),
    [
      [Role.USER, MessageStatus.COMPLETED, "Hello, Ada!"],
      [Role.ASSISTANT, MessageStatus.COMPLETED, text],
    ],
  );
  assert.equal(messages[1].streamId, reply.streamId);

  // A finished reply resumed from the middle: the missing tail, then its end.
  const half = utf8Length("Bonjour, ");
  const resumed = watchChat(clients.messages, chatId, { resume: { streamId: reply.streamId!, offset: half } });
  const events = resumed.events();
  const tail: string[] = [];
  await withTimeout(
    (async () => {
      for await (const event of events) {
        if (event.event.case === "delta") tail.push(event.event.value.text);
        if (event.event.case === "completed") break;
      }
    })(),
    10_000,
    "the resumed tail",
  );
  assert.equal(tail.join(""), "ça va ? 🎭");
  assert.equal(resumed.offset, utf8Length(text));
});

test("errors before the reply starts are thrown, not retried", { timeout: 10_000 }, async () => {
  const { clients } = grpcClients(server.baseUrl);
  const reply = sendMessage(clients.messages, randomUUID(), "Hello?");
  await assert.rejects(
    withTimeout(
      (async () => {
        for await (const _ of reply) assert.fail("no reply expected");
      })(),
      5_000,
      "the error",
    ),
    (err) => err instanceof ConnectError && err.code === Code.NotFound,
  );
  assert.equal(reply.reconnects, 0);
});
