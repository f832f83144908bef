// Chat settings, the prompt preview and lorebooks in the UI, against the real
// server and the fake provider (whose GET /models answers FAKE_CATALOG and
// which keeps every request body): rename, samplers sent upstream, the server's
// refusal of a bad sampler, the model picker, the author's note at its depth,
// a lorebook entry activated by its key, world-info import and export, the
// global defaults and the chat list's character filter.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { ARTIFACTS_DIR, createChat, FAKE_CATALOG, RPC, send, waitReplyDone, World, type Clients } from "./harness.js";

let world: World;
let api: Clients;
let chatId: string;

before(async () => {
  world = await World.start();
  api = world.server.clients();
  chatId = await createChat(api, "Settings chat");
});

after(async () => {
  await world?.stop();
});

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS_DIR, `${name}.png`), fullPage: false });

function assertNoProblems(): void {
  const problems = world.problems.filter((p) => !/Failed to load resource|net::ERR/.test(p));
  assert.deepEqual(problems, [], "console errors or CSP violations");
}

async function openChat(page: Page, id = chatId): Promise<void> {
  await page.goto(world.url(`#/chat/${id}`), { timeout: 15_000 });
  await page.waitForSelector("#composer");
}

async function openSettings(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Chat settings" }).click();
  await page.locator("#chat-title-input").waitFor();
}

async function saveSettings(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Save chat settings" }).click();
}

async function preview(page: Page, text: string): Promise<void> {
  await page.fill("#composer", text);
  await page.getByRole("button", { name: "Preview prompt" }).click();
  await page.locator(".preview .preview-totals").waitFor();
}

test("rename a chat in its settings: the heading and the chat list show the new title", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openChat(page);
  await openSettings(page);
  await page.fill("#chat-title-input", "The renamed chat");
  await saveSettings(page);
  await page.locator(".chat-settings .ok", { hasText: "Saved." }).waitFor();
  assert.equal((await page.locator("#chat-title").textContent())?.trim(), "The renamed chat");
  assert.equal((await api.chats.getChatSession({ id: chatId }, RPC)).title, "The renamed chat");
  await page.getByRole("link", { name: "Chats" }).click();
  await page.locator(`li[data-chat-id="${chatId}"] .card-title`, { hasText: "The renamed chat" }).waitFor();
  await ctx.close();
  assertNoProblems();
});

test("the model picker lists the provider's catalog and shows the model's context length", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openChat(page);
  await openSettings(page);
  const ids = await page.locator("#chat-model-list option").evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  assert.deepEqual(ids, FAKE_CATALOG.map((m) => m.id));
  await page.fill("#chat-model", "fake/large-model");
  await page.locator("#chat-model-info", { hasText: "context 200,000 tokens" }).waitFor();
  // The global page has the same catalog for the default model.
  await page.goto(world.url("#/settings"));
  await page.locator("#default-model").waitFor();
  const globalIds = await page.locator("#default-model-list option").evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  assert.deepEqual(globalIds, FAKE_CATALOG.map((m) => m.id));
  await ctx.close();
  assertNoProblems();
});

test("temperature and top_p set in the panel go upstream with the next message (mask names only those)", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openChat(page);
  await openSettings(page);
  await page.fill("#chat-temperature", "0.7");
  await page.fill("#chat-top-p", "0.9");
  await saveSettings(page);
  await page.locator(".chat-settings .ok", { hasText: "Saved." }).waitFor();
  const chat = await api.chats.getChatSession({ id: chatId }, RPC);
  assert.equal(chat.samplers?.temperature, 0.7);
  assert.equal(chat.samplers?.topP, 0.9);
  assert.equal(chat.samplers?.topK, undefined);
  assert.equal(chat.title, "The renamed chat", "the title was not in the mask, so it stays");
  const before = world.upstream.bodies.length;
  await send(page, "Hello with samplers");
  await waitReplyDone(page);
  const body = world.upstream.bodies[before];
  assert.ok(body, "the provider was asked");
  assert.equal(body.temperature, 0.7);
  assert.equal(body.top_p, 0.9);
  await ctx.close();
  assertNoProblems();
});

test("a bad sampler (temperature 3) shows the server's INVALID_ARGUMENT next to the form", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openChat(page);
  await openSettings(page);
  await page.fill("#chat-temperature", "3");
  await saveSettings(page);
  const error = page.locator("#chat-settings-error");
  await error.waitFor();
  const text = (await error.textContent()) ?? "";
  assert.match(text, /temperature/i);
  assert.match(text, /INVALID_ARGUMENT/);
  assert.equal((await api.chats.getChatSession({ id: chatId }, RPC)).samplers?.temperature, 0.7, "nothing stored");
  await ctx.close();
  assertNoProblems();
});

test("the author's note appears in the prompt preview at its depth, with the token totals", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openChat(page);
  await openSettings(page);
  await page.fill("#chat-authors-note", "NOTE: keep it short.");
  await page.fill("#chat-authors-note-depth", "1");
  await saveSettings(page);
  await page.locator(".chat-settings .ok", { hasText: "Saved." }).waitFor();
  await preview(page, "What next?");
  const sources = await page.locator(".preview-message").evaluateAll((ls) => ls.map((l) => (l as HTMLElement).dataset.source ?? ""));
  const note = sources.indexOf("authors_note");
  const fresh = sources.indexOf("new_message");
  assert.ok(note >= 0, `an author's note in ${sources.join(",")}`);
  assert.ok(fresh > note, "the new message comes after it");
  assert.equal(sources.slice(note + 1, fresh).filter((s) => s === "history").length, 1, `one history message between: ${sources.join(",")}`);
  assert.match((await page.locator(".preview-message").nth(note).textContent()) ?? "", /NOTE: keep it short\./);
  assert.match((await page.locator(".preview-message").nth(fresh).textContent()) ?? "", /What next\?/);
  const totals = (await page.locator(".preview-totals").textContent()) ?? "";
  assert.match(totals, /^[\d,]+ prompt tokens of [\d,]+ in the context/);
  const n = Number(/^([\d,]+)/.exec(totals)?.[1].replace(/,/g, ""));
  assert.ok(n > 0, "some tokens");
  assert.match((await page.locator(".preview-message").nth(fresh).textContent()) ?? "", /\d+ tokens/);
  await page.locator(".preview-history", { hasText: "History:" }).waitFor();
  await shot(page, "prompt-preview");
  await ctx.close();
  assertNoProblems();
});

test("a lorebook made in the UI, attached to the chat, activates its entry by key in the preview", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await page.goto(world.url("#/lorebooks"));
  await page.fill("#new-lorebook-name", "Bestiary");
  await page.getByRole("button", { name: "Create lorebook" }).click();
  await page.locator("#lorebook-h", { hasText: "Bestiary" }).waitFor();
  const fresh = page.locator('form.entry[data-entry-id="new"]');
  await fresh.getByLabel("Name (comment)").fill("Dragons");
  await fresh.getByLabel("Keys", { exact: true }).fill("dragon, wyrm");
  await fresh.getByLabel("Content").fill("Dragons breathe fire over the northern hills.");
  await fresh.getByLabel("Position").selectOption({ label: "In the history, at a depth" });
  await fresh.getByLabel("Depth", { exact: true }).fill("2");
  await fresh.getByRole("button", { name: "Add entry" }).click();
  await page.locator('form.entry[aria-label="Entry Dragons"]').waitFor();
  const books = (await api.lorebooks.listLorebooks({}, RPC)).lorebooks;
  const book = await api.lorebooks.getLorebook({ id: books.find((b) => b.name === "Bestiary")?.id ?? "" }, RPC);
  assert.deepEqual(book.entries[0].keys, ["dragon", "wyrm"]);
  assert.equal(book.entries[0].depth, 2);
  // Rename it.
  await page.fill("#lorebook-name", "Bestiary of the North");
  await page.getByRole("button", { name: "Save lorebook" }).click();
  await page.locator("li.card .card-title", { hasText: "Bestiary of the North" }).waitFor();

  await openChat(page);
  await openSettings(page);
  await page.getByRole("checkbox", { name: "This chat: Bestiary of the North" }).check();
  await page.waitForFunction(() => !document.querySelector('.chat-side input[type="checkbox"]:disabled'));
  assert.deepEqual((await api.lorebooks.getLorebook({ id: book.id }, RPC)).chatSessionIds, [chatId]);
  await preview(page, "I see the dragon");
  const entry = page.locator(".activated-entry");
  await entry.first().waitFor();
  const text = (await entry.first().textContent()) ?? "";
  assert.match(text, /Bestiary of the North/);
  assert.match(text, /key "dragon"/);
  assert.match(text, /breathe fire/);
  // Not activated without the key.
  await preview(page, "A quiet evening");
  await page.locator(".preview", { hasText: "None activated." }).waitFor();
  // Detach from the lorebooks screen.
  await page.goto(world.url("#/lorebooks"));
  await page.getByRole("button", { name: "Edit Bestiary of the North" }).click();
  await page.getByRole("button", { name: "Detach from Chat The renamed chat" }).click();
  await page.locator(".lorebook", { hasText: "Not attached to anything." }).waitFor();
  assert.deepEqual((await api.lorebooks.getLorebook({ id: book.id }, RPC)).chatSessionIds, []);
  await ctx.close();
  assertNoProblems();
});

test("import a world-info JSON with the file picker, export it as a download, delete it", async () => {
  const worldInfo = {
    name: "Castle lore",
    entries: {
      "0": { uid: 0, key: ["castle"], keysecondary: [], comment: "The castle", content: "The castle has seven towers.", constant: false, selective: true, order: 100, position: 0, disable: false },
      "1": { uid: 1, key: ["moat"], keysecondary: ["water"], comment: "The moat", content: "The moat is dry.", constant: true, selective: true, order: 50, position: 1, disable: false },
    },
  };
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await page.goto(world.url("#/lorebooks"));
  await page.locator("#import-lorebook-button").waitFor();
  await page.setInputFiles("#import-lorebook", { name: "castle.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(worldInfo)) });
  await page.locator(".ok", { hasText: /Imported .*\(2 entries\)/ }).waitFor();
  const name = ((await page.locator(".ok").textContent()) ?? "").replace(/^Imported (.*) \(2 entries\)\.$/, "$1");
  await page.getByRole("button", { name: `Edit ${name}` }).click();
  await page.locator('form.entry[aria-label="Entry The castle"]').waitFor();
  assert.equal(await page.locator('form.entry[aria-label="Entry The moat"]').getByLabel("Constant").isChecked(), true);
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: `Export ${name}` }).click()]);
  assert.match(download.suggestedFilename(), /\.json$/);
  const exported = JSON.parse(readFileSync(await download.path(), "utf8")) as { entries: Record<string, { key: string[]; content: string }> };
  const contents = Object.values(exported.entries).map((e) => e.content).sort();
  assert.deepEqual(contents, ["The castle has seven towers.", "The moat is dry."]);
  await page.getByRole("button", { name: `Delete ${name}` }).click();
  await page.getByRole("button", { name: `Really delete ${name}` }).click();
  await page.locator(".ok", { hasText: `Deleted ${name}.` }).waitFor();
  await ctx.close();
  assertNoProblems();
});

test("global defaults: samplers and token counts are saved; a bad one shows the server's reason", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await page.goto(world.url("#/settings"));
  await page.locator("#default-temperature").waitFor();
  await page.fill("#default-temperature", "1.1");
  await page.fill("#default-min-p", "0.05");
  await page.fill("#default-reply-tokens", "700");
  await page.getByRole("button", { name: "Save defaults" }).click();
  await page.locator("form[aria-labelledby=defaults-h] .ok", { hasText: "Saved." }).waitFor();
  const s = await api.settings.getSettings({}, RPC);
  assert.equal(s.defaultSamplers?.temperature, 1.1);
  assert.equal(s.defaultSamplers?.minP, 0.05);
  assert.equal(s.defaultReplyTokens, 700);
  await page.fill("#default-top-p", "5");
  await page.getByRole("button", { name: "Save defaults" }).click();
  await page.locator("#defaults-error:not([hidden])").waitFor();
  const error = (await page.locator("#defaults-error").textContent()) ?? "";
  assert.match(error, /top_p/);
  assert.match(error, /INVALID_ARGUMENT/);
  await ctx.close();
  assertNoProblems();
});

test("the chat list is by last activity and filters by character", async () => {
  const character = await api.characters.createCharacter({ name: "Zed" }, RPC);
  const profile = (await api.profiles.listUserProfiles({}, RPC)).userProfiles[0];
  const other = await api.chats.createChatSession({ characterId: character.id, userProfileId: profile.id, title: "Zed's chat" }, RPC);
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await page.goto(world.url("#/chats"));
  await page.locator(`li[data-chat-id="${other.id}"]`).waitFor();
  const order = await page.locator("li[data-chat-id]").evaluateAll((ls) => ls.map((l) => (l as HTMLElement).dataset.chatId));
  assert.deepEqual(order.slice(0, 2), [other.id, chatId], "the newest activity first");
  await page.getByLabel("Show chats with").selectOption({ label: "Zed" });
  await page.waitForFunction(() => document.querySelectorAll("li[data-chat-id]").length === 1);
  assert.equal(await page.locator(`li[data-chat-id="${other.id}"]`).count(), 1);
  assert.equal(await page.getByLabel("Character", { exact: true }).inputValue(), character.id, "a new chat starts with that character");
  await page.getByLabel("Show chats with").selectOption({ label: "All characters" });
  await page.locator(`li[data-chat-id="${chatId}"]`).waitFor();
  await ctx.close();
  assertNoProblems();
});
