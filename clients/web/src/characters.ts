/**
 * The characters screen: the list with avatars, search by name and a tag
 * filter (both asked of the server), import of a card file by the file
 * picker or by dropping it on the list, export as JSON or PNG, delete, and
 * the create/edit form (src/character-form.ts).
 */
import { CardFormat, ExportFormat, type Character } from "./gen/roleplay/v1/character_pb.js";
import { allPages, api, ConnectError, describeError, UNARY } from "./api.js";
import { avatar } from "./avatars.js";
import { characterForm } from "./character-form.js";
import { clear, errorBox, field, h, note, showError } from "./dom.js";
import { download, hasFiles, readFile } from "./files.js";

export interface CharacterFilter {
  nameContains?: string;
  tag?: string;
}

export async function listCharacters(filter: CharacterFilter = {}): Promise<Character[]> {
  return allPages(async (pageToken) => {
    const r = await api.characters.listCharacters({ pageSize: 500, pageToken, nameContains: filter.nameContains ?? "", tag: filter.tag ?? "" }, UNARY);
    return { items: r.characters, next: r.nextPageToken };
  });
}

const FORMAT_NAME: Record<CardFormat, string> = {
  [CardFormat.UNSPECIFIED]: "card",
  [CardFormat.V1_JSON]: "V1 JSON card",
  [CardFormat.V2_JSON]: "V2 JSON card",
  [CardFormat.V3_JSON]: "V3 JSON card",
  [CardFormat.PNG_V2]: "PNG card, V2",
  [CardFormat.PNG_V3]: "PNG card, V3",
  [CardFormat.CHARX]: "CHARX card",
};

/** What a failure says: the server's message and code, or a local Error's message. */
function reason(err: unknown): string {
  return err instanceof Error && !(err instanceof ConnectError) ? err.message : describeError(err);
}

export async function charactersView(): Promise<HTMLElement> {
  const error = errorBox();
  const status = h("p", { class: "ok", role: "status" });
  let characters = await listCharacters();
  const knownTags = new Map<string, string>();
  const learnTags = (list: Character[]) => {
    for (const c of list) for (const t of c.tags) if (!knownTags.has(t.toLowerCase())) knownTags.set(t.toLowerCase(), t);
  };
  learnTags(characters);

  // --- Search and tag filter ---
  const search = h("input", { type: "search", id: "character-search", autocomplete: "off", spellcheck: "false", placeholder: "Part of a name", maxlength: 200 });
  const tagSelect = h("select", { id: "character-tag" });
  const renderTagOptions = () => {
    const chosen = tagSelect.value;
    clear(tagSelect);
    tagSelect.appendChild(h("option", { value: "" }, "All tags"));
    const tags = [...knownTags.values()].sort((a, b) => a.localeCompare(b, undefined, { sensitivity: "base" }));
    if (chosen && !knownTags.has(chosen.toLowerCase())) tags.push(chosen);
    for (const t of tags) tagSelect.appendChild(h("option", { value: t }, t));
    tagSelect.value = chosen;
  };
  renderTagOptions();

  let listSeq = 0;
  const refresh = async () => {
    const seq = ++listSeq;
    const filter = { nameContains: search.value.trim(), tag: tagSelect.value };
    list.setAttribute("aria-busy", "true");
    try {
      const found = await listCharacters(filter);
      if (seq !== listSeq) return;
      characters = found;
      learnTags(found);
      renderTagOptions();
      renderList();
    } catch (err) {
      if (seq === listSeq) showError(error, `Could not list the characters: ${describeError(err)}`);
    } finally {
      if (seq === listSeq) list.removeAttribute("aria-busy");
    }
  };
  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => void refresh(), 200);
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      clearTimeout(searchTimer);
      void refresh();
    }
  });
  tagSelect.addEventListener("change", () => void refresh());
  const filterByTag = (tag: string) => {
    if (!knownTags.has(tag.toLowerCase())) knownTags.set(tag.toLowerCase(), tag);
    renderTagOptions();
    tagSelect.value = tag;
    void refresh();
    tagSelect.focus();
  };

  // --- Import ---
  const importInput = h("input", { type: "file", id: "import-card", hidden: true, multiple: true, accept: ".json,.png,.apng,.charx,application/json,image/png" });
  importInput.setAttribute("aria-label", "Card files to import");
  const importButton = h("button", { type: "button", id: "import-card-button", "aria-describedby": "import-hint" }, "Import a card…");
  importButton.addEventListener("click", () => importInput.click());
  const importFiles = async (files: File[]) => {
    if (files.length === 0) return;
    error.hidden = true;
    status.hidden = true;
    importButton.disabled = true;
    const done: string[] = [];
    const failed: string[] = [];
    for (const file of files) {
      try {
        const data = await readFile(file);
        const r = await api.characters.importCharacter({ data, filename: file.name }, { timeoutMs: 60_000 });
        done.push(`${r.character?.name ?? file.name} (${FORMAT_NAME[r.format] ?? "card"})`);
      } catch (err) {
        failed.push(`Could not import ${file.name}: ${reason(err)}`);
      }
    }
    importButton.disabled = false;
    if (done.length) note(status, `Imported ${done.join(", ")}.`);
    if (failed.length) showError(error, failed.join(" "));
    if (done.length) await refresh();
  };
  importInput.addEventListener("change", () => {
    const files = Array.from(importInput.files ?? []);
    importInput.value = "";
    void importFiles(files);
  });

  // --- The list, which is also where cards are dropped ---
  const list = h("ul", { class: "cards", "aria-label": "Characters" });
  const formHost = h("div");

  const exportAs = async (c: Character, format: ExportFormat) => {
    try {
      const r = await api.characters.exportCharacter({ id: c.id, format }, { timeoutMs: 60_000 });
      const ext = format === ExportFormat.PNG ? "png" : "json";
      download(r.data, r.contentType, r.filename || `${c.name}.${ext}`);
    } catch (err) {
      showError(error, `Could not export ${c.name}: ${describeError(err)}`);
    }
  };

  const renderList = () => {
    clear(list);
    if (characters.length === 0) {
      const filtered = search.value.trim() !== "" || tagSelect.value !== "";
      list.appendChild(h("li", { class: "empty" }, filtered ? "No characters match." : "No characters yet."));
    }
    for (const c of characters) {
      const actions = h("div", { class: "actions" });
      const showActions = () => {
        clear(actions);
        actions.append(
          h("button", { type: "button", "aria-label": `Edit ${c.name}`, onclick: () => showForm(c) }, "Edit"),
          h("button", { type: "button", "aria-label": `Export ${c.name} as JSON`, title: "Download as a V3 JSON card", onclick: () => void exportAs(c, ExportFormat.JSON) }, "JSON"),
          h("button", { type: "button", "aria-label": `Export ${c.name} as PNG`, title: "Download as a PNG card", onclick: () => void exportAs(c, ExportFormat.PNG) }, "PNG"),
          h("button", { type: "button", class: "danger", "data-action": "delete", "aria-label": `Delete ${c.name}`, onclick: askDelete }, "Delete"),
        );
      };
      const askDelete = () => {
        clear(actions);
        const yes = h("button", { type: "button", class: "danger", "aria-label": `Really delete ${c.name}` }, "Yes, delete");
        const no = h("button", { type: "button" }, "Cancel");
        yes.addEventListener("click", async () => {
          yes.disabled = true;
          try {
            await api.characters.deleteCharacter({ id: c.id }, UNARY);
            characters = characters.filter((x) => x.id !== c.id);
            note(status, `Deleted ${c.name}.`);
            error.hidden = true;
            renderList();
          } catch (err) {
            showError(error, `Could not delete ${c.name}: ${describeError(err)}`);
            showActions();
            actions.querySelector<HTMLElement>('[data-action="delete"]')?.focus();
          }
        });
        no.addEventListener("click", () => {
          showActions();
          actions.querySelector<HTMLElement>('[data-action="delete"]')?.focus();
        });
        actions.append(h("span", { role: "alert" }, `Delete ${c.name}?`), yes, no);
        actions.addEventListener("keydown", function escape(e) {
          if (e.key !== "Escape") return;
          actions.removeEventListener("keydown", escape);
          no.click();
        });
        yes.focus();
      };
      showActions();
      const tags = c.tags.length
        ? h(
            "ul",
            { class: "tags", "aria-label": `Tags of ${c.name}` },
            c.tags.map((t) =>
              h("li", null, h("button", { type: "button", class: "tag", title: `Show only characters tagged ${t}`, onclick: () => filterByTag(t) }, t)),
            ),
          )
        : null;
      list.appendChild(
        h(
          "li",
          { class: "card character", "data-character-id": c.id },
          avatar(c.avatarUrl, ""),
          h(
            "div",
            { class: "character-main" },
            h("span", { class: "card-title" }, c.name),
            tags,
            c.description ? h("span", { class: "meta" }, c.description.length > 120 ? `${c.description.slice(0, 119)}…` : c.description) : null,
          ),
          actions,
        ),
      );
    }
  };

  const showForm = (c?: Character) => {
    clear(formHost);
    formHost.appendChild(
      characterForm(c, {
        saved: (saved, message) => {
          error.hidden = true;
          note(status, message);
          learnTags([saved]);
          void refresh();
        },
        done: () => showForm(),
      }),
    );
  };

  const zone = h(
    "div",
    { class: "dropzone", id: "character-drop" },
    h("p", { class: "hint", id: "import-hint" }, "Import a character card (PNG, JSON or CHARX) with the button, or drop the file on the list."),
    list,
  );
  let depth = 0;
  zone.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth += 1;
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (e) => {
    depth = 0;
    zone.classList.remove("dragging");
    if (!hasFiles(e)) return;
    e.preventDefault();
    void importFiles(Array.from(e.dataTransfer?.files ?? []));
  });

  renderList();
  showForm();
  const toolbar = h(
    "div",
    { class: "toolbar", role: "search", "aria-label": "Find characters" },
    field("Search characters", search),
    field("Filter by tag", tagSelect),
    h("div", { class: "import" }, importButton, importInput),
  );
  return h(
    "section",
    { class: "page", "aria-labelledby": "characters-h" },
    h("h2", { id: "characters-h" }, "Characters"),
    toolbar,
    error,
    status,
    zone,
    formHost,
  );
}
