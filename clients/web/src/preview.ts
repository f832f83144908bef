/**
 * The prompt preview (PreviewPrompt): what the next message would send, in
 * order, with each message's role, source and tokens; the totals against the
 * context; the history left out; the lorebook entries activated and why; and
 * the server's warning.
 */
import { PromptSource, type PromptPreview } from "./gen/roleplay/v1/message_pb.js";
import { h } from "./dom.js";

export const SOURCE_LABEL: Record<number, string> = {
  [PromptSource.UNSPECIFIED]: "other",
  [PromptSource.SYSTEM]: "system prompt",
  [PromptSource.EXAMPLE]: "example dialogue",
  [PromptSource.HISTORY]: "history",
  [PromptSource.LORE]: "lorebook",
  [PromptSource.AUTHORS_NOTE]: "author's note",
  [PromptSource.POST_HISTORY]: "post-history instructions",
  [PromptSource.NEW_MESSAGE]: "new message",
  [PromptSource.CONTINUED_REPLY]: "continued reply",
};

/** "authors_note", "new_message", ... for data-source attributes (tests, styling). */
function sourceKey(source: PromptSource): string {
  return (PromptSource[source] ?? "UNSPECIFIED").toLowerCase();
}

function n(x: number): string {
  return x.toLocaleString("en-US");
}

export function renderPreview(p: PromptPreview): HTMLElement {
  const free = p.contextTokens - p.replyTokens;
  const totals =
    `${n(p.promptTokens)} prompt tokens of ${n(p.contextTokens)} in the context ` +
    `(${n(p.replyTokens)} kept for the reply, ${n(Math.max(0, free - p.promptTokens))} to spare).`;
  const history =
    p.historyOmitted > 0
      ? `History: ${p.historyIncluded} messages included, ${p.historyOmitted} left out (the oldest) to fit.`
      : `History: all ${p.historyIncluded} messages included.`;
  return h(
    "section",
    { class: "panel preview", "aria-labelledby": "preview-h" },
    h("h3", { id: "preview-h" }, "Prompt preview"),
    p.warning ? h("p", { class: "warn", role: "note" }, `Warning: ${p.warning}`) : null,
    h("p", { class: "preview-totals" }, totals),
    h("p", { class: "hint" }, `Model ${p.model || "?"}, counted with ${p.tokenizer || "?"}.`),
    h("p", { class: "preview-history" }, history),
    p.omittedMessageIds.length
      ? h("details", null, h("summary", null, "Left out"), h("ul", { class: "plain mono" }, p.omittedMessageIds.map((id) => h("li", null, id))))
      : null,
    h("h4", null, `Lorebook entries (${p.activatedEntries.length})`),
    p.activatedEntries.length
      ? h(
          "ul",
          { class: "plain activated", "aria-label": "Activated lorebook entries" },
          p.activatedEntries.map((a) =>
            h(
              "li",
              { class: "activated-entry" },
              h("strong", null, `${a.lorebook} / ${a.entry}`),
              h("span", { class: "reason" }, ` — ${a.reason}`),
              h("div", { class: "preview-content" }, a.content),
            ),
          ),
        )
      : h("p", { class: "empty" }, "None activated."),
    h("h4", null, `Messages (${p.messages.length})`),
    h(
      "ol",
      { class: "preview-messages", "aria-label": "Prompt messages" },
      p.messages.map((m) =>
        h(
          "li",
          { class: "preview-message", "data-source": sourceKey(m.source), "data-role": m.role },
          h("div", { class: "preview-meta" }, h("strong", null, m.role), ` · ${SOURCE_LABEL[m.source] ?? "other"} · ${n(m.tokens)} tokens`),
          h("div", { class: "preview-content" }, m.content),
        ),
      ),
    ),
  );
}
