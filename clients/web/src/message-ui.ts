/**
 * The controls on chat messages, as plain DOM builders: the swipe arrows and
 * Regenerate / Retry / Continue of the last reply, the Edit / Delete /
 * Rewind / Fork row of every message, the inline editor and the inline
 * confirmations. They hold no state: the chat view (src/chat.ts) keeps it,
 * makes the calls and renders again.
 *
 * Every button has a `data-action`, so the view can put the focus back on the
 * same control of the same message after it renders the list again.
 */
import { MessageStatus, Role, type Message } from "./gen/roleplay/v1/chat_session_pb.js";
import { h } from "./dom.js";

function tool(action: string, label: string, onClick: () => void, props: Record<string, string | boolean | undefined> = {}): HTMLButtonElement {
  const b = h("button", { type: "button", class: "tool", "data-action": action, ...props }, label);
  b.addEventListener("click", onClick);
  return b;
}

const CANCEL_REASONS: Record<string, string> = {
  requested: "stopped on request",
  idle_timeout: "stopped: nobody was watching",
  shutdown: "stopped: the server shut down",
};

/** Why a reply did not complete, in words (with the failure code), or undefined for a completed one. */
export function endNote(m: Message): string | undefined {
  if (m.role !== Role.ASSISTANT) return m.error || undefined;
  const reason = m.finishReason ?? "";
  switch (m.status) {
    case MessageStatus.FAILED:
      if (m.error && /\([A-Z_]+\)$/.test(m.error)) return m.error;
      return `${m.error || "the reply failed"}${reason ? ` (${reason.toUpperCase()})` : ""}`;
    case MessageStatus.CANCELLED:
      return m.error || CANCEL_REASONS[reason] || "stopped before the end";
    case MessageStatus.INTERRUPTED:
      return m.error || "the server stopped while this reply was being generated";
    default:
      return m.error || undefined;
  }
}

/** Whether a reply ended without completing, so it is retried rather than regenerated. */
export function unfinished(m: Message): boolean {
  return m.status === MessageStatus.FAILED || m.status === MessageStatus.CANCELLED || m.status === MessageStatus.INTERRUPTED;
}

export interface ReplyToolHandlers {
  previous: () => void;
  /** The next alternative; at the last one, a new one (as SillyTavern's right arrow). */
  next: () => void;
  regenerate: () => void;
  continueReply: () => void;
}

/** "‹ 2/3 ›", Regenerate (Retry for a failed or stopped reply) and Continue, for the chat's last reply. */
export function replyTools(m: Message, disabled: boolean, on: ReplyToolHandlers): HTMLElement {
  const count = Math.max(1, m.alternativeCount);
  const index = Math.min(m.alternativeIndex, count - 1);
  const atLast = index >= count - 1;
  const swipe = h(
    "div",
    { class: "swipe", role: "group", "aria-label": "Alternatives" },
    tool("previous", "‹", on.previous, { "aria-label": "Previous alternative", disabled: disabled || index === 0 }),
    h("span", { class: "swipe-count", title: `Alternative ${index + 1} of ${count}` }, `${index + 1}/${count}`),
    tool("next", "›", on.next, {
      "aria-label": atLast ? "New alternative (regenerate)" : "Next alternative",
      disabled,
    }),
  );
  const retry = unfinished(m);
  return h(
    "div",
    { class: "reply-tools" },
    swipe,
    tool("regenerate", retry ? "Retry" : "Regenerate", on.regenerate, { disabled }),
    tool("continue", "Continue", on.continueReply, { disabled: disabled || m.content === "" }),
  );
}

/** For a chat that ends with the user's message (its reply was deleted or rewound away, or never came). */
export function answerTool(disabled: boolean, onClick: () => void): HTMLElement {
  return h("div", { class: "reply-tools" }, tool("answer", "Get a reply", onClick, { disabled }));
}

export interface MessageToolHandlers {
  edit: () => void;
  remove: () => void;
  /** Undefined for the last message: there is nothing after it to rewind. */
  rewind?: () => void;
  fork: () => void;
}

/**
 * Edit, Delete, Rewind to here, Fork from here: on every stored message.
 * Never disabled (that would drop the keyboard focus): the view ignores a
 * second call while one is on its way.
 */
export function messageTools(label: string, on: MessageToolHandlers): HTMLElement {
  return h(
    "div",
    { class: "msg-actions", role: "group", "aria-label": label },
    tool("edit", "Edit", on.edit),
    tool("delete", "Delete", on.remove),
    on.rewind ? tool("rewind", "Rewind to here", on.rewind, { title: "Delete every later message" }) : null,
    tool("fork", "Fork from here", on.fork, { title: "A new chat with the messages up to this one" }),
  );
}

/**
 * An inline question with a confirming and a cancelling button, as the chats
 * list asks before deleting. Escape cancels.
 */
export function confirmBar(question: string, yesLabel: string, yesAria: string, onYes: () => void, onNo: () => void): HTMLElement {
  const bar = h(
    "div",
    { class: "confirm" },
    h("span", { role: "alert" }, question),
    tool("confirm", yesLabel, onYes, { class: "tool danger", "aria-label": yesAria }),
    tool("cancel-confirm", "Cancel", onNo),
  );
  bar.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      onNo();
    }
  });
  return bar;
}

/**
 * The inline editor: the message's textarea (kept by the view across
 * renders, so the draft and the caret survive) with Save and Cancel. As in
 * the composer, Enter saves, Shift+Enter adds a line and Escape cancels.
 */
export function editor(input: HTMLTextAreaElement, saving: boolean, onSave: () => void, onCancel: () => void): HTMLElement {
  input.disabled = saving;
  const form = h(
    "form",
    { class: "edit", "aria-label": "Edit the message" },
    input,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "tool primary", "data-action": "save-edit", disabled: saving }, saving ? "Saving…" : "Save"),
      tool("cancel-edit", "Cancel", onCancel, { disabled: saving }),
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    onSave();
  });
  return form;
}

/** A textarea for editing `content`, with the composer's keys. */
export function editInput(content: string, onSave: () => void, onCancel: () => void): HTMLTextAreaElement {
  const lines = content.split("\n").length;
  const input = h("textarea", {
    class: "edit-input",
    "aria-label": "Message text",
    rows: Math.min(12, Math.max(2, lines + 1)),
  });
  input.value = content;
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      onSave();
    } else if (e.key === "Escape") {
      // Not the page's Escape (which stops a running reply).
      e.preventDefault();
      e.stopPropagation();
      onCancel();
    }
  });
  return input;
}
