/**
 * The chat view: the messages, the reply streaming in, sending, stopping,
 * and staying connected.
 *
 * Every open view follows the chat with SubscribeChatSession (so a second tab
 * shows the same reply live), resuming from {streamId, offset} after a drop.
 * The sender's AddUserMessageStreaming delivers the same events; both feed
 * one {@link ReplyText}, which merges them by UTF-8 byte offset. The running
 * reply is saved in sessionStorage on every delta, so a reload shows the text
 * so far at once and resumes from its offset: nothing lost, nothing doubled.
 */
import { create } from "@bufbuild/protobuf";
import {
  ChatSessionSchema,
  MessageSchema,
  MessageStatus,
  Role,
  type ChatSession,
  type Message,
} from "./gen/roleplay/v1/chat_session_pb.js";
import { CancelReason, FailureCode, type GenerationEvent } from "./gen/roleplay/v1/message_pb.js";
import { allPages, api, Code, ConnectError, describeError, UNARY } from "./api.js";
import { clear, h } from "./dom.js";
import { setMarkdown } from "./markdown.js";
import { backoffDelay, parseSavedReply, ReplyText, utf8Length, type SavedReply } from "./reply.js";

type ConnState = "connecting" | "live" | "reconnecting" | "offline" | "stopped";

interface Live {
  reply: ReplyText;
  assistantMessageId: string;
  userMessageId: string;
  model: string;
}

/** Errors after which the follower re-subscribes. */
const RETRYABLE = new Set([Code.Unavailable, Code.Aborted, Code.Internal, Code.Unknown, Code.ResourceExhausted, Code.DeadlineExceeded, Code.Canceled]);

function savedKey(chatId: string): string {
  return `roleplay.reply.${chatId}`;
}

const STATUS_LABEL: Record<number, string> = {
  [MessageStatus.FAILED]: "failed",
  [MessageStatus.CANCELLED]: "stopped",
  [MessageStatus.INTERRUPTED]: "interrupted",
  [MessageStatus.STREAMING]: "streaming",
};

export class ChatView {
  readonly el: HTMLElement;
  readonly #chatId: string;
  #chat: ChatSession = create(ChatSessionSchema);
  #charName = "Character";
  #userName = "You";
  #messages: Message[] = [];
  /** Reply ids (stream ids) whose end this view has already shown. */
  #finished = new Set<string>();
  /** The messages of replies this view saw end, by stream id. */
  #ended = new Map<string, Message>();
  #live: Live | undefined;
  /** The user's message being sent, until the server's list has it. */
  #pending: { content: string; id: string } | undefined;
  /** Where the follower resumes from. */
  #position: { streamId: string; offset: number } | undefined;
  #conn: ConnState = "connecting";
  #attempt = 0;
  /** Re-subscriptions after a drop, for tests and curious users (data-reconnects). */
  #reconnects = 0;
  #disposed = false;
  #followCtrl: AbortController | undefined;
  #sendCtrl: AbortController | undefined;
  #wake: (() => void) | undefined;
  #renderQueued = false;

  // DOM
  #title = h("h2", { class: "chat-title" }, "Chat");
  #list = h("ol", { class: "messages", "aria-label": "Messages" });
  #liveItem: HTMLLIElement | undefined;
  #liveBody: HTMLDivElement | undefined;
  #connStatus = h("p", { class: "conn", role: "status", "aria-live": "polite", "data-state": "connecting" });
  #error = h("p", { class: "error", role: "alert", hidden: true });
  #input = h("textarea", {
    id: "composer",
    rows: 2,
    placeholder: "Write a message…",
    "aria-describedby": "composer-hint",
  });
  #send = h("button", { type: "submit", class: "primary", id: "send" }, "Send");
  #stop = h("button", { type: "button", id: "stop", "aria-label": "Stop the reply", disabled: true }, "Stop");

  constructor(chatId: string) {
    this.#chatId = chatId;
    const form = h(
      "form",
      { class: "composer", "aria-label": "Send a message" },
      h("label", { for: "composer", class: "visually-hidden" }, "Message"),
      this.#input,
      h("div", { class: "composer-buttons" }, this.#send, this.#stop),
      h("small", { id: "composer-hint", class: "hint" }, "Enter sends, Shift+Enter adds a line, Escape stops the reply."),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.#sendMessage();
    });
    this.#input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        void this.#sendMessage();
      }
    });
    this.#stop.addEventListener("click", () => void this.stop());
    this.el = h(
      "section",
      { class: "chat", "aria-labelledby": "chat-title" },
      h("header", { class: "chat-head" }, this.#title, this.#connStatus),
      this.#list,
      this.#error,
      form,
    );
    this.#title.id = "chat-title";
    window.addEventListener("offline", this.#onOffline);
    window.addEventListener("online", this.#onOnline);
    document.addEventListener("keydown", this.#onKey);
  }

  /** Loads the chat and starts following it. */
  async open(): Promise<void> {
    const saved = parseSavedReply(sessionStorage.getItem(savedKey(this.#chatId)), this.#chatId);
    if (saved) {
      // Show the text so far at once, before anything is fetched.
      this.#restore(saved);
      this.#render();
    }
    try {
      this.#chat = await api.chats.getChatSession({ id: this.#chatId }, UNARY);
      const [character, profile] = await Promise.all([
        api.characters.getCharacter({ id: this.#chat.characterId }, UNARY).catch(() => undefined),
        api.profiles.getUserProfile({ id: this.#chat.userProfileId }, UNARY).catch(() => undefined),
      ]);
      if (character) this.#charName = character.name;
      if (profile) this.#userName = profile.name;
      this.#title.textContent = this.#chat.title || `Chat with ${this.#charName}`;
      await this.#loadMessages();
    } catch (err) {
      this.#showError(`Could not open the chat: ${describeError(err)}`);
      this.#setConn("stopped");
      this.#render();
      return;
    }
    if (!this.#position) this.#position = this.#positionFromMessages();
    this.#render();
    void this.#follow();
    this.#input.focus();
  }

  dispose(): void {
    this.#disposed = true;
    this.#followCtrl?.abort();
    this.#sendCtrl?.abort();
    this.#wake?.();
    window.removeEventListener("offline", this.#onOffline);
    window.removeEventListener("online", this.#onOnline);
    document.removeEventListener("keydown", this.#onKey);
  }

  // --- State -----------------------------------------------------------------

  #restore(saved: SavedReply): void {
    this.#live = {
      reply: new ReplyText(saved.streamId, saved.text),
      assistantMessageId: saved.assistantMessageId,
      userMessageId: saved.userMessageId,
      model: "",
    };
    this.#position = { streamId: saved.streamId, offset: saved.offset };
  }

  #save(): void {
    const live = this.#live;
    if (!live) return;
    const saved: SavedReply = {
      chatId: this.#chatId,
      streamId: live.reply.streamId,
      offset: live.reply.offset,
      text: live.reply.text,
      assistantMessageId: live.assistantMessageId,
      userMessageId: live.userMessageId,
    };
    try {
      sessionStorage.setItem(savedKey(this.#chatId), JSON.stringify(saved));
    } catch {
      // storage full or disabled: the reply still streams, only a reload loses the shortcut
    }
  }

  #forget(): void {
    sessionStorage.removeItem(savedKey(this.#chatId));
  }

  async #loadMessages(): Promise<void> {
    const messages = await allPages(async (pageToken) => {
      const r = await api.chats.listMessages({ chatSessionId: this.#chatId, pageSize: 500, pageToken }, UNARY);
      return { items: r.messages, next: r.nextPageToken };
    });
    // A list read while a reply ran can arrive after its end: keep the ended version.
    for (let i = 0; i < messages.length; i++) {
      const ended = messages[i].streamId ? this.#ended.get(messages[i].streamId ?? "") : undefined;
      if (ended && messages[i].status === MessageStatus.STREAMING) messages[i] = ended;
    }
    this.#messages = messages;
    for (const m of messages) {
      if (m.role === Role.ASSISTANT && m.streamId && m.status !== MessageStatus.STREAMING) {
        // Ended replies: their repeated Started / end on a resume are not news.
        if (!this.#live || this.#live.reply.streamId !== m.streamId) this.#finished.add(m.streamId);
      }
    }
    if (this.#pending?.id && messages.some((m) => m.id === this.#pending?.id)) this.#pending = undefined;
    // A reply running when the view opened (another tab sent it): show what is
    // stored and resume from there.
    if (!this.#live) {
      const running = messages.find(
        (m) => m.role === Role.ASSISTANT && m.status === MessageStatus.STREAMING && m.streamId && !this.#finished.has(m.streamId),
      );
      if (running?.streamId) {
        const userMsg = [...messages].reverse().find((m) => m.role === Role.USER);
        this.#live = {
          reply: new ReplyText(running.streamId, running.content),
          assistantMessageId: running.id,
          userMessageId: userMsg?.id ?? "",
          model: running.model ?? "",
        };
        this.#position = { streamId: running.streamId, offset: utf8Length(running.content) };
      }
    }
  }

  /** The end of the last reply in the list: a resume from there sends every later reply. */
  #positionFromMessages(): { streamId: string; offset: number } | undefined {
    for (let i = this.#messages.length - 1; i >= 0; i--) {
      const m = this.#messages[i];
      if (m.role === Role.ASSISTANT && m.streamId) return { streamId: m.streamId, offset: utf8Length(m.content) };
    }
    return undefined;
  }

  // --- Events ----------------------------------------------------------------

  /** Applies one event, from whichever stream it came. Returns false when the stream should be re-subscribed (a gap). */
  #handle(event: GenerationEvent): boolean {
    const e = event.event;
    switch (e.case) {
      case "started": {
        const s = e.value;
        if (this.#finished.has(s.streamId)) return true;
        if (this.#live && this.#live.reply.streamId === s.streamId) {
          this.#live.assistantMessageId ||= s.assistantMessageId;
          this.#live.userMessageId ||= s.userMessageId;
          this.#live.model = s.model;
          return true;
        }
        if (this.#live) {
          // A newer reply started before we saw the end of ours: the list has it.
          this.#finished.add(this.#live.reply.streamId);
          this.#live = undefined;
          void this.#reload();
        }
        this.#live = {
          reply: new ReplyText(s.streamId),
          assistantMessageId: s.assistantMessageId,
          userMessageId: s.userMessageId,
          model: s.model,
        };
        this.#position = { streamId: s.streamId, offset: 0 };
        if (this.#pending && !this.#pending.id) this.#pending.id = s.userMessageId;
        const known = this.#messages.some((m) => m.id === s.userMessageId) || this.#pending?.id === s.userMessageId;
        this.#save();
        if (!known) void this.#reload(); // sent from elsewhere: fetch the user's message
        this.#render();
        return true;
      }
      case "delta": {
        const d = e.value;
        const live = this.#live;
        if (!live || live.reply.streamId !== d.streamId || this.#finished.has(d.streamId)) return true;
        const fresh = live.reply.apply(Number(d.offset), d.text);
        if (fresh === null) return false;
        if (fresh !== "") {
          this.#position = { streamId: d.streamId, offset: live.reply.offset };
          this.#save();
          this.#queueLiveRender();
        }
        return true;
      }
      case "completed":
      case "failed":
      case "cancelled": {
        const streamId = e.value.streamId;
        const live = this.#live;
        if (!live || live.reply.streamId !== streamId || this.#finished.has(streamId)) return true;
        const text = live.reply.text;
        let status = MessageStatus.COMPLETED;
        let error: string | undefined;
        let mismatch = false;
        let stored: Message | undefined;
        if (e.case === "completed") {
          stored = e.value.message;
          mismatch = (stored?.content ?? text) !== text;
        } else if (e.case === "failed") {
          status = MessageStatus.FAILED;
          error = `${e.value.message || "the reply failed"} (${FailureCode[e.value.code] ?? e.value.code})`;
          mismatch = Number(e.value.partialLength) !== live.reply.offset;
        } else {
          status = MessageStatus.CANCELLED;
          const why = e.value.reason === CancelReason.IDLE_TIMEOUT ? "nobody was watching" : e.value.reason === CancelReason.SHUTDOWN ? "the server shut down" : "";
          error = why ? `stopped: ${why}` : undefined;
          mismatch = Number(e.value.partialLength) !== live.reply.offset;
        }
        if (mismatch) {
          // Never expected: the bytes shown differ from what the server stored.
          console.error(`reply ${streamId}: the streamed text differs from the stored one`);
        }
        // A whole Message to spread (not `{}`), so the literal has every
        // required field of Message, alternative_index/count included.
        const message = create(MessageSchema, {
          ...(stored ?? create(MessageSchema)),
          id: live.assistantMessageId || stored?.id || streamId,
          chatSessionId: this.#chatId,
          role: Role.ASSISTANT,
          content: text,
          status,
          error,
          streamId,
          model: stored?.model ?? live.model,
        });
        const idx = this.#messages.findIndex((m) => m.id === message.id);
        if (idx >= 0) this.#messages[idx] = message;
        else this.#messages.push(message);
        if (this.#pending?.id && !this.#messages.some((m) => m.id === this.#pending?.id)) {
          const userMsg = create(MessageSchema, { id: this.#pending.id, role: Role.USER, content: this.#pending.content, status: MessageStatus.COMPLETED });
          this.#messages.splice(this.#messages.indexOf(message), 0, userMsg);
        }
        this.#pending = undefined;
        this.#finished.add(streamId);
        this.#ended.set(streamId, message);
        this.#position = { streamId, offset: live.reply.offset };
        this.#live = undefined;
        this.#forget();
        this.#render(mismatch ? message.id : undefined);
        if (status === MessageStatus.FAILED && error) this.#showError(`The reply failed: ${error}`);
        return true;
      }
      default:
        return true;
    }
  }

  async #reload(): Promise<void> {
    try {
      await this.#loadMessages();
      this.#render();
    } catch (err) {
      this.#showError(`Could not load the messages: ${describeError(err)}`);
    }
  }

  // --- Following -------------------------------------------------------------

  async #follow(): Promise<void> {
    let resumeRefused = false;
    while (!this.#disposed) {
      const ctrl = new AbortController();
      this.#followCtrl = ctrl;
      const position = resumeRefused ? undefined : this.#position;
      let error: ConnectError | undefined;
      try {
        const stream = api.messages.subscribeChatSession(
          {
            chatSessionId: this.#chatId,
            resume: position ? { streamId: position.streamId, offset: BigInt(position.offset) } : undefined,
          },
          { signal: ctrl.signal, onHeader: () => this.#connected() },
        );
        for await (const event of stream) {
          this.#connected();
          this.#attempt = 0;
          resumeRefused = false;
          if (!this.#handle(event)) {
            error = new ConnectError("a gap in the reply", Code.DataLoss);
            break;
          }
        }
        error ??= new ConnectError("the stream ended", Code.Unavailable);
      } catch (err) {
        error = ConnectError.from(err);
      } finally {
        ctrl.abort();
      }
      if (this.#disposed) return;
      if (error.code === Code.Unauthenticated || error.code === Code.PermissionDenied) {
        this.#setConn("stopped");
        this.#showError(`Lost access to the chat: ${describeError(error)}`);
        if (error.code === Code.Unauthenticated) window.dispatchEvent(new CustomEvent("roleplay:unauthenticated"));
        return;
      }
      if (!RETRYABLE.has(error.code) && error.code !== Code.DataLoss) {
        if (position && !resumeRefused) {
          // The reply cannot be resumed (never stored, or gone): start afresh
          // from the stored messages.
          resumeRefused = true;
          if (this.#live && this.#live.reply.streamId === position.streamId) {
            this.#live = undefined;
            this.#forget();
          }
          await this.#reload();
          continue;
        }
        this.#setConn("stopped");
        this.#showError(`Stopped following the chat: ${describeError(error)}`);
        return;
      }
      this.#attempt += 1;
      this.#reconnects += 1;
      this.#connStatus.dataset.reconnects = String(this.#reconnects);
      // Offline, an attempt fails at once and costs nothing: try at least every
      // 3 s in case the browser's online event never comes; online wakes it earlier.
      const offline = !navigator.onLine;
      this.#setConn(offline ? "offline" : "reconnecting");
      const wait = backoffDelay(this.#attempt);
      await this.#sleep(offline ? Math.min(wait, 3000) : wait);
    }
  }

  #connected(): void {
    if (this.#conn !== "live") this.#setConn("live");
  }

  /** Waits `ms`, or until woken (the network came back, the view closed). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  #onOffline = (): void => {
    this.#setConn("offline");
    this.#followCtrl?.abort();
    this.#sendCtrl?.abort();
  };

  #onOnline = (): void => {
    this.#attempt = 0;
    this.#setConn("reconnecting");
    this.#wake?.();
  };

  #onKey = (e: KeyboardEvent): void => {
    if (e.key === "Escape" && this.#live) {
      e.preventDefault();
      void this.stop();
    }
  };

  #setConn(state: ConnState): void {
    this.#conn = state;
    this.#connStatus.dataset.state = state;
    this.#connStatus.textContent =
      state === "reconnecting"
        ? `Reconnecting…${this.#attempt > 1 ? ` (attempt ${this.#attempt})` : ""}`
        : state === "offline"
          ? "Offline: reconnecting… as soon as the network is back"
          : state === "stopped"
            ? "Not connected"
            : "";
  }

  // --- Sending and stopping -----------------------------------------------------

  async #sendMessage(): Promise<void> {
    const content = this.#input.value;
    if (!content.trim() || this.#pending || this.#live) return;
    this.#hideError();
    this.#pending = { content, id: "" };
    this.#input.value = "";
    this.#render();
    const ctrl = new AbortController();
    this.#sendCtrl = ctrl;
    let started = false;
    try {
      for await (const event of api.messages.addUserMessageStreaming({ chatSessionId: this.#chatId, content }, { signal: ctrl.signal })) {
        if (event.event.case === "started") started = true;
        this.#handle(event);
        const c = event.event.case;
        if (c === "completed" || c === "failed" || c === "cancelled") break;
      }
    } catch (err) {
      if (ctrl.signal.aborted || this.#disposed) {
        // Offline or closed: the follower resumes the reply.
      } else if (!started) {
        const e = ConnectError.from(err);
        if (RETRYABLE.has(e.code) && e.code !== Code.ResourceExhausted && e.code !== Code.Aborted) {
          // Lost before Started: it may or may not be stored. Never send twice; look.
          this.#showError(`The connection dropped while sending: ${describeError(e)}. Check the messages before sending again.`);
          this.#pending = undefined;
          await this.#reload();
        } else {
          this.#showError(`Not sent: ${describeError(e)}`);
          this.#pending = undefined;
          if (!this.#input.value) this.#input.value = content;
          this.#render();
        }
      }
      // After Started a dropped send stream is not an error: the follower has the reply.
    } finally {
      ctrl.abort();
      if (this.#sendCtrl === ctrl) this.#sendCtrl = undefined;
    }
  }

  /** Stops the running reply (CancelGeneration); its partial text is kept. */
  async stop(): Promise<void> {
    const live = this.#live;
    if (!live) return;
    this.#stop.disabled = true;
    try {
      const r = await api.messages.cancelGeneration({ chatSessionId: this.#chatId, streamId: live.reply.streamId }, UNARY);
      if (!r.cancelled && r.message) this.#showError(r.message);
    } catch (err) {
      this.#showError(`Could not stop the reply: ${describeError(err)}`);
      this.#stop.disabled = false;
    }
  }

  // --- Rendering ---------------------------------------------------------------

  #showError(text: string): void {
    this.#error.textContent = text;
    this.#error.hidden = false;
  }

  #hideError(): void {
    this.#error.hidden = true;
    this.#error.textContent = "";
  }

  #bubble(role: Role, id: string, body: HTMLElement, status?: MessageStatus, error?: string): HTMLLIElement {
    const who = role === Role.USER ? this.#userName : role === Role.ASSISTANT ? this.#charName : "System";
    const badge = status !== undefined && STATUS_LABEL[status] ? h("span", { class: `badge badge-${STATUS_LABEL[status]}` }, STATUS_LABEL[status]) : null;
    return h(
      "li",
      { class: `msg msg-${role === Role.USER ? "user" : role === Role.ASSISTANT ? "assistant" : "system"}`, "data-id": id },
      h("div", { class: "msg-meta" }, h("span", { class: "who" }, who), badge),
      body,
      error ? h("p", { class: "msg-error" }, error) : null,
    );
  }

  #render(mismatchId?: string): void {
    const live = this.#live;
    clear(this.#list);
    for (const m of this.#messages) {
      if (live && m.id === live.assistantMessageId) continue;
      const body = h("div", { class: "msg-body" });
      if (m.role === Role.ASSISTANT) setMarkdown(body, m.content);
      else body.textContent = m.content;
      const showStatus = m.status === MessageStatus.COMPLETED ? undefined : m.status;
      const li = this.#bubble(m.role, m.id, body, showStatus, m.error);
      if (m.id === mismatchId) li.dataset.mismatch = "true";
      this.#list.appendChild(li);
    }
    if (this.#pending && !this.#messages.some((m) => m.id === this.#pending?.id)) {
      const body = h("div", { class: "msg-body" }, this.#pending.content);
      this.#list.appendChild(this.#bubble(Role.USER, this.#pending.id, body));
    }
    this.#liveItem = undefined;
    this.#liveBody = undefined;
    if (live) {
      const body = h("div", { class: "msg-body", "aria-live": "polite", "aria-atomic": "false" });
      setMarkdown(body, live.reply.text);
      this.#liveBody = body;
      this.#liveItem = this.#bubble(Role.ASSISTANT, live.assistantMessageId, body, MessageStatus.STREAMING);
      this.#liveItem.classList.add("live");
      this.#liveItem.dataset.streamId = live.reply.streamId;
      this.#list.appendChild(this.#liveItem);
    }
    this.#stop.disabled = !live;
    this.#send.disabled = Boolean(live || this.#pending);
    this.el.dataset.streaming = live || this.#pending ? "true" : "false";
    this.#scrollDown();
  }

  #queueLiveRender(): void {
    if (this.#renderQueued) return;
    this.#renderQueued = true;
    setTimeout(() => {
      this.#renderQueued = false;
      if (this.#live && this.#liveBody) {
        setMarkdown(this.#liveBody, this.#live.reply.text);
        this.#scrollDown();
      } else if (this.#live) {
        this.#render();
      }
    }, 16);
  }

  #scrollDown(): void {
    this.#list.scrollTop = this.#list.scrollHeight;
  }
}
