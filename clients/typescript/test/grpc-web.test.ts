// The same conversation through gRPC-Web (HTTP/1.1 fetch, as a browser sends it).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { createClients, MessageStatus, Role, sendMessage, utf8Length, watchChat } from "../src/index.js";
import {
  createChat,
  FakeUpstream,
  RoleplayServer,
  RPC_TIMEOUT_MS,
  WEB_ORIGIN,
  waitForWatchers,
  withTimeout,
} from "./harness.js";

/** Sends `Origin` as a page on that origin would. */
function fromOrigin(origin: string): Interceptor {
  return (next) => async (req) => {
    req.header.set("origin", origin);
    return next(req);
  };
}

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

test("a conversation over gRPC-Web (HTTP/1.1)", { timeout: 20_000 }, async () => {
  // fetch (undici) speaks HTTP/1.1 to a plain http:// URL; the calls come
  // from the front end's origin, which the server lists.
  const transport = createGrpcWebTransport({ baseUrl: server.baseUrl, interceptors: [fromOrigin(WEB_ORIGIN)] });
  const clients = createClients(transport);
  const chatId = await createChat(clients);
  upstream.chunks = ["Über", " the ", "stage", " 🎭", " — bravo", "!"];
  upstream.delayMs = 20;

  // A watcher over gRPC-Web sees the reply as it is generated, too.
  const stopWatching = new AbortController();
  const watcher = watchChat(clients.messages, chatId, { signal: stopWatching.signal });
  const watched: string[] = [];
  const watching = (async () => {
    for await (const event of watcher.events()) {
      if (event.event.case === "delta") watched.push(event.event.value.text);
      if (event.event.case === "completed") return;
    }
  })();

  const reply = sendMessage(clients.messages, chatId, "Tell me about the stage.");
  const pieces: string[] = [];
  let firstPieceAt = 0;
  let lastPieceAt = 0;
  try {
    await waitForWatchers(clients, chatId, 1);
    await withTimeout(
      (async () => {
        for await (const piece of reply) {
          if (pieces.length === 0) firstPieceAt = Date.now();
          lastPieceAt = Date.now();
          pieces.push(piece);
        }
      })(),
      15_000,
      "the reply over gRPC-Web",
    );
    await withTimeout(watching, 10_000, "the watcher over gRPC-Web");
  } finally {
    stopWatching.abort();
    await watching.catch(() => undefined);
  }
  const text = pieces.join("");
  assert.equal(text, upstream.reply());
  assert.equal(reply.outcome?.event.case, "completed");
  assert.equal(reply.offset, utf8Length(text));
  // Server-streamed: the pieces arrived over time, not in one buffered response.
  assert.ok(pieces.length >= 2, `expected several pieces, got ${JSON.stringify(pieces)}`);
  assert.ok(lastPieceAt - firstPieceAt >= 40, `pieces arrived within ${lastPieceAt - firstPieceAt} ms`);
  assert.equal(watched.join(""), text);

  const { messages } = await clients.chats.listMessages({ chatSessionId: chatId }, { timeoutMs: RPC_TIMEOUT_MS });
  assert.deepEqual(
    messages.map((m) => [m.role, m.status, m.content]),
    [
      [Role.USER, MessageStatus.COMPLETED, "Tell me about the stage."],
      [Role.ASSISTANT, MessageStatus.COMPLETED, text],
    ],
  );
});

test("a page from an origin the server does not list is refused", { timeout: 20_000 }, async () => {
  const transport = createGrpcWebTransport({
    baseUrl: server.baseUrl,
    interceptors: [fromOrigin("https://evil.example")],
  });
  const clients = createClients(transport);
  await assert.rejects(
    clients.characters.listCharacters({}, { timeoutMs: RPC_TIMEOUT_MS }),
    (err: unknown) => err instanceof ConnectError && err.code === Code.PermissionDenied,
  );
});
