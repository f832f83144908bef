/**
 * The chat settings panel: title, model, samplers, context length and the
 * author's note, saved with UpdateChatSession and a field mask naming only
 * what changed (`samplers.<field>` for single samplers); and which lorebooks
 * this chat and its character use (Attach/DetachLorebook).
 */
import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import type { ChatSession } from "./gen/roleplay/v1/chat_session_pb.js";
import type { Lorebook } from "./gen/roleplay/v1/lorebook_pb.js";
import { allPages, api, describeError, UNARY } from "./api.js";
import { clear, errorBox, field, h, input, note, showError, textarea } from "./dom.js";
import { loadCatalog, modelPicker } from "./models.js";
import { samplersForm } from "./samplers.js";

function optionalNumber(value: string): number | undefined {
  return value.trim() === "" ? undefined : Number(value);
}

export async function listLorebooks(): Promise<Lorebook[]> {
  return allPages(async (pageToken) => {
    const r = await api.lorebooks.listLorebooks({ pageSize: 500, pageToken }, UNARY);
    return { items: r.lorebooks, next: r.nextPageToken };
  });
}

/** The panel for `chat`; `onSaved` gets the chat as the server stored it. */
export async function chatSettingsPanel(chat: ChatSession, characterName: string, onSaved: (c: ChatSession) => void): Promise<HTMLElement> {
  const catalog = await loadCatalog();
  const error = errorBox();
  error.id = "chat-settings-error";
  const ok = h("p", { class: "ok", role: "status" });
  const title = input({ id: "chat-title-input", value: chat.title, maxlength: 200 });
  const model = modelPicker("chat-model", "Model", chat.model ?? "", catalog, "the global default model");
  const context = input({ id: "chat-context-tokens", type: "number", step: 1, inputmode: "numeric", value: chat.contextTokens ?? "", placeholder: "from the model's list" });
  const samplers = samplersForm(chat.samplers, "chat");
  const note_ = textarea(chat.authorsNote, 3);
  note_.id = "chat-authors-note";
  const depth = input({ id: "chat-authors-note-depth", type: "number", step: 1, min: 0, inputmode: "numeric", value: chat.authorsNoteDepth });

  const form = h(
    "form",
    { class: "panel chat-settings", "aria-labelledby": "chat-settings-h", "aria-describedby": "chat-settings-error" },
    h("h3", { id: "chat-settings-h" }, "Chat settings"),
    field("Title", title),
    model.el,
    field("Context length (tokens)", context, "256 to 10,000,000; empty: the model's own, from the provider's list."),
    samplers.el,
    h(
      "fieldset",
      null,
      h("legend", null, "Author's note"),
      field("Note", note_, "A system message placed in the history; empty for none."),
      field("Depth", depth, "Messages from the end: 0 is just before the new message."),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save chat settings")),
    error,
    ok,
  );

  let current = chat;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    ok.textContent = "";
    const problem = samplers.problem();
    if (problem) {
      showError(error, problem);
      return;
    }
    const paths: string[] = [];
    const newModel = model.input.value.trim() === "" ? undefined : model.input.value.trim();
    const newContext = optionalNumber(context.value);
    const newDepth = optionalNumber(depth.value) ?? 0;
    if (title.value !== current.title) paths.push("title");
    if (newModel !== current.model) paths.push("model");
    if (newContext !== current.contextTokens) paths.push("context_tokens");
    paths.push(...samplers.changed(current.samplers).map((p) => `samplers.${p}`));
    if (note_.value !== current.authorsNote) paths.push("authors_note");
    if (newDepth !== current.authorsNoteDepth) paths.push("authors_note_depth");
    if (paths.length === 0) {
      error.hidden = true;
      note(ok, "Nothing changed.");
      return;
    }
    try {
      const saved = await api.chats.updateChatSession(
        {
          chatSession: {
            id: current.id,
            title: title.value,
            model: newModel,
            contextTokens: newContext,
            samplers: samplers.read(),
            authorsNote: note_.value,
            authorsNoteDepth: newDepth,
          },
          updateMask: create(FieldMaskSchema, { paths }),
        },
        UNARY,
      );
      current = saved;
      error.hidden = true;
      note(ok, "Saved.");
      onSaved(saved);
    } catch (err) {
      showError(error, `Not saved: ${describeError(err)}`);
    }
  });

  return h("div", { class: "chat-side-inner" }, form, await lorebookAttachments(chat, characterName));
}

/** A checkbox per lorebook and target: attached to this chat, attached to its character. */
async function lorebookAttachments(chat: ChatSession, characterName: string): Promise<HTMLElement> {
  const error = errorBox();
  const box = h("div", { class: "panel", role: "group", "aria-labelledby": "chat-lore-h" }, h("h3", { id: "chat-lore-h" }, "Lorebooks"));
  let books: Lorebook[];
  try {
    books = await listLorebooks();
  } catch (err) {
    box.append(h("p", { class: "hint" }, `Lorebooks are not available: ${describeError(err)}`));
    return box;
  }
  const list = h("ul", { class: "plain" });
  const render = () => {
    clear(list);
    if (books.length === 0) list.append(h("li", { class: "empty" }, "No lorebooks yet. ", h("a", { href: "#/lorebooks" }, "Create one"), "."));
    books.forEach((book, i) => {
      const toggle = (label: string, attached: boolean, target: { case: "chatSessionId" | "characterId"; value: string }) => {
        const cb = h("input", { type: "checkbox", checked: attached, "aria-label": `${label}: ${book.name}` });
        cb.addEventListener("change", async () => {
          cb.disabled = true;
          try {
            const req = { lorebookId: book.id, target };
            books[i] = cb.checked ? await api.lorebooks.attachLorebook(req, UNARY) : await api.lorebooks.detachLorebook(req, UNARY);
            error.hidden = true;
          } catch (err) {
            cb.checked = !cb.checked;
            showError(error, `Could not change ${book.name}: ${describeError(err)}`);
          }
          cb.disabled = false;
        });
        return h("label", { class: "check" }, cb, ` ${label}`);
      };
      list.append(
        h(
          "li",
          { "data-lorebook-id": book.id },
          h("span", { class: "card-title" }, book.name),
          h("span", { class: "meta" }, ` (${book.entryCount} entries) `),
          toggle("This chat", book.chatSessionIds.includes(chat.id), { case: "chatSessionId", value: chat.id }),
          toggle(`Character ${characterName}`, book.characterIds.includes(chat.characterId), { case: "characterId", value: chat.characterId }),
        ),
      );
    });
  };
  render();
  box.append(list, error);
  return box;
}
