/**
 * The chat view: the messages, the reply streaming in, sending, stopping,
 * swipes (regenerate, continue, select an alternative), editing, and staying
 * connected.
 *
 * Every open view follows the chat with SubscribeChatSession (so a second tab
 * shows the same reply live), resuming from {streamId, offset} after a drop.
 * The sender's AddUserMessageStreaming delivers the same events; both feed
 * one {@link ReplyText}, which merges them by UTF-8 byte offset. The running
 * reply is saved in sessionStorage on every delta, so a reload shows the text
 * so far at once and resumes from its offset: nothing lost, nothing doubled.
 *
 * RegenerateReply and ContinueReply stream through the same path as a sent
 * message. A continuation's offsets count from the start of the whole
 * message, so its text starts as the message's old text (when that is
 * exactly `continues_from` bytes) and the new deltas append to it. Edits,
 * deletions, selections and rewinds from any tab reach every follower as
 * ChatChanged, which reloads the messages.
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
import { CancelReason, FailureCode, ReplyKind, type GenerationEvent } from "./gen/roleplay/v1/message_pb.js";
import { allPages, api, Code, ConnectError, describeError, UNARY } from "./api.js";
import { avatar } from "./avatars.js";
import { clear, h } from "./dom.js";
import { setMarkdown } from "./markdown.js";
import { chatSettingsPanel } from "./chat-settings.js";
import { renderPreview } from "./preview.js";
import { answerTool, confirmBar, editInput, editor, endNote, messageTools, replyTools } from "./message-ui.js";
import { backoffDelay, parseSavedReply, ReplyText, utf8Length, type SavedReply } from "./reply.js";

type ConnState = "connecting" | "live" | "reconnecting" | "offline" | "stopped";

interface Live {
  reply: ReplyText;
  assistantMessageId: string;
  userMessageId: string;
  model: string;
  /** From Started (unknown, 0, for a reply restored after a reload). */
  kind: ReplyKind;
  alternativeIndex: number;
  alternativeCount: number;
}

/** What the sender asks for: a new message, a new alternative of the last reply, or more of it. */
type ReplyRequest = { kind: "send"; content: string } | { kind: "regenerate" } | { kind: "continue" };

/** An inline confirmation open on a message. */
interface Confirming {
  id: string;
  action: "delete" | "rewind";
}

/** The message being edited; its textarea is kept across renders (draft, caret, focus). */
interface Editing {
  id: string;
  input: HTMLTextAreaElement;
  saving: boolean;
}

/** Errors after which the follower re-subscribes. */
const RETRYABLE = new Set([Code.Unavailable, Code.Aborted, Code.Internal, Code.Unknown, Code.ResourceExhausted, Code.DeadlineExceeded, Code.Canceled]);

function cancelReasonName(reason: CancelReason): string {
  return reason === CancelReason.IDLE_TIMEOUT ? "idle_timeout" : reason === CancelReason.SHUTDOWN ? "shutdown" : "requested";
}

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
  /** The character's avatar path: from GetCharacter, then from ListMessages (Message.avatar_url), which follows a change. */
  #avatarUrl = "";
  #userName = "You";
  #messages: Message[] = [];
  /** Reply ids (stream ids) whose end this view has already shown. */
  #finished = new Set<string>();
  /** The messages of replies this view saw end, by stream id. */
  #ended = new Map<string, Message>();
  #live: Live | undefined;
  /** The user's message being sent, until the server's list has it. */
  #pending: { content: string; id: string } | undefined;
  /** A regeneration or continuation asked for, until its Started (or refusal). */
  #requesting: "regenerate" | "continue" | undefined;
  #editing: Editing | undefined;
  #confirming: Confirming | undefined;
  /** An edit, deletion, rewind, selection or fork is on its way: the message tools wait. */
  #acting = false;
  /** Message lists asked for; only the newest one asked for is applied. */
  #loadSeq = 0;
  /** The next render scrolls to the end (a message sent, a reply started). */
  #toEnd = true;
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
  /** The settings panel or the prompt preview, above the messages. */
  #side = h("div", { class: "chat-side", id: "chat-side", hidden: true });
  #sideKind: "settings" | "preview" | undefined;
  #sideSeq = 0;
  #settingsButton = h("button", { type: "button", id: "chat-settings-toggle", "aria-expanded": "false", "aria-controls": "chat-side" }, "Chat settings");
  #previewButton = h("button", { type: "button", id: "preview-prompt", "aria-controls": "chat-side", title: "What the message in the box would send" }, "Preview prompt");

  constructor(chatId: string) {
    this.#chatId = chatId;
    const form = h(
      "form",
      { class: "composer", "aria-label": "Send a message" },
      h("label", { for: "composer", class: "visually-hidden" }, "Message"),
      this.#input,
      h("div", { class: "composer-buttons" }, this.#send, this.#stop),
      h(
        "small",
        { id: "composer-hint", class: "hint" },
        "Enter sends, Shift+Enter adds a line, Escape stops the reply; with the box empty, ← and → switch alternatives.",
      ),
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
    this.#settingsButton.addEventListener("click", () => void this.#toggleSettings());
    this.#previewButton.addEventListener("click", () => void this.#showPreview());
    this.#side.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !this.#live) {
        e.preventDefault();
        const back = this.#sideKind === "preview" ? this.#previewButton : this.#settingsButton;
        this.#closeSide();
        back.focus();
      }
    });
    this.el = h(
      "section",
      { class: "chat", "aria-labelledby": "chat-title" },
      h("header", { class: "chat-head" }, this.#title, this.#connStatus, h("div", { class: "actions chat-tools" }, this.#previewButton, this.#settingsButton)),
      this.#side,
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
      if (character) {
        this.#charName = character.name;
        this.#avatarUrl = character.avatarUrl;
      }
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
      kind: ReplyKind.UNSPECIFIED,
      alternativeIndex: 0,
      alternativeCount: 0,
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
    const seq = ++this.#loadSeq;
    const messages = await allPages(async (pageToken) => {
      const r = await api.chats.listMessages({ chatSessionId: this.#chatId, pageSize: 500, pageToken }, UNARY);
      return { items: r.messages, next: r.nextPageToken };
    });
    // A list asked for earlier can arrive later (an edit's own reload and its
    // ChatChanged's): the newest request wins.
    if (seq !== this.#loadSeq) return;
    // A list read while a reply ran can arrive after its end: keep the ended version.
    for (let i = 0; i < messages.length; i++) {
      const ended = messages[i].streamId ? this.#ended.get(messages[i].streamId ?? "") : undefined;
      if (ended && messages[i].status === MessageStatus.STREAMING) messages[i] = ended;
    }
    this.#messages = messages;
    // Listed assistant messages carry the avatar (streamed ones do not).
    const listedReply = messages.find((m) => m.role === Role.ASSISTANT);
    if (listedReply) this.#avatarUrl = listedReply.avatarUrl;
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
          kind: ReplyKind.UNSPECIFIED,
          alternativeIndex: running.alternativeIndex,
          alternativeCount: running.alternativeCount,
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
          this.#live.kind = s.kind;
          if (s.alternativeCount > 0) {
            this.#live.alternativeIndex = s.alternativeIndex;
            this.#live.alternativeCount = s.alternativeCount;
          }
          return true;
        }
        if (this.#live) {
          // A newer reply started before we saw the end of ours: the list has it.
          this.#finished.add(this.#live.reply.streamId);
          this.#live = undefined;
          void this.#reload();
        }
        // A continuation starts from the message's old text: its deltas count
        // from the message's start, the new text from continues_from. A
        // follower is sent the whole text from 0 anyway, so with a stale copy
        // the text simply starts empty.
        const existing = s.assistantMessageId ? this.#messages.find((m) => m.id === s.assistantMessageId) : undefined;
        const from = Number(s.continuesFrom);
        const prefix = s.kind === ReplyKind.CONTINUE && from > 0 && existing && utf8Length(existing.content) === from ? existing.content : "";
        this.#live = {
          reply: new ReplyText(s.streamId, prefix),
          assistantMessageId: s.assistantMessageId,
          userMessageId: s.userMessageId,
          model: s.model,
          kind: s.kind,
          alternativeIndex: s.alternativeIndex,
          alternativeCount: s.alternativeCount,
        };
        this.#position = { streamId: s.streamId, offset: utf8Length(prefix) };
        const sent = s.kind === ReplyKind.SEND || s.kind === ReplyKind.UNSPECIFIED;
        if (sent && this.#pending && !this.#pending.id) this.#pending.id = s.userMessageId;
        // The message a regeneration or continuation fills is being replaced:
        // an edit or confirmation open on it has nothing left to act on.
        if (this.#editing?.id === s.assistantMessageId) this.#editing = undefined;
        if (this.#confirming?.id === s.assistantMessageId) this.#confirming = undefined;
        const knownUser = !s.userMessageId || this.#messages.some((m) => m.id === s.userMessageId) || this.#pending?.id === s.userMessageId;
        const knownReply = s.kind !== ReplyKind.CONTINUE || existing !== undefined;
        this.#save();
        if (!knownUser || !knownReply) void this.#reload(); // sent from elsewhere: fetch what we lack
        this.#toEnd = true;
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
        const id = live.assistantMessageId || stored?.id || streamId;
        const before = this.#messages.find((m) => m.id === id);
        // A whole Message to spread (not `{}`), so the literal has every
        // required field of Message. Without a stored message (failed,
        // stopped), the alternative is the one Started named; a continuation
        // keeps the message's.
        const message = create(MessageSchema, {
          ...(stored ?? create(MessageSchema)),
          ...(stored
            ? {}
            : {
                alternativeIndex: live.alternativeCount > 0 ? live.alternativeIndex : (before?.alternativeIndex ?? 0),
                alternativeCount: live.alternativeCount > 0 ? live.alternativeCount : Math.max(1, before?.alternativeCount ?? 1),
                finishReason: e.case === "cancelled" ? cancelReasonName(e.value.reason) : undefined,
              }),
          id,
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
      case "chatChanged":
        // Edited, deleted, selected or rewound (here or in another tab), or
        // too many changes to list: the list says how the chat is now.
        if (!e.value.chatSessionId || e.value.chatSessionId === this.#chatId) void this.#reload();
        return true;
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
      return;
    }
    // ← and → swipe the last reply, as in SillyTavern: from the empty message
    // box, or when no text field has the focus.
    if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && !e.altKey && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      const t = document.activeElement;
      const typing = t instanceof HTMLTextAreaElement || t instanceof HTMLInputElement || t instanceof HTMLSelectElement;
      if (typing && !(t === this.#input && this.#input.value === "")) return;
      const last = this.#messages[this.#messages.length - 1];
      if (!last || last.role !== Role.ASSISTANT || this.#busy() || this.#acting || this.#editing) return;
      e.preventDefault();
      this.#swipe(last, e.key === "ArrowLeft" ? -1 : 1);
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

  // --- Settings and the prompt preview ---------------------------------------------

  #closeSide(): void {
    this.#sideSeq += 1;
    this.#sideKind = undefined;
    this.#side.hidden = true;
    clear(this.#side);
    this.#settingsButton.setAttribute("aria-expanded", "false");
  }

  /** Shows `build()`'s panel (or its error) in the side area, with a Close button. */
  async #openSide(kind: "settings" | "preview", build: () => Promise<HTMLElement>): Promise<void> {
    const seq = ++this.#sideSeq;
    this.#sideKind = kind;
    this.#settingsButton.setAttribute("aria-expanded", String(kind === "settings"));
    clear(this.#side);
    this.#side.hidden = false;
    this.#side.append(h("p", { class: "loading", role: "status" }, "Loading…"));
    let panel: HTMLElement;
    try {
      panel = await build();
    } catch (err) {
      panel = h("p", { class: "error", role: "alert" }, `${kind === "preview" ? "No preview" : "Could not load the settings"}: ${describeError(err)}`);
    }
    if (seq !== this.#sideSeq || this.#disposed) return;
    const close = h("button", { type: "button", class: "side-close", "aria-label": kind === "preview" ? "Close the preview" : "Close chat settings" }, "Close");
    close.addEventListener("click", () => {
      const back = this.#sideKind === "preview" ? this.#previewButton : this.#settingsButton;
      this.#closeSide();
      back.focus();
    });
    clear(this.#side);
    this.#side.append(close, panel);
    this.#side.querySelector<HTMLElement>("h3")?.setAttribute("tabindex", "-1");
    if (kind === "settings") this.#side.querySelector<HTMLInputElement>("input")?.focus();
  }

  async #toggleSettings(): Promise<void> {
    if (this.#sideKind === "settings") {
      this.#closeSide();
      return;
    }
    await this.#openSide("settings", async () => {
      const chat = await api.chats.getChatSession({ id: this.#chatId }, UNARY);
      this.#chat = chat;
      return chatSettingsPanel(chat, this.#charName, (saved) => {
        this.#chat = saved;
        this.#title.textContent = saved.title || `Chat with ${this.#charName}`;
      });
    });
  }

  /** PreviewPrompt for the text in the composer. */
  async #showPreview(): Promise<void> {
    const content = this.#input.value;
    await this.#openSide("preview", async () => renderPreview(await api.messages.previewPrompt({ chatSessionId: this.#chatId, content }, UNARY)));
  }

  // --- Sending and stopping -----------------------------------------------------

  /** Whether a reply is running, being sent or asked for: no second one, no swipes. */
  #busy(): boolean {
    return Boolean(this.#live || this.#pending || this.#requesting);
  }

  async #sendMessage(): Promise<void> {
    const content = this.#input.value;
    if (!content.trim() || this.#busy()) return;
    this.#hideError();
    this.#pending = { content, id: "" };
    this.#input.value = "";
    this.#toEnd = true;
    this.#render();
    await this.#streamReply({ kind: "send", content });
  }

  /** RegenerateReply (a new alternative, or the retry of a failed reply) or ContinueReply. */
  async #askReply(kind: "regenerate" | "continue"): Promise<void> {
    if (this.#busy()) return;
    this.#hideError();
    this.#editing = undefined;
    this.#confirming = undefined;
    this.#requesting = kind;
    this.#toEnd = true;
    this.#render();
    await this.#streamReply({ kind });
  }

  /**
   * Runs the sender's stream of a reply until its end. Its events go through
   * {@link #handle} like the follower's; when it drops after Started, the
   * follower has the reply (and resumes it), so that is no error.
   */
  async #streamReply(request: ReplyRequest): Promise<void> {
    const ctrl = new AbortController();
    this.#sendCtrl = ctrl;
    const options = { signal: ctrl.signal };
    const chatSessionId = this.#chatId;
    let started = false;
    try {
      const stream =
        request.kind === "send"
          ? api.messages.addUserMessageStreaming({ chatSessionId, content: request.content }, options)
          : request.kind === "regenerate"
            ? api.messages.regenerateReply({ chatSessionId }, options)
            : api.messages.continueReply({ chatSessionId }, options);
      for await (const event of stream) {
        // The follower may have shown (even ended) this reply already, so
        // its Started can change nothing else: render for the request itself.
        const asked = event.event.case === "started" && this.#requesting !== undefined;
        if (event.event.case === "started") {
          started = true;
          this.#requesting = undefined;
        }
        this.#handle(event);
        if (asked) this.#render();
        const c = event.event.case;
        if (c === "completed" || c === "failed" || c === "cancelled") break;
      }
    } catch (err) {
      if (ctrl.signal.aborted || this.#disposed) {
        // Offline or closed: the follower resumes the reply.
      } else if (!started) {
        const e = ConnectError.from(err);
        const lost = RETRYABLE.has(e.code) && e.code !== Code.ResourceExhausted && e.code !== Code.Aborted;
        if (request.kind === "send") {
          if (lost) {
            // Lost before Started: it may or may not be stored. Never send twice; look.
            this.#showError(`The connection dropped while sending: ${describeError(e)}. Check the messages before sending again.`);
            this.#pending = undefined;
            await this.#reload();
          } else {
            this.#showError(`Not sent: ${describeError(e)}`);
            this.#pending = undefined;
            if (!this.#input.value) this.#input.value = request.content;
            this.#render();
          }
        } else {
          const what = request.kind === "regenerate" ? "regenerate the reply" : "continue the reply";
          this.#requesting = undefined;
          if (lost) {
            // It may have started: the follower shows it if so.
            this.#showError(`The connection dropped while asking to ${what}: ${describeError(e)}. Check the messages before asking again.`);
            await this.#reload();
          } else {
            this.#showError(`Could not ${what}: ${describeError(e)}`);
            this.#render();
          }
        }
      }
      // After Started a dropped send stream is not an error: the follower has the reply.
    } finally {
      ctrl.abort();
      if (this.#sendCtrl === ctrl) this.#sendCtrl = undefined;
      if (this.#requesting && request.kind !== "send") {
        this.#requesting = undefined;
        this.#render();
      }
    }
  }

  // --- Swipes and editing -------------------------------------------------------

  /** Runs one editing call with the message tools waiting; a refusal (ABORTED while a reply runs, ...) is shown with the server's words. */
  async #act(what: string, call: () => Promise<void>): Promise<void> {
    if (this.#acting) return;
    this.#acting = true;
    this.#hideError();
    try {
      await call();
    } catch (err) {
      this.#showError(`Could not ${what}: ${describeError(err)}`);
    } finally {
      this.#acting = false;
      this.#render();
    }
  }

  #replace(updated: Message): void {
    const i = this.#messages.findIndex((m) => m.id === updated.id);
    if (i >= 0) this.#messages[i] = updated;
  }

  /** Shows alternative `index` of the last reply (SelectAlternative). */
  #select(m: Message, index: number): void {
    if (this.#busy() || index < 0 || index >= m.alternativeCount) return;
    void this.#act(`switch to alternative ${index + 1}`, async () => {
      this.#replace(await api.messages.selectAlternative({ messageId: m.id, index }, UNARY));
      void this.#reload();
    });
  }

  /** ‹ and ›: the previous or next alternative; › on the last one regenerates, as in SillyTavern. */
  #swipe(m: Message, step: -1 | 1): void {
    if (step > 0 && m.alternativeIndex >= Math.max(1, m.alternativeCount) - 1) void this.#askReply("regenerate");
    else this.#select(m, m.alternativeIndex + step);
  }

  #startEdit(m: Message): void {
    const input = editInput(
      m.content,
      () => void this.#saveEdit(),
      () => this.#cancelEdit(),
    );
    this.#confirming = undefined;
    this.#editing = { id: m.id, input, saving: false };
    this.#render();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  #cancelEdit(): void {
    const id = this.#editing?.id;
    this.#editing = undefined;
    this.#render();
    this.#focusTool(id, "edit");
  }

  async #saveEdit(): Promise<void> {
    const editing = this.#editing;
    if (!editing || editing.saving) return;
    const content = editing.input.value;
    const before = this.#messages.find((m) => m.id === editing.id);
    if (before && content === before.content) {
      this.#cancelEdit();
      return;
    }
    if (!content.trim()) {
      this.#showError("A message cannot be empty: delete it instead.");
      editing.input.focus();
      return;
    }
    editing.saving = true;
    this.#hideError();
    this.#render();
    try {
      this.#replace(await api.messages.editMessage({ messageId: editing.id, content }, UNARY));
      if (this.#editing === editing) this.#editing = undefined;
      this.#render();
      this.#focusTool(editing.id, "edit");
      void this.#reload();
    } catch (err) {
      editing.saving = false;
      this.#showError(`Could not save the edit: ${describeError(err)}`);
      this.#render();
      if (this.#editing === editing) editing.input.focus();
    }
  }

  #ask(m: Message, action: Confirming["action"]): void {
    this.#editing = undefined;
    this.#confirming = { id: m.id, action };
    this.#render();
    this.#focusTool(m.id, "confirm");
  }

  #cancelConfirm(): void {
    const c = this.#confirming;
    this.#confirming = undefined;
    this.#render();
    if (c) this.#focusTool(c.id, c.action);
  }

  #remove(m: Message): void {
    void this.#act("delete the message", async () => {
      await api.messages.deleteMessage({ messageId: m.id }, UNARY);
      this.#confirming = undefined;
      this.#messages = this.#messages.filter((x) => x.id !== m.id);
      this.#input.focus();
      void this.#reload();
    });
  }

  #rewind(m: Message): void {
    void this.#act("rewind the chat", async () => {
      await api.messages.rewindChatSession({ chatSessionId: this.#chatId, messageId: m.id }, UNARY);
      this.#confirming = undefined;
      const i = this.#messages.findIndex((x) => x.id === m.id);
      if (i >= 0) this.#messages = this.#messages.slice(0, i + 1);
      this.#input.focus();
      void this.#reload();
    });
  }

  /** ForkChatSession: a new chat with the messages up to `m`, opened at once. */
  #fork(m: Message): void {
    void this.#act("fork the chat", async () => {
      const fork = await api.chats.forkChatSession({ chatSessionId: this.#chatId, messageId: m.id }, UNARY);
      location.hash = `#/chat/${fork.id}`;
    });
  }

  /** Focuses the control `action` of message `id` if it is on screen, else (disabled now, say) the message's first usable one. */
  #focusTool(id: string | undefined, action: string): void {
    if (!id) return;
    const li = [...this.#list.children].find((el) => (el as HTMLElement).dataset.id === id);
    if (!li) return;
    const usable = (el: HTMLElement | null) => (el && !(el instanceof HTMLButtonElement && el.disabled) ? el : null);
    const target = usable(li.querySelector<HTMLElement>(`[data-action="${action}"]`)) ?? li.querySelector<HTMLElement>("[data-action]:not(:disabled)");
    target?.focus({ preventScroll: true });
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

  #bubble(role: Role, id: string, body: HTMLElement, status?: MessageStatus, error?: string, ...extra: (HTMLElement | null)[]): HTMLLIElement {
    const who = role === Role.USER ? this.#userName : role === Role.ASSISTANT ? this.#charName : "System";
    const badge = status !== undefined && STATUS_LABEL[status] ? h("span", { class: `badge badge-${STATUS_LABEL[status]}` }, STATUS_LABEL[status]) : null;
    // The character's avatar beside its messages (the name is next to it: no alt text).
    const picture = role === Role.ASSISTANT && this.#avatarUrl ? avatar(this.#avatarUrl, "", "small") : null;
    picture?.classList.add("msg-avatar");
    return h(
      "li",
      { class: `msg msg-${role === Role.USER ? "user" : role === Role.ASSISTANT ? "assistant" : "system"}${picture ? " with-avatar" : ""}`, "data-id": id },
      picture,
      h("div", { class: "msg-meta" }, h("span", { class: "who" }, who), badge),
      body,
      error ? h("p", { class: "msg-error" }, error) : null,
      ...extra,
    );
  }

  /** One stored message with its tools: the last reply's swipes, the editor or a confirmation, Edit / Delete / Rewind / Fork. */
  #messageItem(m: Message, index: number, isLast: boolean): HTMLLIElement {
    const editing = this.#editing?.id === m.id ? this.#editing : undefined;
    const body = editing
      ? editor(
          editing.input,
          editing.saving,
          () => void this.#saveEdit(),
          () => this.#cancelEdit(),
        )
      : h("div", { class: "msg-body" });
    if (!editing) {
      if (m.role === Role.ASSISTANT) setMarkdown(body, m.content);
      else body.textContent = m.content;
    }
    const showStatus = m.status === MessageStatus.COMPLETED ? undefined : m.status;
    const idle = !this.#live && !this.#pending;
    const waiting = Boolean(this.#requesting);
    let reply: HTMLElement | null = null;
    if (isLast && idle && !editing) {
      if (m.role === Role.ASSISTANT) {
        reply = replyTools(m, waiting, {
          previous: () => this.#swipe(m, -1),
          next: () => this.#swipe(m, 1),
          regenerate: () => void this.#askReply("regenerate"),
          continueReply: () => void this.#askReply("continue"),
        });
      } else if (m.role === Role.USER) {
        reply = answerTool(waiting, () => void this.#askReply("regenerate"));
      }
    }
    const confirming = this.#confirming?.id === m.id ? this.#confirming : undefined;
    const who = m.role === Role.USER ? this.#userName : m.role === Role.ASSISTANT ? this.#charName : "System";
    let tools: HTMLElement | null = null;
    if (confirming) {
      tools =
        confirming.action === "delete"
          ? confirmBar("Delete this message?", "Yes, delete", "Really delete this message", () => this.#remove(m), () => this.#cancelConfirm())
          : confirmBar("Delete every message after this one?", "Yes, rewind", "Really delete every later message", () => this.#rewind(m), () => this.#cancelConfirm());
    } else if (!editing) {
      tools = messageTools(`Message ${index + 1}, ${who}`, {
        edit: () => this.#startEdit(m),
        remove: () => this.#ask(m, "delete"),
        rewind: isLast ? undefined : () => this.#ask(m, "rewind"),
        fork: () => this.#fork(m),
      });
    }
    const li = this.#bubble(m.role, m.id, body, showStatus, endNote(m), reply, tools);
    if (m.editedAt) li.querySelector(".msg-meta")?.appendChild(h("span", { class: "edited", title: "Edited" }, "edited"));
    return li;
  }

  #render(mismatchId?: string): void {
    const live = this.#live;
    // Rebuilding the list loses the focus: note which control had it.
    const active = document.activeElement instanceof HTMLElement && this.#list.contains(document.activeElement) ? document.activeElement : undefined;
    const activeId = active?.closest<HTMLElement>("li.msg")?.dataset.id;
    const activeAction = active?.dataset.action;
    const selection = active instanceof HTMLTextAreaElement ? [active.selectionStart, active.selectionEnd] : undefined;
    // Follow the end of the chat unless the reader scrolled up (to edit an
    // older message, say); a new message or reply goes to the end anyway.
    const scrollTop = this.#list.scrollTop;
    const atEnd = this.#list.scrollHeight - scrollTop - this.#list.clientHeight < 48;
    if (this.#editing && !this.#messages.some((m) => m.id === this.#editing?.id)) this.#editing = undefined;
    if (this.#confirming && !this.#messages.some((m) => m.id === this.#confirming?.id)) this.#confirming = undefined;
    clear(this.#list);
    const shown = this.#messages.filter((m) => !(live && m.id === live.assistantMessageId));
    const lastId = this.#messages[this.#messages.length - 1]?.id;
    shown.forEach((m, i) => {
      const li = this.#messageItem(m, i, m.id === lastId);
      if (m.id === mismatchId) li.dataset.mismatch = "true";
      this.#list.appendChild(li);
    });
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
      if (live.kind === ReplyKind.REGENERATE || live.kind === ReplyKind.CONTINUE) this.#liveItem.dataset.kind = live.kind === ReplyKind.REGENERATE ? "regenerate" : "continue";
      this.#list.appendChild(this.#liveItem);
    }
    this.#stop.disabled = !live;
    this.#send.disabled = this.#busy();
    this.el.dataset.streaming = this.#busy() ? "true" : "false";
    if (active?.isConnected) {
      // The editor's textarea is kept across renders.
      active.focus({ preventScroll: true });
      if (selection && active instanceof HTMLTextAreaElement) active.setSelectionRange(selection[0], selection[1]);
    } else if (activeId && activeAction) {
      this.#focusTool(activeId, activeAction);
    }
    if (atEnd || this.#toEnd) this.#scrollDown();
    else this.#list.scrollTop = scrollTop;
    this.#toEnd = false;
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
