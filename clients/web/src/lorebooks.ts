/**
 * The lorebooks screen (LorebookService): the books, create / rename /
 * delete, their entries (keys, secondary keys and logic, content, constant,
 * enabled, position and depth, order, probability), import and export of
 * SillyTavern world-info JSON, and attaching a book to characters and chats.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  EntryPosition,
  LorebookEntrySchema,
  EntryRole,
  SelectiveLogic,
  type Lorebook,
  type LorebookEntry,
} from "./gen/roleplay/v1/lorebook_pb.js";
import type { Character } from "./gen/roleplay/v1/character_pb.js";
import type { ChatSession } from "./gen/roleplay/v1/chat_session_pb.js";
import { api, describeError, UNARY } from "./api.js";
import { listCharacters } from "./characters.js";
import { listLorebooks } from "./chat-settings.js";
import { clear, errorBox, field, h, input, note, showError, textarea, uid } from "./dom.js";
import { download, readFile } from "./files.js";
import { listChats } from "./views.js";

type EntryInit = MessageInitShape<typeof LorebookEntrySchema>;

const LOGIC: [SelectiveLogic, string][] = [
  [SelectiveLogic.AND_ANY, "AND ANY: a secondary key matches too"],
  [SelectiveLogic.AND_ALL, "AND ALL: every secondary key matches"],
  [SelectiveLogic.NOT_ANY, "NOT ANY: no secondary key matches"],
  [SelectiveLogic.NOT_ALL, "NOT ALL: not every secondary key matches"],
];

const POSITION: [EntryPosition, string][] = [
  [EntryPosition.BEFORE_CHARACTER, "Before the character"],
  [EntryPosition.AFTER_CHARACTER, "After the character"],
  [EntryPosition.AUTHORS_NOTE_TOP, "Top of the author's note"],
  [EntryPosition.AUTHORS_NOTE_BOTTOM, "Bottom of the author's note"],
  [EntryPosition.AT_DEPTH, "In the history, at a depth"],
  [EntryPosition.EXAMPLES_TOP, "Before the example dialogues"],
  [EntryPosition.EXAMPLES_BOTTOM, "After the example dialogues"],
];

const ROLE: [EntryRole, string][] = [
  [EntryRole.SYSTEM, "system"],
  [EntryRole.USER, "user"],
  [EntryRole.ASSISTANT, "assistant"],
];

function select(id: string, options: [number, string][], value: number): HTMLSelectElement {
  return h("select", { id }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

function keyList(text: string): string[] {
  return text.split(",").map((k) => k.trim()).filter(Boolean);
}

function check(label: string, checked: boolean): { el: HTMLElement; box: HTMLInputElement } {
  const box = h("input", { type: "checkbox", id: uid("cb"), checked });
  return { el: h("div", { class: "field check" }, box, h("label", { for: box.id }, label)), box };
}

function entryName(e: LorebookEntry): string {
  return e.comment || (e.keys.length ? e.keys.join(", ") : `#${e.id}`);
}

/** The form for one entry (new when `entry` is undefined); `save` gets the entry as entered. */
function entryForm(entry: LorebookEntry | undefined, save: (e: EntryInit) => Promise<void>, remove?: () => Promise<void>): HTMLElement {
  const p = uid("entry");
  const comment = input({ id: `${p}-comment`, value: entry?.comment ?? "", maxlength: 500 });
  const keys = input({ id: `${p}-keys`, value: entry?.keys.join(", ") ?? "" });
  const secondary = input({ id: `${p}-secondary`, value: entry?.secondaryKeys.join(", ") ?? "" });
  const logic = select(`${p}-logic`, LOGIC, entry?.selectiveLogic ?? SelectiveLogic.AND_ANY);
  const content = textarea(entry?.content ?? "", 4);
  content.id = `${p}-content`;
  const constant = check("Constant (always inserted)", entry?.constant ?? false);
  const enabled = check("Enabled", entry?.enabled ?? true);
  const position = select(`${p}-position`, POSITION, entry?.position ?? EntryPosition.BEFORE_CHARACTER);
  const depth = input({ id: `${p}-depth`, type: "number", min: 0, step: 1, value: entry?.depth ?? 4 });
  const role = select(`${p}-role`, ROLE, entry?.depthRole ?? EntryRole.SYSTEM);
  const order = input({ id: `${p}-order`, type: "number", step: 1, value: String(entry?.insertionOrder ?? 100n) });
  const probability = input({ id: `${p}-probability`, type: "number", min: 0, max: 100, step: 1, value: entry?.probability ?? "", placeholder: "always" });
  const error = errorBox();
  const atDepth = h("div", { class: "grid" }, field("Depth", depth, "Messages from the newest."), field("As role", role));
  const showDepth = () => (atDepth.hidden = Number(position.value) !== EntryPosition.AT_DEPTH);
  position.addEventListener("change", showDepth);
  showDepth();
  const label = entry ? `Entry ${entryName(entry)}` : "New entry";
  const form = h(
    "form",
    { class: "panel entry", "aria-label": label, "data-entry-id": entry ? String(entry.id) : "new" },
    h("h4", null, label),
    field("Name (comment)", comment),
    field("Keys", keys, "Comma-separated; any one activates the entry. /pattern/flags is a regular expression."),
    h("div", { class: "grid" }, field("Secondary keys", secondary, "Comma-separated, checked once a key matched."), field("Secondary logic", logic)),
    field("Content", content, "The text put into the prompt."),
    h("div", { class: "grid" }, constant.el, enabled.el),
    field("Position", position),
    atDepth,
    h("div", { class: "grid" }, field("Insertion order", order, "Higher goes later."), field("Probability (%)", probability, "Empty: always.")),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, entry ? "Save entry" : "Add entry"),
      remove ? h("button", { type: "button", class: "danger", "aria-label": `Delete ${label}`, onclick: () => void remove().catch((err: unknown) => showError(error, `Could not delete: ${describeError(err)}`)) }, "Delete entry") : null,
    ),
    error,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    let insertionOrder: bigint;
    try {
      insertionOrder = BigInt(order.value.trim() || "0");
    } catch {
      showError(error, "Insertion order must be a whole number.");
      return;
    }
    const value: EntryInit = {
      comment: comment.value,
      keys: keyList(keys.value),
      secondaryKeys: keyList(secondary.value),
      selectiveLogic: Number(logic.value),
      content: content.value,
      constant: constant.box.checked,
      enabled: enabled.box.checked,
      caseSensitive: entry?.caseSensitive,
      matchWholeWords: entry?.matchWholeWords,
      position: Number(position.value),
      depth: Number(depth.value || 0),
      depthRole: Number(role.value),
      insertionOrder,
      probability: probability.value.trim() === "" ? undefined : Number(probability.value),
    };
    save(value).then(
      () => (error.hidden = true),
      (err: unknown) => showError(error, `Not saved: ${describeError(err)}`),
    );
  });
  return form;
}

export async function lorebooksView(): Promise<HTMLElement> {
  const error = errorBox();
  const status = h("p", { class: "ok", role: "status" });
  const [books, characters, chats] = await Promise.all([listLorebooks(), listCharacters(), listChats()]);
  const list = h("ul", { class: "cards", "aria-label": "Lorebooks" });
  const editor = h("div", { class: "lorebook-editor" });
  let openId = "";

  const replace = (book: Lorebook) => {
    const i = books.findIndex((b) => b.id === book.id);
    if (i >= 0) books[i] = book;
    else books.push(book);
    renderList();
  };

  const renderList = () => {
    clear(list);
    if (books.length === 0) list.append(h("li", { class: "empty" }, "No lorebooks yet."));
    for (const book of books) {
      const actions = h("div", { class: "actions" });
      const open = h("button", { type: "button", "aria-label": `Edit ${book.name}` }, "Edit");
      open.addEventListener("click", () => void showBook(book.id));
      const exp = h("button", { type: "button", "aria-label": `Export ${book.name}` }, "Export");
      exp.addEventListener("click", async () => {
        try {
          const r = await api.lorebooks.exportLorebook({ id: book.id }, UNARY);
          download(r.data, "application/json", r.filename || `${book.name}.json`);
          note(status, `Exported ${book.name}.`);
        } catch (err) {
          showError(error, `Could not export: ${describeError(err)}`);
        }
      });
      const del = h("button", { type: "button", class: "danger", "aria-label": `Delete ${book.name}` }, "Delete");
      del.addEventListener("click", () => {
        clear(actions);
        const yes = h("button", { type: "button", class: "danger", "aria-label": `Really delete ${book.name}` }, "Yes, delete");
        const no = h("button", { type: "button", onclick: () => renderList() }, "Cancel");
        yes.addEventListener("click", async () => {
          yes.disabled = true;
          try {
            await api.lorebooks.deleteLorebook({ id: book.id }, UNARY);
            books.splice(books.indexOf(book), 1);
            if (openId === book.id) {
              openId = "";
              clear(editor);
            }
            note(status, `Deleted ${book.name}.`);
            renderList();
          } catch (err) {
            showError(error, `Could not delete: ${describeError(err)}`);
            yes.disabled = false;
          }
        });
        actions.append(h("span", { role: "alert" }, "Delete this lorebook and its entries?"), yes, no);
        yes.focus();
      });
      actions.append(open, exp, del);
      const attached = book.characterIds.length + book.chatSessionIds.length;
      list.append(
        h(
          "li",
          { class: "card", "data-lorebook-id": book.id },
          h("span", { class: "card-title" }, book.name),
          h("span", { class: "meta" }, `${book.entryCount} entries · ${attached ? `attached to ${attached}` : "not attached"}`),
          actions,
        ),
      );
    }
  };

  const showBook = async (id: string) => {
    let book: Lorebook;
    try {
      book = await api.lorebooks.getLorebook({ id }, UNARY);
    } catch (err) {
      showError(error, `Could not open the lorebook: ${describeError(err)}`);
      return;
    }
    openId = id;
    replace(book);
    clear(editor);
    editor.append(bookEditor(book, characters, chats, async () => void (await showBook(id)), replace));
    editor.querySelector<HTMLElement>("h3")?.focus();
  };

  // --- Create and import ---
  const name = input({ id: "new-lorebook-name", required: true, maxlength: 200 });
  const create = h(
    "form",
    { class: "panel", "aria-labelledby": "new-lorebook-h" },
    h("h3", { id: "new-lorebook-h" }, "New lorebook"),
    field("Name", name),
    h("button", { type: "submit", class: "primary" }, "Create lorebook"),
  );
  create.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const book = await api.lorebooks.createLorebook({ name: name.value }, UNARY);
      name.value = "";
      replace(book);
      note(status, `Created ${book.name}.`);
      await showBook(book.id);
    } catch (err) {
      showError(error, `Could not create: ${describeError(err)}`);
    }
  });
  const importInput = h("input", { type: "file", id: "import-lorebook", hidden: true, accept: ".json,application/json" });
  importInput.setAttribute("aria-label", "World-info JSON file to import");
  const importButton = h("button", { type: "button", id: "import-lorebook-button" }, "Import world info…");
  importButton.addEventListener("click", () => importInput.click());
  importInput.addEventListener("change", async () => {
    const file = importInput.files?.[0];
    importInput.value = "";
    if (!file) return;
    error.hidden = true;
    try {
      const book = await api.lorebooks.importLorebook({ data: await readFile(file), filename: file.name }, { timeoutMs: 60_000 });
      replace(book);
      note(status, `Imported ${book.name} (${book.entryCount} entries).`);
    } catch (err) {
      showError(error, `Could not import ${file.name}: ${describeError(err)}`);
    }
  });

  renderList();
  return h(
    "section",
    { class: "page", "aria-labelledby": "lorebooks-h" },
    h("h2", { id: "lorebooks-h" }, "Lorebooks"),
    h("div", { class: "actions" }, importButton, importInput),
    error,
    status,
    list,
    editor,
    create,
  );
}

/** One book: name and options, its attachments, its entries. */
function bookEditor(book: Lorebook, characters: Character[], chats: ChatSession[], reload: () => Promise<void>, replace: (b: Lorebook) => void): HTMLElement {
  const error = errorBox();
  const ok = h("p", { class: "ok", role: "status" });
  const name = input({ id: "lorebook-name", value: book.name, required: true, maxlength: 200 });
  const description = textarea(book.description, 2);
  const scanDepth = input({ id: "lorebook-scan-depth", type: "number", min: 0, step: 1, value: book.scanDepth ?? "", placeholder: "4" });
  const budget = input({ id: "lorebook-budget", type: "number", min: 0, step: 1, value: book.tokenBudget ?? "", placeholder: "no limit" });
  const recursive = check("Recursive scanning", book.recursiveScanning);
  const meta = h(
    "form",
    { class: "panel", "aria-label": `Lorebook ${book.name}` },
    field("Name", name),
    field("Description", description),
    h("div", { class: "grid" }, field("Scan depth", scanDepth, "History messages scanned for keys."), field("Token budget", budget)),
    recursive.el,
    h("button", { type: "submit", class: "primary" }, "Save lorebook"),
    error,
    ok,
  );
  meta.addEventListener("submit", async (e) => {
    e.preventDefault();
    const num = (v: string) => (v.trim() === "" ? undefined : Number(v));
    try {
      const saved = await api.lorebooks.updateLorebook(
        {
          id: book.id,
          name: name.value !== book.name ? name.value : undefined,
          description: description.value !== book.description ? description.value : undefined,
          scanDepth: num(scanDepth.value),
          tokenBudget: num(budget.value),
          recursiveScanning: recursive.box.checked !== book.recursiveScanning ? recursive.box.checked : undefined,
        },
        UNARY,
      );
      replace(saved);
      error.hidden = true;
      note(ok, `Saved ${saved.name}.`);
    } catch (err) {
      showError(error, `Not saved: ${describeError(err)}`);
    }
  });

  // --- Attachments ---
  const attachError = errorBox();
  const charName = new Map(characters.map((c) => [c.id, c.name]));
  const chatName = new Map(chats.map((c) => [c.id, c.title || `Chat with ${charName.get(c.characterId) ?? "?"}`]));
  const attachTarget = (value: string) => {
    const [kind, id] = value.split(":");
    return kind === "character" ? { case: "characterId" as const, value: id } : { case: "chatSessionId" as const, value: id };
  };
  const run = async (f: () => Promise<Lorebook>) => {
    try {
      replace(await f());
      await reload();
    } catch (err) {
      showError(attachError, describeError(err));
    }
  };
  const attached = [
    ...book.characterIds.map((id) => ({ key: `character:${id}`, label: `Character ${charName.get(id) ?? id}` })),
    ...book.chatSessionIds.map((id) => ({ key: `chat:${id}`, label: `Chat ${chatName.get(id) ?? id}` })),
  ];
  const targetSelect = h(
    "select",
    { id: "lorebook-attach-target" },
    h("optgroup", { label: "Characters" }, characters.filter((c) => !book.characterIds.includes(c.id)).map((c) => h("option", { value: `character:${c.id}` }, c.name))),
    h("optgroup", { label: "Chats" }, chats.filter((c) => !book.chatSessionIds.includes(c.id)).map((c) => h("option", { value: `chat:${c.id}` }, chatName.get(c.id) ?? c.id))),
  );
  const attachButton = h("button", { type: "button" }, "Attach");
  attachButton.addEventListener("click", () => {
    if (targetSelect.value) void run(() => api.lorebooks.attachLorebook({ lorebookId: book.id, target: attachTarget(targetSelect.value) }, UNARY));
  });
  const attachments = h(
    "div",
    { class: "panel", role: "group", "aria-labelledby": "lorebook-attach-h" },
    h("h4", { id: "lorebook-attach-h" }, "Used by"),
    h(
      "ul",
      { class: "plain" },
      attached.length === 0 ? h("li", { class: "empty" }, "Not attached to anything.") : null,
      attached.map((a) =>
        h(
          "li",
          null,
          `${a.label} `,
          h("button", { type: "button", "aria-label": `Detach from ${a.label}`, onclick: () => void run(() => api.lorebooks.detachLorebook({ lorebookId: book.id, target: attachTarget(a.key) }, UNARY)) }, "Detach"),
        ),
      ),
    ),
    h("div", { class: "toolbar" }, field("Attach to", targetSelect), attachButton),
    attachError,
  );

  // --- Entries ---
  const entries = book.entries.map((entry) =>
    entryForm(
      entry,
      async (value) => {
        await api.lorebooks.updateLorebookEntry({ lorebookId: book.id, entryId: entry.id, entry: value }, UNARY);
        await reload();
      },
      async () => {
        await api.lorebooks.deleteLorebookEntry({ lorebookId: book.id, entryId: entry.id }, UNARY);
        await reload();
      },
    ),
  );
  const fresh = entryForm(undefined, async (value) => {
    await api.lorebooks.createLorebookEntry({ lorebookId: book.id, entry: value }, UNARY);
    await reload();
  });

  return h(
    "section",
    { class: "lorebook", "aria-labelledby": "lorebook-h", "data-lorebook-id": book.id },
    h("h3", { id: "lorebook-h", tabindex: -1 }, `Lorebook ${book.name}`),
    meta,
    attachments,
    h("h4", null, `Entries (${book.entries.length})`),
    entries.length ? entries : h("p", { class: "empty" }, "No entries yet."),
    fresh,
  );
}
