// A whole conversation over gRPC (HTTP/2) against the real server.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { after, before, test } from "node:test";
import {
  ChatChangeKind,
  continueReply,
  MessageStatus,
  regenerate,
  ReplyKind,
  Role,
  sendMessage,
  utf8Length,
  watchChat,
  type ChatChanged,
  type ReplyStream,
} from "../src/index.js";
import {
  createChat,
  FakeUpstream,
  grpcClients,
  RoleplayServer,
  RPC_TIMEOUT_MS,
  waitForWatchers,
  withTimeout,
} from "./harness.js";

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

// --- Swipes, continue and editing ----------------------------------------------

/** The whole text of a reply, within a deadline. */
async function textOf(stream: ReplyStream, what = "the reply"): Promise<string> {
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

/** The stored message of a completed reply. */
function completedMessage(stream: ReplyStream) {
  const outcome = stream.outcome?.event;
  assert.equal(outcome?.case, "completed");
  return outcome.case === "completed" ? outcome.value.message : undefined;
}

type ChatMessage = { role: string; content: string };
function lastPrompt(): ChatMessage[] {
  return (upstream.requests.at(-1) as { messages: ChatMessage[] }).messages;
}

const opts = { timeoutMs: RPC_TIMEOUT_MS };

test("swipes: regenerate twice, select the first, list the alternatives", { timeout: 30_000 }, async () => {
  const { clients } = grpcClients(server.baseUrl);
  const chatId = await createChat(clients);
  upstream.delayMs = 0;

  upstream.chunks = ["First ", "answer."];
  const first = sendMessage(clients.messages, chatId, "Sing me something.");
  assert.equal(await textOf(first), "First answer.");
  assert.equal(first.started?.kind, ReplyKind.SEND);
  const messageId = first.started!.assistantMessageId;
  assert.equal(completedMessage(first)?.id, messageId);

  const alternatives: [string, string | undefined][] = [["First answer.", first.streamId]];
  for (const [count, chunks] of [
    [2, ["Second ", "answer, café."]],
    [3, ["Third ", "answer 🎭"]],
  ] as const) {
    upstream.chunks = [...chunks];
    const reply = regenerate(clients.messages, chatId);
    const text = await textOf(reply, `alternative ${count}`);
    assert.equal(text, chunks.join(""));
    assert.equal(reply.offset, utf8Length(text));
    assert.equal(reply.started?.kind, ReplyKind.REGENERATE);
    assert.equal(reply.started?.assistantMessageId, messageId);
    assert.equal(reply.started?.alternativeIndex, count - 1);
    assert.equal(reply.started?.alternativeCount, count);
    assert.equal(reply.started?.continuesFrom, 0n);
    const stored = completedMessage(reply);
    assert.deepEqual(
      [stored?.id, stored?.content, stored?.alternativeIndex, stored?.alternativeCount],
      [messageId, text, count - 1, count],
    );
    // Asked again from the user's message: no earlier alternative is in the prompt.
    assert.deepEqual(lastPrompt().at(-1), { role: "user", content: "Sing me something." });
    alternatives.push([text, reply.streamId]);
  }

  const selected = await clients.messages.selectAlternative({ messageId, index: 0 }, opts);
  assert.deepEqual(
    [selected.id, selected.content, selected.alternativeIndex, selected.alternativeCount],
    [messageId, "First answer.", 0, 3],
  );

  const listed = await clients.messages.listAlternatives({ messageId }, opts);
  assert.equal(listed.alternatives.length, 3);
  assert.deepEqual(
    listed.alternatives.map((a) => [a.content, a.streamId]),
    alternatives,
  );
  assert.deepEqual(
    listed.alternatives.map((a) => [a.alternativeIndex, a.status]),
    [
      [0, MessageStatus.COMPLETED],
      [1, MessageStatus.COMPLETED],
      [2, MessageStatus.COMPLETED],
    ],
  );
  assert.equal(listed.selectedIndex, 0);

  const { messages } = await clients.chats.listMessages({ chatSessionId: chatId }, opts);
  assert.deepEqual(
    messages.map((m) => [m.role, m.content, m.status, m.alternativeIndex, m.alternativeCount]),
    [
      [Role.USER, "Sing me something.", MessageStatus.COMPLETED, 0, 1],
      [Role.ASSISTANT, "First answer.", MessageStatus.COMPLETED, 0, 3],
    ],
  );

  // Out of range: refused.
  await assert.rejects(
    clients.messages.selectAlternative({ messageId, index: 3 }, opts),
    (err) => err instanceof ConnectError && err.code === Code.InvalidArgument,
  );

  // The story goes on from the selected alternative.
  upstream.chunks = ["Fourth."];
  assert.equal(await textOf(sendMessage(clients.messages, chatId, "And then?")), "Fourth.");
  assert.deepEqual(lastPrompt().slice(-2), [
    { role: "assistant", content: "First answer." },
    { role: "user", content: "And then?" },
  ]);
});

test("continueReply appends to the last reply; the stream has the new text", { timeout: 20_000 }, async () => {
  const { clients } = grpcClients(server.baseUrl);
  const chatId = await createChat(clients);
  upstream.delayMs = 0;
  upstream.chunks = ["Once upon ", "a time"];
  const first = sendMessage(clients.messages, chatId, "Tell me a story.");
  const old = await textOf(first);
  const messageId = first.started!.assistantMessageId;

  upstream.chunks = [", a bard ", "sang of café 🎭."];
  const more = continueReply(clients.messages, chatId);
  const added = await textOf(more);
  assert.equal(added, ", a bard sang of café 🎭.");
  assert.equal(more.started?.kind, ReplyKind.CONTINUE);
  assert.equal(more.started?.assistantMessageId, messageId);
  assert.equal(more.started?.continuesFrom, BigInt(utf8Length(old)));
  assert.equal(more.offset, utf8Length(old + added));
  assert.equal(more.reconnects, 0);
  const stored = completedMessage(more);
  assert.deepEqual([stored?.id, stored?.content], [messageId, old + added]);

  const { messages } = await clients.chats.listMessages({ chatSessionId: chatId }, opts);
  assert.deepEqual(
    messages.map((m) => [m.role, m.content, m.status, m.alternativeCount]),
    [
      [Role.USER, "Tell me a story.", MessageStatus.COMPLETED, 1],
      [Role.ASSISTANT, "Once upon a time, a bard sang of café 🎭.", MessageStatus.COMPLETED, 1],
    ],
  );
});

test("edit, fork, rewind and delete", { timeout: 20_000 }, async () => {
  const { clients } = grpcClients(server.baseUrl);
  const chatId = await createChat(clients);
  const chat = await clients.chats.getChatSession({ id: chatId }, opts);
  upstream.delayMs = 0;
  for (const [content, answer] of [
    ["First.", "One."],
    ["Second.", "Two."],
  ]) {
    upstream.chunks = [answer];
    assert.equal(await textOf(sendMessage(clients.messages, chatId, content)), answer);
  }
  const list = async (id: string) => (await clients.chats.listMessages({ chatSessionId: id }, opts)).messages;
  const [user1, reply1, user2, reply2] = await list(chatId);

  const edited = await clients.messages.editMessage({ messageId: user1.id, content: "First, edited." }, opts);
  assert.deepEqual([edited.id, edited.role, edited.content], [user1.id, Role.USER, "First, edited."]);
  assert.ok(edited.editedAt, "editedAt is set");
  await assert.rejects(
    clients.messages.editMessage({ messageId: user1.id, content: "  " }, opts),
    (err) => err instanceof ConnectError && err.code === Code.InvalidArgument,
  );

  const fork = await clients.chats.forkChatSession({ chatSessionId: chatId, messageId: reply1.id }, opts);
  assert.notEqual(fork.id, chatId);
  assert.deepEqual([fork.characterId, fork.userProfileId], [chat.characterId, chat.userProfileId]);
  assert.equal(fork.title, `${chat.title} (fork)`);
  assert.deepEqual(
    (await list(fork.id)).map((m) => [m.role, m.content]),
    [
      [Role.USER, "First, edited."],
      [Role.ASSISTANT, "One."],
    ],
  );

  const rewound = await clients.messages.rewindChatSession({ chatSessionId: chatId, messageId: user2.id }, opts);
  assert.deepEqual(rewound.deletedMessageIds, [reply2.id]);
  assert.deepEqual(
    (await list(chatId)).map((m) => m.id),
    [user1.id, reply1.id, user2.id],
  );

  // The chat ends with a user message: nothing to continue, but regenerate answers it.
  await assert.rejects(
    textOf(continueReply(clients.messages, chatId)),
    (err) => err instanceof ConnectError && err.code === Code.FailedPrecondition,
  );
  upstream.chunks = ["Two, again."];
  const answer = regenerate(clients.messages, chatId);
  assert.equal(await textOf(answer), "Two, again.");
  assert.equal(answer.started?.userMessageId, user2.id);
  assert.deepEqual([answer.started?.alternativeIndex, answer.started?.alternativeCount], [0, 1]);

  await clients.messages.deleteMessage({ messageId: user1.id }, opts);
  assert.deepEqual(
    (await list(chatId)).map((m) => m.content),
    ["One.", "Second.", "Two, again."],
  );
  // The fork is a copy: unchanged.
  assert.deepEqual(
    (await list(fork.id)).map((m) => m.content),
    ["First, edited.", "One."],
  );
});

test("watchChat's events include ChatChanged after a selection", { timeout: 20_000 }, async () => {
  const { clients } = grpcClients(server.baseUrl);
  const chatId = await createChat(clients);
  upstream.delayMs = 0;
  upstream.chunks = ["One."];
  const first = sendMessage(clients.messages, chatId, "Hi.");
  await textOf(first);
  upstream.chunks = ["Two."];
  await textOf(regenerate(clients.messages, chatId));
  const messageId = first.started!.assistantMessageId;

  const stop = new AbortController();
  const watcher = watchChat(clients.messages, chatId, { signal: stop.signal });
  const changed = (async (): Promise<ChatChanged | undefined> => {
    for await (const event of watcher.events()) {
      if (event.event.case === "chatChanged") return event.event.value;
    }
    return undefined;
  })();
  try {
    await waitForWatchers(clients, chatId, 1);
    await clients.messages.selectAlternative({ messageId, index: 0 }, opts);
    const change = await withTimeout(changed, 10_000, "ChatChanged");
    assert.equal(change?.chatSessionId, chatId);
    assert.equal(change?.kind, ChatChangeKind.SELECTED);
    assert.deepEqual(change?.messageIds, [messageId]);
  } finally {
    stop.abort();
    await changed.catch(() => undefined);
  }
});
