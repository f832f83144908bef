// The helpers against a scripted in-memory MessageService: offsets, resumes,
// giving up, and what is never retried. No server, no network.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import {
  ChatChangeKind,
  continueReply,
  createClients,
  GenerationEventSchema,
  MessageSchema,
  MessageService,
  MessageStatus,
  ProtocolError,
  ReconnectFailedError,
  regenerate,
  ReplyKind,
  sendMessage,
  tokenInterceptor,
  utf8Length,
  watchChat,
  withToken,
  type GenerationEvent,
  type StartedSchema,
  type SubscribeChatSessionRequest,
} from "../src/index.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { withTimeout } from "./harness.js";

const started = (streamId: string, fields: MessageInitShape<typeof StartedSchema> = {}): GenerationEvent =>
  create(GenerationEventSchema, { event: { case: "started", value: { ...fields, streamId, chatSessionId: "c" } } });
const delta = (streamId: string, offset: number, text: string): GenerationEvent =>
  create(GenerationEventSchema, { event: { case: "delta", value: { streamId, offset: BigInt(offset), text } } });
const completed = (streamId: string, content: string): GenerationEvent =>
  create(GenerationEventSchema, {
    event: {
      case: "completed",
      value: { streamId, message: create(MessageSchema, { content, status: MessageStatus.COMPLETED }) },
    },
  });
const cancelled = (streamId: string, partialLength: number): GenerationEvent =>
  create(GenerationEventSchema, { event: { case: "cancelled", value: { streamId, partialLength: BigInt(partialLength) } } });
const heartbeat = (): GenerationEvent => create(GenerationEventSchema, { event: { case: "heartbeat", value: {} } });

type Script = (req: SubscribeChatSessionRequest, call: number) => AsyncIterable<GenerationEvent>;

function scripted(send: () => AsyncIterable<GenerationEvent>, subscribe: Script) {
  let calls = 0;
  const requests: SubscribeChatSessionRequest[] = [];
  // The first call of each stream: "add", "regenerate" or "continue".
  const opened: string[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(MessageService, {
      addUserMessageStreaming: () => (opened.push("add"), send()),
      regenerateReply: () => (opened.push("regenerate"), send()),
      continueReply: () => (opened.push("continue"), send()),
      subscribeChatSession: (req) => {
        requests.push(req);
        return subscribe(req, ++calls);
      },
    });
  });
  return { client: createClient(MessageService, transport), requests, opened };
}

async function collect(stream: AsyncIterable<string>): Promise<string> {
  let text = "";
  await withTimeout(
    (async () => {
      for await (const piece of stream) text += piece;
    })(),
    5_000,
    "the stream",
  );
  return text;
}

const FAST = { initialMs: 1, maxMs: 5, maxAttempts: 3 };

test("sendMessage resumes after a drop from the bytes received", async () => {
  const { client, requests } = scripted(
    async function* () {
      yield started("s1");
      yield delta("s1", 0, "é");
      throw new ConnectError("connection reset", Code.Unavailable);
    },
    async function* (req) {
      assert.equal(req.resume?.streamId, "s1");
      yield started("s1");
      yield delta("s1", Number(req.resume!.offset), "🎭!");
      yield completed("s1", "é🎭!");
    },
  );
  const reply = sendMessage(client, "c", "hi", { backoff: FAST });
  assert.equal(await collect(reply), "é🎭!");
  assert.equal(requests.length, 1);
  assert.equal(requests[0].resume?.offset, 2n); // "é" is 2 bytes
  assert.equal(reply.reconnects, 1);
  assert.equal(reply.offset, utf8Length("é🎭!"));
  assert.equal(reply.outcome?.event.case, "completed");
});

test("a delta that does not start at the bytes received is a ProtocolError", async () => {
  const { client } = scripted(
    async function* () {
      yield started("s1");
      yield delta("s1", 0, "ab");
      yield delta("s1", 3, "c"); // a gap of one byte
    },
    async function* () {},
  );
  await assert.rejects(collect(sendMessage(client, "c", "hi")), ProtocolError);

  const overlap = scripted(
    async function* () {
      yield started("s1");
      yield delta("s1", 0, "ab");
      yield delta("s1", 1, "bc");
    },
    async function* () {},
  );
  await assert.rejects(collect(sendMessage(overlap.client, "c", "hi")), /overlap/);
});

test("a completed reply whose length differs from the bytes received is a ProtocolError", async () => {
  const { client } = scripted(
    async function* () {
      yield started("s1");
      yield delta("s1", 0, "ab");
      yield completed("s1", "abc");
    },
    async function* () {},
  );
  await assert.rejects(collect(sendMessage(client, "c", "hi")), /ended with 3 bytes but 2/);
});

test("a drop before Started is thrown, never retried (the message is not sent twice)", async () => {
  const { client, requests } = scripted(
    async function* () {
      throw new ConnectError("connection reset", Code.Unavailable);
    },
    async function* () {},
  );
  await assert.rejects(collect(sendMessage(client, "c", "hi", { backoff: FAST })), (e) => {
    return e instanceof ConnectError && e.code === Code.Unavailable;
  });
  assert.equal(requests.length, 0);
});

test("gives up after maxAttempts failed reconnections in a row, saying where the reply stands", async () => {
  const { client, requests } = scripted(
    async function* () {
      yield started("s1");
      yield delta("s1", 0, "abc");
      throw new ConnectError("reset", Code.Aborted);
    },
    async function* () {
      throw new ConnectError("refused", Code.Unavailable);
    },
  );
  await assert.rejects(collect(sendMessage(client, "c", "hi", { backoff: FAST })), (e) => {
    assert.ok(e instanceof ReconnectFailedError);
    assert.equal(e.streamId, "s1");
    assert.equal(e.offset, 3);
    assert.ok(e.cause instanceof ConnectError);
    return true;
  });
  assert.equal(requests.length, FAST.maxAttempts);
});

test("errors the server answers on a resume are thrown, not retried", async () => {
  const { client, requests } = scripted(
    async function* () {},
    async function* () {
      throw new ConnectError("unknown stream", Code.FailedPrecondition);
    },
  );
  const stream = watchChat(client, "c", { resume: { streamId: "gone", offset: 7 }, backoff: FAST });
  await assert.rejects(collect(stream), (e) => e instanceof ConnectError && e.code === Code.FailedPrecondition);
  assert.equal(requests.length, 1);
  assert.equal(requests[0].resume?.offset, 7n);
});

test("watchChat follows later replies and resubscribes when a stream ends", async () => {
  const { client, requests } = scripted(
    async function* () {},
    async function* (req, call) {
      if (call === 1) {
        assert.equal(req.resume, undefined);
        yield heartbeat();
        yield started("s1");
        yield delta("s1", 0, "one");
        yield completed("s1", "one");
        return; // the server closed the stream: resubscribe from s1's end
      }
      assert.equal(req.resume?.streamId, "s1");
      assert.equal(req.resume?.offset, 3n);
      yield started("s1"); // the resume of an ended reply repeats its end
      yield completed("s1", "one");
      yield started("s2");
      yield delta("s2", 0, "two");
      yield completed("s2", "two");
      await new Promise(() => {}); // idle forever
    },
  );
  const stop = new AbortController();
  const stream = watchChat(client, "c", { backoff: FAST, signal: stop.signal });
  const seen: string[] = [];
  for await (const event of stream.events()) {
    seen.push(event.event.case === "delta" ? `delta:${event.event.value.text}` : String(event.event.case));
    if (event.event.case === "completed" && event.event.value.streamId === "s2") break;
  }
  assert.deepEqual(seen, [
    "heartbeat",
    "started",
    "delta:one",
    "completed",
    "started",
    "delta:two",
    "completed",
  ]);
  assert.equal(requests.length, 2);
  assert.equal(stream.streamId, "s2");
});

test("aborting the signal stops an idle watch promptly", async () => {
  const { client } = scripted(
    async function* () {},
    async function* () {
      await new Promise(() => {}); // idle forever
    },
  );
  const stop = new AbortController();
  const stream = watchChat(client, "c", { signal: stop.signal });
  const pending = stream.next();
  setTimeout(() => stop.abort(), 20);
  await assert.rejects(
    withTimeout(pending, 2_000, "the watch to stop"),
    (e) => e instanceof ConnectError && e.code === Code.Canceled,
  );
});

test("a token goes with the first call and every resume, by withToken, createClients or tokenInterceptor", async () => {
  const seen: (string | null)[] = [];
  let subscribes = 0;
  const routes = ({ service }: import("@connectrpc/connect").ConnectRouter) => {
    service(MessageService, {
      async *addUserMessageStreaming(_req, ctx) {
        seen.push(ctx.requestHeader.get("authorization"));
        yield started("s1");
        yield delta("s1", 0, "ab");
        throw new ConnectError("connection reset", Code.Unavailable);
      },
      async *subscribeChatSession(req, ctx) {
        seen.push(ctx.requestHeader.get("authorization"));
        subscribes += 1;
        if (subscribes % 2 === 1) throw new ConnectError("refused", Code.Unavailable);
        yield started("s1");
        yield delta("s1", Number(req.resume!.offset), "c");
        yield completed("s1", "abc");
      },
      getStreamStatus(_req, ctx) {
        seen.push(ctx.requestHeader.get("authorization"));
        return {};
      },
    });
  };
  const ways = [
    createClient(MessageService, withToken(createRouterTransport(routes), "tok-1")),
    createClients(createRouterTransport(routes), { token: " tok-1\n" }).messages,
    createClient(MessageService, createRouterTransport(routes, { transport: { interceptors: [tokenInterceptor("tok-1")] } })),
  ];
  for (const client of ways) {
    seen.length = 0;
    assert.equal(await collect(sendMessage(client, "c", "hi", { backoff: FAST })), "abc");
    await client.getStreamStatus({ chatSessionId: "c" });
    await client.getStreamStatus({ chatSessionId: "c" }, { headers: { authorization: "Bearer mine" } });
    assert.deepEqual(seen, ["Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Bearer mine"]);
  }

  // No token, or a blank one: no header.
  for (const client of [
    createClients(createRouterTransport(routes)).messages,
    createClients(createRouterTransport(routes), { token: "  " }).messages,
  ]) {
    seen.length = 0;
    await client.getStreamStatus({ chatSessionId: "c" });
    assert.deepEqual(seen, [null]);
  }

  // A token that cannot be a header value is refused without being shown.
  assert.throws(
    () => withToken(createRouterTransport(routes), "tok secret"),
    (e) => e instanceof TypeError && !e.message.includes("secret"),
  );
});

// --- Regenerate and continue ----------------------------------------------------

test("regenerate resumes after a drop like sendMessage", async () => {
  const swipe = { kind: ReplyKind.REGENERATE, alternativeIndex: 1, alternativeCount: 2 };
  const { client, requests, opened } = scripted(
    async function* () {
      yield started("s1", swipe);
      yield delta("s1", 0, "Nouvelle ");
      throw new ConnectError("connection reset", Code.Unavailable);
    },
    async function* (req) {
      yield started("s1", swipe);
      yield delta("s1", Number(req.resume!.offset), "réponse");
      yield completed("s1", "Nouvelle réponse");
    },
  );
  const reply = regenerate(client, "c", { backoff: FAST });
  assert.equal(await collect(reply), "Nouvelle réponse");
  assert.deepEqual(opened, ["regenerate"]);
  assert.equal(requests.length, 1);
  assert.equal(requests[0].resume?.offset, 9n);
  assert.equal(reply.started?.alternativeIndex, 1);
  assert.equal(reply.started?.alternativeCount, 2);
  assert.equal(reply.outcome?.event.case, "completed");
});

test("continueReply yields the new text from continuesFrom and resumes by offsets into the whole message", async () => {
  const old = "Il était une fois "; // 19 bytes
  const more = { kind: ReplyKind.CONTINUE, continuesFrom: BigInt(utf8Length(old)) };
  const { client, requests, opened } = scripted(
    async function* () {
      yield started("s1", more);
      yield delta("s1", 19, "un café");
      throw new ConnectError("connection reset", Code.Aborted);
    },
    async function* (req) {
      assert.equal(req.resume?.offset, BigInt(utf8Length(old + "un café")));
      yield started("s1", more);
      yield delta("s1", Number(req.resume!.offset), " 🎭");
      yield completed("s1", old + "un café 🎭");
    },
  );
  const reply = continueReply(client, "c", { backoff: FAST });
  const pieces: string[] = [];
  for await (const piece of reply) pieces.push(piece);
  assert.deepEqual(pieces, ["un café", " 🎭"]);
  assert.deepEqual(opened, ["continue"]);
  assert.equal(requests.length, 1);
  assert.equal(reply.started?.continuesFrom, 19n);
  assert.equal(reply.offset, utf8Length(old + "un café 🎭"));
  const outcome = reply.outcome?.event;
  assert.equal(outcome?.case === "completed" ? outcome.value.message?.content : undefined, old + "un café 🎭");
});

test("a continuation's old text is not repeated, and a delta after it must still be contiguous", async () => {
  // A server that sends a watcher the whole message so far, from byte 0.
  const { client } = scripted(
    async function* () {},
    async function* () {
      yield started("s1", { continuesFrom: 3n });
      yield delta("s1", 0, "abc"); // only old text
      yield delta("s1", 0, "abcdé");
      yield delta("s1", 6, "f");
      yield completed("s1", "abcdéf");
      await new Promise(() => {}); // idle forever
    },
  );
  const stop = new AbortController();
  const watch = watchChat(client, "c", { backoff: FAST, signal: stop.signal });
  const seen: GenerationEvent[] = [];
  for await (const event of watch.events()) {
    seen.push(event);
    if (event.event.case === "completed") break;
  }
  assert.deepEqual(seen.slice(1), [delta("s1", 3, "dé"), delta("s1", 6, "f"), completed("s1", "abcdéf")]);

  const overlap = scripted(
    async function* () {
      yield started("s1", { continuesFrom: 3n });
      yield delta("s1", 3, "de");
      yield delta("s1", 0, "abcde"); // repeats new text: still an overlap
    },
    async function* () {},
  );
  await assert.rejects(collect(continueReply(overlap.client, "c")), /overlap/);
});

test("a cancelled continuation's partial length may count the whole message or the new bytes", async () => {
  for (const [partial, ok] of [
    [5, true],
    [2, true],
    [4, false],
  ] as const) {
    const { client } = scripted(
      async function* () {
        yield started("s1", { continuesFrom: 3n });
        yield delta("s1", 3, "de");
        yield cancelled("s1", partial);
      },
      async function* () {},
    );
    const reply = continueReply(client, "c");
    if (ok) {
      assert.equal(await collect(reply), "de");
      assert.equal(reply.outcome?.event.case, "cancelled");
    } else {
      await assert.rejects(collect(reply), /ended with 4 bytes but 5/);
    }
  }
});

test("a drop before a regenerate's Started is thrown, never retried", async () => {
  const { client, requests, opened } = scripted(
    async function* () {
      throw new ConnectError("connection reset", Code.Unavailable);
    },
    async function* () {},
  );
  await assert.rejects(
    collect(regenerate(client, "c", { backoff: FAST })),
    (e) => e instanceof ConnectError && e.code === Code.Unavailable,
  );
  assert.deepEqual(opened, ["regenerate"]);
  assert.equal(requests.length, 0);
});

test("watchChat's events include ChatChanged; its text does not", async () => {
  const changed = create(GenerationEventSchema, {
    event: { case: "chatChanged", value: { chatSessionId: "c", kind: ChatChangeKind.SELECTED, messageIds: ["m1"] } },
  });
  const script = () =>
    scripted(
      async function* () {},
      async function* () {
        yield changed;
        yield started("s1");
        yield delta("s1", 0, "x");
        yield completed("s1", "x");
        await new Promise(() => {}); // idle forever
      },
    );
  const stop = new AbortController();
  const events = watchChat(script().client, "c", { signal: stop.signal }).events();
  const first = await withTimeout(events.next(), 2_000, "the first event");
  assert.deepEqual(first.value, changed);
  await events.return();

  const text = watchChat(script().client, "c", { signal: stop.signal });
  assert.deepEqual(await withTimeout(text.next(), 2_000, "the first piece"), { done: false, value: "x" });
  await text.return();
  stop.abort();
});
