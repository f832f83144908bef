/**
 * The character form: every card field, the alternate greetings as a list
 * editor, tags, the extensions object as checked JSON, the avatar (upload and
 * remove) and the card's lorebook when it has one. Creating sends every field
 * given; saving sends only the fields that changed.
 */
import type { Character } from "./gen/roleplay/v1/character_pb.js";
import { api, Code, ConnectError, describeError, UNARY } from "./api.js";
import { avatar, forgetAvatar } from "./avatars.js";
import { clear, errorBox, field, h, input, showError, textarea, uid } from "./dom.js";
import { download, readFile } from "./files.js";

export interface CharacterFormHandlers {
  /** A character was created or changed (its fields or its avatar); `message` says what happened. */
  saved: (c: Character, message: string) => void;
  /** Back to an empty "New character" form. */
  done: () => void;
}

const MAX_TAGS = 64;
const MAX_TAG_CHARS = 100;
const MAX_GREETINGS = 64;

/** Tags from "a, b,  c": trimmed, empty ones dropped, duplicates (ignoring case) once. */
export function parseTags(text: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const raw of text.split(",")) {
    const tag = raw.trim();
    if (!tag || seen.has(tag.toLowerCase())) continue;
    seen.add(tag.toLowerCase());
    out.push(tag);
  }
  return out;
}

/** What is wrong with the extensions text, or undefined when it is empty or a JSON object. */
export function extensionsProblem(text: string): string | undefined {
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `Not valid JSON: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return "Must be a JSON object ({ … }).";
  return undefined;
}

/** The extensions as the form shows them: indented, "{}" (none) as empty. */
function prettyExtensions(json: string): string {
  try {
    const value: unknown = JSON.parse(json || "{}");
    if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0) return "";
    return JSON.stringify(value, null, 2);
  } catch {
    return json;
  }
}

/** The alternate greetings: one textarea each, in order, with move and remove buttons, and "Add a greeting". */
function greetingsEditor(initial: string[]): { el: HTMLElement; values: () => string[] } {
  const items: HTMLTextAreaElement[] = initial.map((g) => textarea(g, 3));
  const list = h("ol", { class: "greetings" });
  const add = h("button", { type: "button", "data-action": "add-greeting" }, "Add a greeting");
  const render = (focus?: { index: number; action?: string }) => {
    clear(list);
    items.forEach((ta, i) => {
      const n = i + 1;
      ta.setAttribute("aria-label", `Alternate greeting ${n}`);
      const button = (action: string, label: string, aria: string, disabled: boolean, onClick: () => void) => {
        const b = h("button", { type: "button", class: "tool", "data-action": action, "aria-label": aria, disabled }, label);
        b.addEventListener("click", onClick);
        return b;
      };
      const move = (to: number) => {
        const [moved] = items.splice(i, 1);
        items.splice(to, 0, moved);
        render({ index: to, action: to < i ? "up" : "down" });
      };
      list.appendChild(
        h(
          "li",
          { class: "greeting" },
          ta,
          h(
            "div",
            { class: "actions" },
            button("up", "↑", `Move alternate greeting ${n} up`, i === 0, () => move(i - 1)),
            button("down", "↓", `Move alternate greeting ${n} down`, i === items.length - 1, () => move(i + 1)),
            button("remove", "Remove", `Remove alternate greeting ${n}`, false, () => {
              items.splice(i, 1);
              render({ index: Math.min(i, items.length - 1), action: "remove" });
            }),
          ),
        ),
      );
    });
    add.disabled = items.length >= MAX_GREETINGS;
    if (focus) {
      const li = list.children[focus.index] as HTMLElement | undefined;
      const target = li?.querySelector<HTMLElement>(`[data-action="${focus.action}"]:not(:disabled)`) ?? li?.querySelector("textarea") ?? add;
      target.focus();
    }
  };
  add.addEventListener("click", () => {
    items.push(textarea("", 3));
    render();
    items[items.length - 1].focus();
  });
  render();
  const id = uid("greetings");
  const el = h(
    "fieldset",
    { class: "greetings-field", "aria-describedby": `${id}-hint` },
    h("legend", null, "Alternate greetings"),
    h("small", { id: `${id}-hint`, class: "hint" }, "Other first messages: a new chat offers them as alternatives (swipes) of the first one."),
    list,
    add,
  );
  return { el, values: () => items.map((t) => t.value).filter((v) => v.trim() !== "") };
}

/** "Lorebook: World (3 entries)" with an export button, or a quiet note when the server cannot show books. */
function lorebookLine(c: Character): HTMLElement | null {
  const id = c.lorebookId;
  if (!id) return null;
  const line = h("p", { class: "lorebook", role: "status" }, "Lorebook: loading…");
  void api.lorebooks
    .getLorebook({ id }, UNARY)
    .then((book) => {
      const entries = `${book.entryCount || book.entries.length} ${(book.entryCount || book.entries.length) === 1 ? "entry" : "entries"}`;
      const exp = h("button", { type: "button", class: "tool", "aria-label": `Export the lorebook ${book.name}` }, "Export lorebook");
      exp.addEventListener("click", async () => {
        try {
          const r = await api.lorebooks.exportLorebook({ id }, UNARY);
          download(r.data, "application/json", r.filename || `${book.name}.json`);
        } catch (err) {
          line.append(" ", h("span", { class: "error" }, `Could not export: ${describeError(err)}`));
        }
      });
      line.replaceChildren(`Lorebook: ${book.name} (${entries}) `, exp);
    })
    .catch((err) => {
      const e = ConnectError.from(err);
      line.textContent =
        e.code === Code.Unimplemented
          ? "This character has a lorebook from its card; this server cannot show lorebooks yet."
          : `Lorebook: could not load it: ${describeError(e)}`;
    });
  return line;
}

/** The avatar: the current one, "Upload an avatar" and "Remove avatar" (editing), or a file to send after creating. */
function avatarField(c: Character | undefined, on: CharacterFormHandlers, error: HTMLElement): { el: HTMLElement; pending: () => File | undefined } {
  const file = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp", class: "file-input" });
  const fileField = field(c ? "Upload an avatar" : "Avatar (optional)", file, "PNG, JPEG or WebP, up to 20 MiB and 4096 pixels a side.");
  if (!c) return { el: h("div", { class: "avatar-field" }, fileField), pending: () => file.files?.[0] };

  const character = c;
  const preview = h("div", { class: "avatar-preview" }, avatar(c.avatarUrl, c.avatarUrl ? `${c.name}'s avatar` : "", "large"));
  const remove = h("button", { type: "button", class: "danger", disabled: !c.avatarUrl }, "Remove avatar");
  const set = async (data: Uint8Array, message: string) => {
    file.disabled = true;
    remove.disabled = true;
    try {
      const updated = await api.characters.setCharacterAvatar({ id: character.id, data }, UNARY);
      if (character.avatarUrl) forgetAvatar(character.avatarUrl);
      if (updated.avatarUrl) forgetAvatar(updated.avatarUrl);
      character.avatarUrl = updated.avatarUrl;
      preview.replaceChildren(avatar(updated.avatarUrl, updated.avatarUrl ? `${updated.name}'s avatar` : "", "large"));
      error.hidden = true;
      on.saved(updated, message);
    } catch (err) {
      showError(error, `Could not change the avatar: ${err instanceof ConnectError || !(err instanceof Error) ? describeError(err) : err.message}`);
    } finally {
      file.disabled = false;
      file.value = "";
      remove.disabled = !character.avatarUrl;
    }
  };
  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    try {
      await set(await readFile(chosen), `New avatar for ${character.name}.`);
    } catch (err) {
      showError(error, `Could not change the avatar: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  remove.addEventListener("click", () => void set(new Uint8Array(), `Removed the avatar of ${character.name}.`));
  return {
    el: h("fieldset", { class: "avatar-field" }, h("legend", null, "Avatar"), h("div", { class: "avatar-row" }, preview, h("div", null, fileField, remove))),
    pending: () => undefined,
  };
}

export function characterForm(c: Character | undefined, on: CharacterFormHandlers): HTMLFormElement {
  const error = errorBox();
  const name = input({ value: c?.name ?? "", required: true, maxlength: 200 });
  const description = textarea(c?.description ?? "", 4);
  const firstMessage = textarea(c?.firstMessage ?? "", 3);
  const greetings = greetingsEditor(c?.alternateGreetings ?? []);
  const personality = textarea(c?.personality ?? "", 3);
  const scenario = textarea(c?.scenario ?? "", 3);
  const examples = textarea(c?.mesExample ?? "", 4);
  const systemPrompt = textarea(c?.systemPrompt ?? "", 3);
  const postHistory = textarea(c?.postHistoryInstructions ?? "", 2);
  const tags = input({ value: (c?.tags ?? []).join(", "), autocomplete: "off" });
  const creator = input({ value: c?.creator ?? "" });
  const version = input({ value: c?.characterVersion ?? "" });
  const creatorNotes = textarea(c?.creatorNotes ?? "", 2);
  const initialExtensions = prettyExtensions(c?.extensionsJson ?? "");
  const extensions = h("textarea", { rows: 6, value: initialExtensions, spellcheck: "false", class: "code" });
  const extensionsError = h("small", { class: "error", id: uid("ext-error"), hidden: true });
  const checkExtensions = (): boolean => {
    const problem = extensionsProblem(extensions.value);
    extensionsError.textContent = problem ?? "";
    extensionsError.hidden = !problem;
    if (problem) extensions.setAttribute("aria-invalid", "true");
    else extensions.removeAttribute("aria-invalid");
    return !problem;
  };
  extensions.addEventListener("input", checkExtensions);
  const extensionsField = field("Extensions (JSON)", extensions, "The card's extensions object, kept as it is for other tools. Empty for none.");
  extensions.setAttribute("aria-describedby", `${extensions.getAttribute("aria-describedby")} ${extensionsError.id}`);
  extensionsField.appendChild(extensionsError);
  const advanced = h("details", { class: "advanced" }, h("summary", null, "Advanced: extensions"), extensionsField);
  if (initialExtensions) advanced.open = true;

  const av = avatarField(c, on, error);
  const heading = c ? `Edit ${c.name}` : "New character";
  const submit = h("button", { type: "submit", class: "primary" }, c ? "Save character" : "Create character");
  const form = h(
    "form",
    { class: "panel character-form", "aria-label": heading },
    h("h3", null, heading),
    c ? lorebookLine(c) : null,
    field("Name", name),
    av.el,
    field("Description", description, "{{char}} and {{user}} become the names."),
    field("First message", firstMessage),
    greetings.el,
    field("Personality", personality),
    field("Scenario", scenario),
    field("Example dialogues", examples, "Blocks that each start with <START>."),
    field("System prompt (optional)", systemPrompt),
    field("Post-history instructions (optional)", postHistory),
    field("Tags", tags, "Separated by commas."),
    h("div", { class: "field-row" }, field("Creator", creator), field("Character version", version)),
    field("Creator notes", creatorNotes, "For people reading the card; not sent to the model."),
    advanced,
    error,
    h("div", { class: "actions" }, submit, c ? h("button", { type: "button", onclick: () => on.done() }, "Cancel") : null),
  );

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!checkExtensions()) {
      advanced.open = true;
      extensions.focus();
      showError(error, "Could not save: the extensions are not a JSON object.");
      return;
    }
    const tagList = parseTags(tags.value);
    const badTag = tagList.find((t) => t.length > MAX_TAG_CHARS);
    if (tagList.length > MAX_TAGS || badTag) {
      showError(error, badTag ? `Could not save: the tag "${badTag.slice(0, 20)}…" is longer than ${MAX_TAG_CHARS} characters.` : `Could not save: at most ${MAX_TAGS} tags.`);
      tags.focus();
      return;
    }
    submit.disabled = true;
    try {
      if (c) {
        const changed = (now: string, was: string) => (now === was ? undefined : now);
        const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
        const greetingList = greetings.values();
        const updated = await api.characters.updateCharacter(
          {
            id: c.id,
            name: changed(name.value, c.name),
            description: changed(description.value, c.description),
            firstMessage: changed(firstMessage.value, c.firstMessage ?? ""),
            systemPrompt: changed(systemPrompt.value, c.systemPrompt ?? ""),
            postHistoryInstructions: changed(postHistory.value, c.postHistoryInstructions ?? ""),
            personality: changed(personality.value, c.personality),
            scenario: changed(scenario.value, c.scenario),
            mesExample: changed(examples.value, c.mesExample),
            alternateGreetings: greetingList,
            setAlternateGreetings: !same(greetingList, c.alternateGreetings),
            tags: tagList,
            setTags: !same(tagList, c.tags),
            creator: changed(creator.value, c.creator),
            creatorNotes: changed(creatorNotes.value, c.creatorNotes),
            characterVersion: changed(version.value, c.characterVersion),
            extensionsJson: changed(extensions.value, initialExtensions),
          },
          UNARY,
        );
        on.saved(updated, `Saved ${updated.name}.`);
      } else {
        const optional = (v: string) => (v.trim() === "" ? undefined : v);
        let created = await api.characters.createCharacter(
          {
            name: name.value,
            description: description.value,
            firstMessage: optional(firstMessage.value),
            systemPrompt: optional(systemPrompt.value),
            postHistoryInstructions: optional(postHistory.value),
            personality: personality.value,
            scenario: scenario.value,
            mesExample: examples.value,
            alternateGreetings: greetings.values(),
            tags: tagList,
            creator: creator.value,
            creatorNotes: creatorNotes.value,
            characterVersion: version.value,
            extensionsJson: extensions.value,
          },
          UNARY,
        );
        const picture = av.pending();
        if (picture) {
          try {
            created = await api.characters.setCharacterAvatar({ id: created.id, data: await readFile(picture) }, UNARY);
          } catch (err) {
            // The character is stored; say why its picture is not.
            on.saved(created, `Created ${created.name}, but not its avatar: ${err instanceof ConnectError || !(err instanceof Error) ? describeError(err) : err.message}`);
            on.done();
            return;
          }
        }
        on.saved(created, `Created ${created.name}.`);
      }
      on.done();
    } catch (err) {
      showError(error, `Could not save: ${describeError(err)}`);
    } finally {
      submit.disabled = false;
    }
  });
  if (c) queueMicrotask(() => name.focus());
  return form;
}
