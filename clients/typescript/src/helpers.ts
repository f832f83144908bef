/**
 * Following replies across dropped connections, each byte exactly once.
 *
 * A reply ("generation") is named by the `streamId` of its `Started` event,
 * and every `Delta` says at which UTF-8 *byte* offset of the reply its text
 * starts. A client that loses its connection calls `SubscribeChatSession`
 * with `resume: {streamId, offset}`, where `offset` is the number of bytes it
 * already has, and the server sends the rest. The helpers here do that:
 *
 * - {@link sendMessage}`(client, chatId, content)` sends a message and yields
 *   the reply's text pieces until the reply ends. If the connection drops
 *   after the reply started, it resumes the reply with `SubscribeChatSession`
 *   and carries on.
 * - {@link regenerate}`(client, chatId)` asks for a new alternative ("swipe")
 *   of the chat's last reply (`RegenerateReply`), followed the same way.
 * - {@link continueReply}`(client, chatId)` appends more text to the chat's
 *   last reply (`ContinueReply`), followed the same way. Offsets count from
 *   the start of the whole message, so the stream yields only the new text,
 *   from `started.continuesFrom`; `outcome`'s `message.content` is the whole
 *   message.
 * - {@link watchChat}`(client, chatId, opts)` follows a chat indefinitely: the
 *   live reply, then every later one (the server sends heartbeats while the
 *   chat is idle), re-subscribing from the current position whenever the
 *   connection drops.
 *
 * All return a {@link ReplyStream}: an async generator of `string` pieces
 * (`for await (const piece of stream)`), or of deduplicated
 * `GenerationEvent`s through `stream.events()`. Its `streamId`, `offset`,
 * `outcome` and `reconnects` tell where the reply stands. Leaving the loop
 * (or `stream.return()`) cancels the call. Reconnecting uses exponential
 * backoff with jitter and gives up with {@link ReconnectFailedError} after
 * `maxAttempts` failed tries in a row. Every delta is checked: its offset must
 * equal the bytes received so far, or a {@link ProtocolError} is thrown.
 * Every call, resumes included, goes through the client's transport, so a
 * token given to `createClients(transport, { token })` or `withToken` goes
 * with each.
 *
 * ```ts
 * const client = createClient(MessageService, createGrpcTransport({ baseUrl }));
 * for await (const piece of sendMessage(client, chatId, "Hello!")) {
 *   process.stdout.write(piece);
 * }
 * ```
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type CallOptions, type Client } from "@connectrpc/connect";
import {
  AddUserMessageRequestSchema,
  ContinueReplyRequestSchema,
  GenerationEventSchema,
  MessageService,
  RegenerateReplyRequestSchema,
  SubscribeChatSessionRequestSchema,
  type GenerationEvent,
  type Started,
} from "./gen/roleplay/v1/message_pb.js";

/** A client of `roleplay.v1.MessageService`, from `createClient(MessageService, transport)`. */
export type MessageClient = Client<typeof MessageService>;

/** Where a reply stands: its stream and the UTF-8 bytes of it already received. */
export interface ResumePoint {
  streamId: string;
  /** UTF-8 bytes of the reply already received (not a JS string length). */
  offset: number | bigint;
}

/**
 * Exponential backoff with jitter between reconnection attempts.
 *
 * Attempt `n` (from 1) waits `min(maxMs, initialMs * multiplier ** (n - 1))`
 * milliseconds, less a random part of up to `jitter` of it. The count restarts
 * whenever a connection delivers something new.
 */
export interface BackoffOptions {
  /** First delay in ms. Default 100. */
  initialMs?: number;
  /** Growth factor per attempt. Default 2. */
  multiplier?: number;
  /** Largest delay in ms. Default 5000. */
  maxMs?: number;
  /** Fraction (0..1) of each delay that is randomly taken off. Default 0.5. */
  jitter?: number;
  /** Failed attempts in a row before giving up. Default 8. */
  maxAttempts?: number;
}

const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  initialMs: 100,
  multiplier: 2,
  maxMs: 5000,
  jitter: 0.5,
  maxAttempts: 8,
};

/** The delay in ms before reconnection attempt `attempt` (from 1). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const b = { ...DEFAULT_BACKOFF, ...options };
  const base = Math.min(b.maxMs, b.initialMs * b.multiplier ** (attempt - 1));
  return base * (1 - b.jitter * Math.random());
}

/**
 * Status codes after which a stream is resumed rather than the error thrown.
 * A dropped connection shows as ABORTED over @connectrpc/connect-node's HTTP/2
 * ("read ECONNRESET"), UNKNOWN over fetch / gRPC-Web ("terminated"),
 * UNAVAILABLE (connection refused, server shutting down) or INTERNAL (a
 * response cut before its trailers). Errors the server answers deliberately
 * on a resume (NOT_FOUND, FAILED_PRECONDITION, INVALID_ARGUMENT, ...) are not
 * retried. Only replies that already started are resumed, so the ABORTED the
 * server answers to a second concurrent message is never retried either.
 */
export const RETRYABLE_CODES: ReadonlySet<Code> = new Set([
  Code.Unavailable,
  Code.Aborted,
  Code.Internal,
  Code.Unknown,
]);

/** Told about each reconnection before its delay. */
export interface ReconnectInfo {
  /** Failed attempts in a row, from 1. */
  attempt: number;
  /** How long the helper waits before re-subscribing, in ms. */
  delayMs: number;
  /** Why the previous call ended. */
  error: ConnectError;
  /** Where the reply stands (undefined streamId: no reply seen yet). */
  streamId: string | undefined;
  offset: number;
}

export interface FollowOptions {
  backoff?: BackoffOptions;
  /** Stops following: the iteration then throws a ConnectError with Code.Canceled. */
  signal?: AbortSignal;
  /** Which errors are followed by a re-subscription. Default: code in {@link RETRYABLE_CODES}. */
  isRetryable?: (error: ConnectError) => boolean;
  /** Called before each reconnection (logging, metrics). */
  onReconnect?: (info: ReconnectInfo) => void;
  /** Headers, timeouts etc. for every call. Its `signal` is combined with `signal`. */
  callOptions?: Omit<CallOptions, "signal">;
}

export interface WatchOptions extends FollowOptions {
  /** Continue this reply from this many bytes: the first text is the rest of it. */
  resume?: ResumePoint;
}

/** The server sent events that break the offset contract (a gap or overlap, a delta of another reply, ...). */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/**
 * Reconnecting failed `maxAttempts` times in a row. `streamId` and `offset`
 * say where the reply stands, so it can be resumed later with
 * {@link watchChat}'s `resume`; `cause` is the last error.
 */
export class ReconnectFailedError extends Error {
  override name = "ReconnectFailedError";
  constructor(
    message: string,
    readonly streamId: string | undefined,
    readonly offset: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The terminal event kinds of a reply. */
export type TerminalEvent = GenerationEvent & {
  event: Extract<GenerationEvent["event"], { case: "completed" | "failed" | "cancelled" }>;
};

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The length of `text` in UTF-8 bytes, which is what offsets count. */
export function utf8Length(text: string): number {
  return utf8.encode(text).length;
}

type OpenCall = (signal: AbortSignal) => AsyncIterable<GenerationEvent>;

/**
 * A reply (or, from {@link watchChat}, a chat's replies) that survives dropped
 * connections. Iterate it for the text pieces, or call {@link events} once for
 * the events instead; not both.
 *
 * Leaving a `for await` loop cancels the call. An async generator's
 * `return()` waits for a pending `next()`, so to stop a watch that is waiting
 * for the next event (an idle chat sends a heartbeat only every few seconds),
 * abort the `signal` given in the options.
 */
export class ReplyStream implements AsyncGenerator<string, void, undefined> {
  /** The reply being followed (undefined before its `Started`). */
  streamId: string | undefined;
  /**
   * UTF-8 bytes of that reply received so far. Offsets count from the start
   * of the whole message, so for a continuation (`started.continuesFrom` > 0)
   * this starts at `continuesFrom`: the message's earlier bytes, which the
   * stream does not yield again.
   */
  offset = 0;
  /** The reply's `Started` event (kind, alternative index and count, `continuesFrom`), once seen. */
  started: Started | undefined;
  /** The terminal event (completed, failed or cancelled) of that reply, once it arrived. */
  outcome: TerminalEvent | undefined;
  /** How many times the stream was re-subscribed. */
  reconnects = 0;

  readonly #client: MessageClient;
  readonly #chatId: string;
  readonly #openFirst: OpenCall | undefined;
  readonly #followLater: boolean;
  readonly #options: FollowOptions;
  // Whether the current reply's Started was already passed on.
  #announced = false;
  // A continuation followed from its Started: the message's bytes before
  // this, its old text, are dropped from deltas rather than repeated.
  #oldText = 0;
  #consumed = false;
  #text: AsyncGenerator<string, void, undefined> | undefined;

  /** @internal Use {@link sendMessage} or {@link watchChat}. */
  constructor(
    client: MessageClient,
    chatId: string,
    openFirst: OpenCall | undefined,
    followLater: boolean,
    options: WatchOptions,
  ) {
    this.#client = client;
    this.#chatId = chatId;
    this.#openFirst = openFirst;
    this.#followLater = followLater;
    this.#options = options;
    if (options.resume) {
      this.streamId = options.resume.streamId;
      this.offset = Number(options.resume.offset);
    }
  }

  /** Where the reply stands, for a later {@link watchChat} `resume` (undefined before Started). */
  get position(): ResumePoint | undefined {
    return this.streamId === undefined ? undefined : { streamId: this.streamId, offset: this.offset };
  }

  /**
   * The events, each once, as if the connection had never dropped: `Started`
   * and the terminal event of each reply, `Delta`s (whose offsets always equal
   * the bytes received before them), `Heartbeat`s and `ChatChanged` (messages
   * edited, selected, deleted or rewound: reload them).
   */
  events(): AsyncGenerator<GenerationEvent, void, undefined> {
    if (this.#consumed) throw new Error("this ReplyStream is already being consumed");
    this.#consumed = true;
    return this.#run();
  }

  #textGenerator(): AsyncGenerator<string, void, undefined> {
    if (this.#text === undefined) {
      const events = this.events();
      this.#text = (async function* () {
        for await (const event of events) {
          if (event.event.case === "delta") yield event.event.value.text;
        }
      })();
    }
    return this.#text;
  }

  next(): Promise<IteratorResult<string, void>> {
    return this.#textGenerator().next();
  }

  return(): Promise<IteratorResult<string, void>> {
    if (this.#text === undefined) {
      // Never iterated for text: nothing is running here (events() callers
      // stop through their own generator).
      this.#consumed = true;
      return Promise.resolve({ done: true, value: undefined });
    }
    return this.#text.return();
  }

  throw(error: unknown): Promise<IteratorResult<string, void>> {
    return this.#textGenerator().throw(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #subscribe(signal: AbortSignal): AsyncIterable<GenerationEvent> {
    const request = create(SubscribeChatSessionRequestSchema, { chatSessionId: this.#chatId });
    if (this.streamId !== undefined) {
      request.resume = { $typeName: "roleplay.v1.ResumePosition", streamId: this.streamId, offset: BigInt(this.offset) };
    }
    return this.#client.subscribeChatSession(request, { ...this.#options.callOptions, signal });
  }

  async *#run(): AsyncGenerator<GenerationEvent, void, undefined> {
    const backoff = { ...DEFAULT_BACKOFF, ...this.#options.backoff };
    const isRetryable = this.#options.isRetryable ?? ((e: ConnectError) => RETRYABLE_CODES.has(e.code));
    const userSignal = this.#options.signal;
    let attempt = 0;
    let open: OpenCall = this.#openFirst ?? ((signal) => this.#subscribe(signal));
    for (;;) {
      userSignal?.throwIfAborted();
      const controller = new AbortController();
      const signal = userSignal ? AbortSignal.any([userSignal, controller.signal]) : controller.signal;
      let error: ConnectError;
      try {
        for await (const event of open(signal)) {
          const [item, progressed] = this.#accept(event);
          if (progressed) attempt = 0;
          if (item !== undefined) yield item;
          if (this.outcome !== undefined && !this.#followLater) return;
        }
        if (this.streamId === undefined && !this.#followLater) {
          throw new ProtocolError("the reply stream ended before Started");
        }
        error = new ConnectError("the stream ended before the reply did", Code.Unavailable);
      } catch (err) {
        if (err instanceof ProtocolError) throw err;
        if (userSignal?.aborted) throw ConnectError.from(err, Code.Canceled);
        const connectError = ConnectError.from(err);
        if (!isRetryable(connectError)) throw connectError;
        if (this.streamId === undefined && !this.#followLater) {
          // The message may or may not have been stored: without a stream id
          // there is nothing to resume, and sending it again could store it twice.
          throw connectError;
        }
        error = connectError;
      } finally {
        controller.abort();
      }
      attempt += 1;
      if (attempt > backoff.maxAttempts) {
        throw new ReconnectFailedError(
          `gave up after ${backoff.maxAttempts} reconnection attempts ` +
            `(stream ${this.streamId ?? "-"}, ${this.offset} bytes received): ${error.message}`,
          this.streamId,
          this.offset,
          { cause: error },
        );
      }
      const delayMs = backoffDelay(attempt, backoff);
      this.#options.onReconnect?.({ attempt, delayMs, error, streamId: this.streamId, offset: this.offset });
      await sleep(delayMs, userSignal);
      this.reconnects += 1;
      open = (signal) => this.#subscribe(signal);
    }
  }

  /**
   * Updates the position from one event. Returns what to yield (or undefined)
   * and whether the event was news rather than an echo of what this stream
   * already had.
   */
  #accept(event: GenerationEvent): [GenerationEvent | undefined, boolean] {
    const e = event.event;
    switch (e.case) {
      case "started": {
        const streamId = e.value.streamId;
        if (streamId === this.streamId) {
          // A resume starts with the reply's Started again.
          if (this.#announced) return [undefined, false];
        } else if (this.#followLater || this.streamId === undefined) {
          // A continuation's new text starts after the message's existing
          // bytes; any other reply starts at 0.
          this.streamId = streamId;
          this.offset = Number(e.value.continuesFrom);
          this.#oldText = this.offset;
          this.outcome = undefined;
        } else {
          throw new ProtocolError(`expected reply ${this.streamId}, got Started of ${streamId}`);
        }
        this.started = e.value;
        this.#announced = true;
        return [event, true];
      }
      case "delta": {
        const delta = e.value;
        this.#checkStream("delta", delta.streamId);
        if (this.outcome !== undefined) throw new ProtocolError(`a delta after the end of reply ${this.streamId}`);
        let at = Number(delta.offset);
        let text = delta.text;
        let out = event;
        if (at < this.#oldText) {
          // The continued message's old text (a watcher may be sent the
          // whole message so far): keep only what comes after it.
          const bytes = utf8.encode(delta.text);
          const skip = this.#oldText - at;
          if (bytes.length <= skip) return [undefined, false];
          try {
            text = strictUtf8.decode(bytes.subarray(skip));
          } catch {
            throw new ProtocolError(`reply ${this.streamId}: a delta splits a UTF-8 character at byte ${this.#oldText}`);
          }
          at = this.#oldText;
          out = create(GenerationEventSchema, {
            event: { case: "delta", value: { streamId: delta.streamId, offset: BigInt(at), text } },
          });
        }
        if (at !== this.offset) {
          throw new ProtocolError(
            `reply ${this.streamId}: a delta starts at byte ${at} but ${this.offset} bytes were received` +
              (at > this.offset ? " (a gap)" : " (an overlap)"),
          );
        }
        const length = utf8Length(text);
        this.offset += length;
        return [out, length > 0];
      }
      case "completed":
      case "failed":
      case "cancelled": {
        this.#checkStream(e.case, e.value.streamId);
        if (this.outcome !== undefined) return [undefined, false]; // a resume of an ended reply repeats its end
        const length =
          e.case === "completed" ? utf8Length(e.value.message?.content ?? "") : Number(e.value.partialLength);
        // partial_length counts the whole message like the offsets do; for a
        // continuation, a count of the new bytes alone is taken too.
        const started = this.started;
        const base = started !== undefined && started.streamId === this.streamId ? Number(started.continuesFrom) : 0;
        const newBytes = this.offset - base;
        if (length !== this.offset && !(e.case !== "completed" && length === newBytes)) {
          throw new ProtocolError(
            `reply ${this.streamId} ended with ${length} bytes but ${this.offset} were received`,
          );
        }
        this.outcome = event as TerminalEvent;
        return [event, true];
      }
      case "heartbeat":
      case "chatChanged":
        // chatChanged: messages were edited, selected, deleted or rewound;
        // a watcher reloads them (ListMessages).
        return [event, true];
      default:
        return [undefined, false]; // an event kind newer than this client
    }
  }

  #checkStream(kind: string, streamId: string): void {
    if (this.streamId === undefined) throw new ProtocolError(`${kind} before Started`);
    if (streamId !== "" && streamId !== this.streamId) {
      throw new ProtocolError(`${kind} of reply ${streamId} while following ${this.streamId}`);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ConnectError("following was stopped", Code.Canceled));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ConnectError("following was stopped", Code.Canceled));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Sends `content` to the chat and yields the reply's text pieces until it
 * ends (`stream.events()` gives the events instead).
 *
 * Calls `AddUserMessageStreaming`; if the connection drops after the reply
 * started, continues with `SubscribeChatSession{resume: {streamId, offset}}`
 * so the reply arrives exactly once. Errors before `Started` (NOT_FOUND,
 * ABORTED, FAILED_PRECONDITION, a drop before the reply started, ...) are
 * thrown as `ConnectError`: the message is never sent twice. When iteration
 * ends, `stream.outcome` holds the terminal event (completed, failed or
 * cancelled).
 */
export function sendMessage(
  client: MessageClient,
  chatId: string,
  content: string,
  options: FollowOptions = {},
): ReplyStream {
  const request = create(AddUserMessageRequestSchema, { chatSessionId: chatId, content });
  return new ReplyStream(
    client,
    chatId,
    (signal) => client.addUserMessageStreaming(request, { ...options.callOptions, signal }),
    false,
    options,
  );
}

/**
 * Asks for a new alternative ("swipe") of the chat's last reply and yields its
 * text pieces until it ends (`stream.events()` gives the events instead). The
 * new alternative is selected; earlier ones stay (`ListAlternatives`,
 * `SelectAlternative`). When the chat ends with a user message instead, this
 * answers it.
 *
 * Calls `RegenerateReply` and follows it exactly like {@link sendMessage}:
 * after a drop once the reply started it resumes with
 * `SubscribeChatSession{resume: {streamId, offset}}`; errors before `Started`
 * (ABORTED while a reply runs, FAILED_PRECONDITION when there is nothing to
 * answer, a drop, ...) are thrown and never retried, so no second alternative
 * is started. `stream.started.alternativeIndex` and `alternativeCount` say
 * which alternative this is.
 */
export function regenerate(client: MessageClient, chatId: string, options: FollowOptions = {}): ReplyStream {
  const request = create(RegenerateReplyRequestSchema, { chatSessionId: chatId });
  return new ReplyStream(
    client,
    chatId,
    (signal) => client.regenerateReply(request, { ...options.callOptions, signal }),
    false,
    options,
  );
}

/**
 * Asks the model to go on from the end of the chat's last reply and yields
 * the *new* text pieces until it ends; the text is appended to that message
 * (the same alternative).
 *
 * Calls `ContinueReply` and follows it like {@link sendMessage}. Offsets count
 * from the start of the whole message: the new text starts at
 * `started.continuesFrom`, which is where `stream.offset` starts, so at the
 * end `offset` is the whole message's length in UTF-8 bytes and a resume asks
 * for the rest of the whole message. What the iteration yields is only the new
 * text; the whole message (old text, then new) is the completed outcome's
 * `message.content`. Errors before `Started` (FAILED_PRECONDITION when the last
 * message is not an assistant reply, ABORTED, a drop, ...) are thrown and
 * never retried.
 */
export function continueReply(client: MessageClient, chatId: string, options: FollowOptions = {}): ReplyStream {
  const request = create(ContinueReplyRequestSchema, { chatSessionId: chatId });
  return new ReplyStream(
    client,
    chatId,
    (signal) => client.continueReply(request, { ...options.callOptions, signal }),
    false,
    options,
  );
}

/**
 * Follows a chat: yields the text pieces of the live reply (from
 * `options.resume`, when given), then of every later reply, until the loop is
 * left or `options.signal` aborts. Use `stream.events()` to see where replies
 * start and end.
 *
 * Replies of every kind are followed (sent, regenerated, continued); a
 * continuation's text starts at its `Started.continuesFrom`, the message's
 * earlier bytes are not repeated. `stream.events()` also passes on
 * `ChatChanged` (messages edited, selected, deleted or rewound).
 *
 * After a drop (a retryable error, or the stream ending) it re-subscribes from
 * the current position, with backoff. A reply that both starts and ends while
 * the connection is down is not seen; `ListMessages` has it.
 */
export function watchChat(client: MessageClient, chatId: string, options: WatchOptions = {}): ReplyStream {
  return new ReplyStream(client, chatId, undefined, true, options);
}

/** Whether an event ends a reply. */
export function isTerminal(event: GenerationEvent): event is TerminalEvent {
  const c = event.event.case;
  return c === "completed" || c === "failed" || c === "cancelled";
}

// Re-exported so callers can build events in their own tests.
export { GenerationEventSchema };
