// Replies followed across forced disconnects arrive exactly once.
//
// The client talks to the server through a TCP proxy in this process; the
// test cuts every proxied connection (TCP reset) in the middle of a slow
// reply, and the helpers reconnect through the same proxy and resume by
// UTF-8 byte offset.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import {
  continueReply,
  createClients,
  MessageStatus,
  regenerate,
  Role,
  sendMessage,
  utf8Length,
  watchChat,
  type ReconnectInfo,
} from "../src/index.js";
import {
  createChat,
  FakeUpstream,
  grpcClients,
  RoleplayServer,
  RPC_TIMEOUT_MS,
  TcpProxy,
  waitForWatchers,
  withTimeout,
} from "./harness.js";

/** 40 chunks, 50 ms apart, with 2-, 3- and 4-byte UTF-8 characters. */
const CHUNKS = Array.from({ length: 40 }, (_, i) => [`é${i}`, " 🎭", " café", "—", ` n°${i}`][i % 5]);
const EXPECTED = CHUNKS.join("");
const BACKOFF = { initialMs: 50, maxMs: 500, maxAttempts: 10 };

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

function describe(info: ReconnectInfo): string {
  return `reconnect ${info.attempt} after ${Math.round(info.delayMs)} ms at byte ${info.offset}: ${info.error.message}`;
}

async function assertStored(chatId: string, userText: string): Promise<void> {
  const { clients } = grpcClients(server.baseUrl);
  const { messages } = await clients.chats.listMessages({ chatSessionId: chatId }, { timeoutMs: RPC_TIMEOUT_MS });
  assert.deepEqual(
    messages.map((m) => [m.role, m.status, m.content]),
    [
      [Role.USER, MessageStatus.COMPLETED, userText],
      [Role.ASSISTANT, MessageStatus.COMPLETED, EXPECTED],
    ],
  );
}

test("sendMessage over gRPC survives two cuts mid-reply", { timeout: 20_000 }, async (t) => {
  const direct = grpcClients(server.baseUrl).clients;
  const chatId = await createChat(direct);
  const viaProxy = grpcClients(proxy.baseUrl).clients;
  const reconnects: ReconnectInfo[] = [];
  const total = utf8Length(EXPECTED);
  const acceptedBefore = proxy.accepted;

  const reply = sendMessage(viaProxy.messages, chatId, "Tell me a long story.", {
    backoff: BACKOFF,
    onReconnect: (info) => {
      reconnects.push(info);
      t.diagnostic(describe(info));
    },
  });
  let received = "";
  const cutsAt = [Math.floor(total / 4), Math.floor((2 * total) / 3)];
  await withTimeout(
    (async () => {
      for await (const piece of reply) {
        received += piece;
        if (cutsAt.length > 0 && utf8Length(received) >= cutsAt[0]) {
          cutsAt.shift();
          assert.ok(proxy.cut() >= 1, "a connection to cut");
        }
      }
    })(),
    15_000,
    "the reply across cuts",
  );

  assert.equal(received, EXPECTED);
  assert.equal(reply.offset, total);
  assert.equal(reply.outcome?.event.case, "completed");
  assert.equal(cutsAt.length, 0, "both cuts happened mid-reply");
  assert.ok(reply.reconnects >= 2, `reconnected ${reply.reconnects} times`);
  assert.ok(proxy.accepted - acceptedBefore >= 3, "the resumes went through the proxy");
  for (const preamble of proxy.preambles.slice(acceptedBefore)) assert.match(preamble, /^PRI \* HTTP\/2\.0/);
  for (const info of reconnects) assert.equal(info.streamId, reply.streamId);
  await assertStored(chatId, "Tell me a long story.");
});

test("watchChat over gRPC follows a reply across a cut, then the next reply", { timeout: 25_000 }, async (t) => {
  const direct = grpcClients(server.baseUrl).clients;
  const chatId = await createChat(direct);
  const viaProxy = grpcClients(proxy.baseUrl).clients;
  const stop = new AbortController();
  const watcher = watchChat(viaProxy.messages, chatId, {
    backoff: BACKOFF,
    signal: stop.signal,
    onReconnect: (info) => t.diagnostic(describe(info)),
  });
  const replies: string[] = [];
  let current = "";
  let cut = false;
  const watching = (async () => {
    for await (const event of watcher.events()) {
      const e = event.event;
      if (e.case === "started") current = "";
      if (e.case === "delta") {
        current += e.value.text;
        if (!cut && utf8Length(current) >= utf8Length(EXPECTED) / 2) {
          cut = true;
          assert.ok(proxy.cut() >= 1, "a connection to cut");
        }
      }
      if (e.case === "completed") {
        replies.push(current);
        if (replies.length === 2) return;
      }
    }
  })();
  try {
    await waitForWatchers(direct, chatId, 1);
    // The sender talks to the server directly; only the watcher's connection is cut.
    for (const content of ["First question.", "Second question."]) {
      let sent = "";
      for await (const piece of sendMessage(direct.messages, chatId, content)) sent += piece;
      assert.equal(sent, EXPECTED);
      if (content === "First question.") {
        // The watcher reconnects after the cut; wait until it is subscribed again.
        await waitForWatchers(direct, chatId, 1);
      }
    }
    await withTimeout(watching, 10_000, "the watcher to see both replies");
  } finally {
    stop.abort();
    await watching.catch(() => undefined);
  }
  assert.ok(cut, "the cut happened mid-reply");
  assert.deepEqual(replies, [EXPECTED, EXPECTED]);
  assert.ok(watcher.reconnects >= 1, `reconnected ${watcher.reconnects} times`);
});

test("sendMessage over gRPC-Web survives a cut mid-reply", { timeout: 20_000 }, async (t) => {
  const direct = grpcClients(server.baseUrl).clients;
  const chatId = await createChat(direct);
  const viaProxy = createClients(createGrpcWebTransport({ baseUrl: proxy.baseUrl }));
  const total = utf8Length(EXPECTED);
  const acceptedBefore = proxy.accepted;

  const reply = sendMessage(viaProxy.messages, chatId, "Once more, over gRPC-Web.", {
    backoff: BACKOFF,
    onReconnect: (info) => t.diagnostic(describe(info)),
  });
  let received = "";
  let cut = false;
  await withTimeout(
    (async () => {
      for await (const piece of reply) {
        received += piece;
        if (!cut && utf8Length(received) >= total / 3) {
          cut = true;
          assert.ok(proxy.cut() >= 1, "a connection to cut");
        }
      }
    })(),
    15_000,
    "the reply across a cut",
  );
  assert.equal(received, EXPECTED);
  assert.equal(reply.outcome?.event.case, "completed");
  assert.ok(reply.reconnects >= 1, `reconnected ${reply.reconnects} times`);
  // Every connection the client made was HTTP/1.1 carrying gRPC-Web.
  const preambles = proxy.preambles.slice(acceptedBefore);
  assert.ok(preambles.length >= 2, "the resume went through the proxy");
  for (const preamble of preambles) {
    assert.match(preamble, /^POST \/roleplay\.v1\.MessageService\/\w+ HTTP\/1\.1\r\n/);
  }
  await assertStored(chatId, "Once more, over gRPC-Web.");
});

/** Sends a message whose reply is `answer`, quickly, on a direct connection; the slow CHUNKS come back after. */
async function quickReply(chatId: string, content: string, answer: string[]): Promise<string> {
  const direct = grpcClients(server.baseUrl).clients;
  upstream.chunks = answer;
  upstream.delayMs = 0;
  try {
    let text = "";
    for await (const piece of sendMessage(direct.messages, chatId, content)) text += piece;
    return text;
  } finally {
    upstream.chunks = CHUNKS;
    upstream.delayMs = 50;
  }
}

test("regenerate over gRPC survives a cut mid-reply", { timeout: 20_000 }, async (t) => {
  const direct = grpcClients(server.baseUrl).clients;
  const chatId = await createChat(direct);
  assert.equal(await quickReply(chatId, "Tell me a long story.", ["A first try."]), "A first try.");
  const viaProxy = grpcClients(proxy.baseUrl).clients;
  const total = utf8Length(EXPECTED);

  const reply = regenerate(viaProxy.messages, chatId, {
    backoff: BACKOFF,
    onReconnect: (info) => t.diagnostic(describe(info)),
  });
  let received = "";
  let cut = false;
  await withTimeout(
    (async () => {
      for await (const piece of reply) {
        received += piece;
        if (!cut && utf8Length(received) >= total / 3) {
          cut = true;
          assert.ok(proxy.cut() >= 1, "a connection to cut");
        }
      }
    })(),
    15_000,
    "the new alternative across a cut",
  );
  assert.equal(received, EXPECTED);
  assert.ok(cut, "the cut happened mid-reply");
  assert.ok(reply.reconnects >= 1, `reconnected ${reply.reconnects} times`);
  assert.deepEqual([reply.started?.alternativeIndex, reply.started?.alternativeCount], [1, 2]);
  assert.equal(reply.outcome?.event.case, "completed");
  await assertStored(chatId, "Tell me a long story.");
});

test("continueReply over gRPC survives two cuts, resuming by offsets into the whole message", { timeout: 20_000 }, async (t) => {
  const direct = grpcClients(server.baseUrl).clients;
  const chatId = await createChat(direct);
  const old = await quickReply(chatId, "Begin.", ["Prologue: ", "café 🎭. "]);
  const viaProxy = grpcClients(proxy.baseUrl).clients;
  const reconnects: ReconnectInfo[] = [];
  const total = utf8Length(EXPECTED);

  const reply = continueReply(viaProxy.messages, chatId, {
    backoff: BACKOFF,
    onReconnect: (info) => {
      reconnects.push(info);
      t.diagnostic(describe(info));
    },
  });
  let received = "";
  const cutsAt = [Math.floor(total / 4), Math.floor((2 * total) / 3)];
  await withTimeout(
    (async () => {
      for await (const piece of reply) {
        received += piece;
        if (cutsAt.length > 0 && utf8Length(received) >= cutsAt[0]) {
          cutsAt.shift();
          assert.ok(proxy.cut() >= 1, "a connection to cut");
        }
      }
    })(),
    15_000,
    "the continuation across cuts",
  );

  // The stream yields the new text, each byte once; the offsets count the whole message.
  assert.equal(received, EXPECTED);
  assert.equal(cutsAt.length, 0, "both cuts happened mid-reply");
  assert.ok(reply.reconnects >= 2, `reconnected ${reply.reconnects} times`);
  assert.equal(reply.started?.continuesFrom, BigInt(utf8Length(old)));
  assert.equal(reply.offset, utf8Length(old + EXPECTED));
  for (const info of reconnects) assert.ok(info.offset >= utf8Length(old), `resumed at byte ${info.offset}`);
  const outcome = reply.outcome?.event;
  assert.equal(outcome?.case, "completed");
  assert.equal(outcome.case === "completed" ? outcome.value.message?.content : undefined, old + EXPECTED);

  const { messages } = await direct.chats.listMessages({ chatSessionId: chatId }, { timeoutMs: RPC_TIMEOUT_MS });
  assert.deepEqual(
    messages.map((m) => [m.role, m.status, m.content]),
    [
      [Role.USER, MessageStatus.COMPLETED, "Begin."],
      [Role.ASSISTANT, MessageStatus.COMPLETED, old + EXPECTED],
    ],
  );
});
