// Characters as cards in the UI, against the real server: import by the file
// picker and by drag-and-drop (V2 JSON and PNG cards built here), a bad file's
// reason, avatars (upload, removal, in the list and beside chat messages),
// search and the tag filter, export, the form's new fields, and a chat whose
// first message offers the card's alternate greetings as swipes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Locator, Page } from "playwright-core";
import { png, v2Card } from "./cards.js";
import { ARTIFACTS_DIR, RPC, World, type Clients } from "./harness.js";

let world: World;
let api: Clients;

before(async () => {
  world = await World.start();
  api = world.server.clients();
});

after(async () => {
  await world?.stop();
});

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS_DIR, `${name}.png`), fullPage: false });

function assertNoProblems(): void {
  const problems = world.problems.filter((p) => !/Failed to load resource|net::ERR/.test(p));
  assert.deepEqual(problems, [], "console errors or CSP violations");
}

// --- Page helpers ------------------------------------------------------------------

async function openCharacters(page: Page): Promise<void> {
  await page.goto(world.url("#/characters"), { timeout: 15_000 });
  await page.locator("#import-card-button").waitFor();
}

function characterItem(page: Page, name: string): Locator {
  return page.locator("li.card.character").filter({ has: page.locator(".card-title", { hasText: new RegExp(`^${name}$`) }) });
}

async function namesOnScreen(page: Page): Promise<string[]> {
  return (await page.locator("li.card.character .card-title").allTextContents()).map((t) => t.trim());
}

/** Waits until the image in `box` (an .avatar) has loaded, and returns its natural width. */
async function shownAvatarWidth(box: Locator): Promise<number> {
  await box.locator("img").waitFor();
  return box.locator("img").evaluate(async (img: HTMLImageElement) => {
    if (!img.complete) await new Promise((r) => img.addEventListener("load", r, { once: true }));
    return img.naturalWidth;
  });
}

async function importFile(page: Page, name: string, mimeType: string, buffer: Buffer): Promise<void> {
  await page.setInputFiles("#import-card", { name, mimeType, buffer });
}

async function profileId(): Promise<string> {
  const { userProfiles } = await api.profiles.listUserProfiles({}, RPC);
  return userProfiles[0]?.id ?? (await api.profiles.createUserProfile({ name: "Reader" }, RPC)).id;
}

// --- Tests ---------------------------------------------------------------------------

test("import a V2 JSON card with the file picker: it is listed with its tags, the form shows its fields", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openCharacters(page);
  const card = v2Card("Mira", { alternate_greetings: ["Oh, a visitor!", "Shh, this is a library."], tags: ["fantasy", "Librarian"] });
  await importFile(page, "mira.json", "application/json", Buffer.from(card));
  await page.getByRole("status").filter({ hasText: "Imported Mira (V2 JSON card)." }).waitFor();
  const item = characterItem(page, "Mira");
  await item.waitFor();
  assert.deepEqual((await item.locator(".tags button").allTextContents()).map((t) => t.trim()), ["fantasy", "Librarian"]);
  // No avatar: the placeholder.
  assert.equal(await item.locator(".avatar").getAttribute("data-avatar"), "none");
  assert.equal(await item.locator(".avatar svg.avatar-placeholder").count(), 1);
  // The tag filter offers the new tags.
  assert.ok((await page.locator("#character-tag option").allTextContents()).includes("Librarian"));

  // The form shows every field of the card.
  await page.getByRole("button", { name: "Edit Mira" }).click();
  const form = page.getByRole("form", { name: "Edit Mira" });
  assert.equal(await form.getByLabel("Alternate greeting 1", { exact: true }).inputValue(), "Oh, a visitor!");
  assert.equal(await form.getByLabel("Alternate greeting 2", { exact: true }).inputValue(), "Shh, this is a library.");
  assert.equal(await form.getByLabel("Tags", { exact: true }).inputValue(), "fantasy, Librarian");
  assert.equal(await form.getByLabel("Personality", { exact: true }).inputValue(), "curious");
  assert.equal(await form.getByLabel("Scenario", { exact: true }).inputValue(), "A quiet library.");
  assert.match(await form.getByLabel("Example dialogues", { exact: true }).inputValue(), /^<START>/);
  assert.equal(await form.getByLabel("Creator", { exact: true }).inputValue(), "tester");
  assert.equal(await form.getByLabel("Character version", { exact: true }).inputValue(), "1.0");
  assert.equal(await form.getByLabel("Creator notes", { exact: true }).inputValue(), "Made in a test.");
  assert.deepEqual(JSON.parse(await form.getByLabel("Extensions (JSON)").inputValue()), { test_tool: { kept: true } });

  // Greetings as a list: move the second up, add one, remove the old first; tags edited.
  await form.getByRole("button", { name: "Move alternate greeting 2 up" }).click();
  assert.equal(await form.getByLabel("Alternate greeting 1", { exact: true }).inputValue(), "Shh, this is a library.");
  await form.getByRole("button", { name: "Add a greeting" }).click();
  await page.keyboard.type("Welcome back.");
  await form.getByRole("button", { name: "Remove alternate greeting 2" }).click();
  await form.getByLabel("Tags", { exact: true }).fill("fantasy, librarian, quiet, Quiet");
  await form.getByRole("button", { name: "Save character" }).click();
  await page.getByText("Saved Mira.").waitFor();
  const { characters } = await api.characters.listCharacters({ nameContains: "Mira" }, RPC);
  assert.deepEqual(characters[0].alternateGreetings, ["Shh, this is a library.", "Welcome back."]);
  assert.deepEqual(characters[0].tags, ["fantasy", "librarian", "quiet"]);
  assert.deepEqual(JSON.parse(characters[0].extensionsJson), { test_tool: { kept: true } });
  await characterItem(page, "Mira").locator(".tags button", { hasText: "quiet" }).waitFor();
  await ctx.close();
  assertNoProblems();
});

test("a PNG card shows its avatar; the avatar can be removed and uploaded again", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openCharacters(page);
  const card = v2Card("Pixel", { tags: ["robot"] });
  await importFile(page, "pixel.png", "image/png", png([40, 120, 200], card));
  await page.getByRole("status").filter({ hasText: "Imported Pixel (PNG card, V2)." }).waitFor();
  const item = characterItem(page, "Pixel");
  assert.equal(await shownAvatarWidth(item.locator(".avatar")), 16);
  await item.locator('.avatar[data-avatar="shown"]').waitFor();

  // Remove it in the form: the placeholder, in the form and in the list.
  await page.getByRole("button", { name: "Edit Pixel" }).click();
  const form = page.getByRole("form", { name: "Edit Pixel" });
  assert.equal(await shownAvatarWidth(form.locator(".avatar-preview .avatar")), 16);
  await form.getByRole("button", { name: "Remove avatar" }).click();
  await page.getByText("Removed the avatar of Pixel.").waitFor();
  await form.locator('.avatar-preview .avatar[data-avatar="none"]').waitFor();
  await characterItem(page, "Pixel").locator('.avatar[data-avatar="none"]').waitFor();
  assert.equal((await api.characters.listCharacters({ nameContains: "Pixel" }, RPC)).characters[0].avatarUrl, "");

  // Upload another with the file picker (a 16×16 PNG made here).
  await form.getByLabel("Upload an avatar").setInputFiles({ name: "face.png", mimeType: "image/png", buffer: png([200, 60, 60]) });
  await page.getByText("New avatar for Pixel.").waitFor();
  assert.equal(await shownAvatarWidth(form.locator(".avatar-preview .avatar")), 16);
  assert.equal(await shownAvatarWidth(characterItem(page, "Pixel").locator(".avatar")), 16);
  // The picture shown is the new one (red), not a cached old one (blue).
  const red = await characterItem(page, "Pixel")
    .locator(".avatar img")
    .evaluate((img: HTMLImageElement) => {
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const g = canvas.getContext("2d");
      if (!g) return false;
      g.drawImage(img, 0, 0);
      const [r, , b] = g.getImageData(8, 8, 1, 1).data;
      return r > b;
    });
  assert.ok(red, "the new avatar is shown");
  await form.locator("h3").scrollIntoViewIfNeeded();
  await shot(page, "character-form");
  // Not an image: the server's reason.
  await form.getByLabel("Upload an avatar").setInputFiles({ name: "face.png", mimeType: "image/png", buffer: Buffer.from("not a picture") });
  await form.getByRole("alert").filter({ hasText: /Could not change the avatar: .*\(INVALID_ARGUMENT\)/ }).waitFor();
  await ctx.close();
  assertNoProblems();
});

test("drop a card file on the list to import it", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openCharacters(page);
  const card = v2Card("Dropsy", { tags: ["dropped"] });
  await page.evaluate(async (text) => {
    const file = new File([text], "dropsy.json", { type: "application/json" });
    const data = new DataTransfer();
    data.items.add(file);
    const zone = document.getElementById("character-drop");
    if (!zone) throw new Error("no drop zone");
    const target = zone.querySelector("ul") ?? zone;
    for (const type of ["dragenter", "dragover"]) target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
    if (!zone.classList.contains("dragging")) throw new Error("the list does not show it takes the drop");
    const taken = !target.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    if (!taken) throw new Error("the drop was not taken");
  }, card);
  await characterItem(page, "Dropsy").waitFor();
  await page.getByRole("status").filter({ hasText: "Imported Dropsy (V2 JSON card)." }).waitFor();
  assert.equal(await page.locator("#character-drop.dragging").count(), 0);
  await ctx.close();
  assertNoProblems();
});

test("a file that is not a card shows the server's reason and stores nothing", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openCharacters(page);
  const before = await namesOnScreen(page);
  await importFile(page, "notes.json", "application/json", Buffer.from('{"hello": "this is not a card"}'));
  const alert = page.getByRole("alert").filter({ hasText: "Could not import notes.json:" });
  await alert.waitFor();
  assert.match((await alert.textContent()) ?? "", /\(INVALID_ARGUMENT\)$/);
  await importFile(page, "broken.png", "image/png", Buffer.from("\x89PNG\r\n\x1a\nnot really"));
  await page.getByRole("alert").filter({ hasText: /Could not import broken\.png: .+\(INVALID_ARGUMENT\)/ }).waitFor();
  assert.deepEqual(await namesOnScreen(page), before);
  await shot(page, "characters-bad-file");
  await ctx.close();
  assertNoProblems();
});

test("search by name and filter by tag", async () => {
  for (const name of ["Searchy Alpha", "Searchy Beta", "Gamma"]) {
    await api.characters.createCharacter({ name, tags: name === "Searchy Beta" ? ["beta-only"] : [] }, RPC);
  }
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openCharacters(page);
  await characterItem(page, "Gamma").waitFor();
  await page.getByLabel("Search characters").fill("searchy");
  await page.waitForFunction(() => Array.from(document.querySelectorAll("li.card.character .card-title")).every((e) => /Searchy/.test(e.textContent ?? "")));
  assert.deepEqual((await namesOnScreen(page)).sort(), ["Searchy Alpha", "Searchy Beta"]);
  await page.getByLabel("Search characters").fill("no such name");
  await page.getByText("No characters match.").waitFor();
  await page.getByLabel("Search characters").fill("");
  await characterItem(page, "Gamma").waitFor();
  await page.getByLabel("Filter by tag").selectOption("beta-only");
  await page.waitForFunction(() => document.querySelectorAll("li.card.character").length === 1);
  assert.deepEqual(await namesOnScreen(page), ["Searchy Beta"]);
  // A tag on a character filters by it too.
  await page.getByLabel("Filter by tag").selectOption("");
  await characterItem(page, "Gamma").waitFor();
  await characterItem(page, "Searchy Beta").getByRole("button", { name: "beta-only" }).click();
  await page.waitForFunction(() => document.querySelectorAll("li.card.character").length === 1);
  assert.equal(await page.getByLabel("Filter by tag").inputValue(), "beta-only");
  await ctx.close();
  assertNoProblems();
});

test("the characters screen at 375px: no horizontal scrolling, avatars and actions in view", async () => {
  const ctx = await world.context({ width: 375, height: 740 });
  const page = world.watch(await ctx.newPage());
  await openCharacters(page);
  await characterItem(page, "Pixel").locator('.avatar[data-avatar="shown"]').waitFor();
  const overflow = await page.evaluate(() => {
    const main = document.getElementById("view");
    return { page: document.documentElement.scrollWidth - document.documentElement.clientWidth, main: main ? main.scrollWidth - main.clientWidth : 0 };
  });
  assert.deepEqual(overflow, { page: 0, main: 0 });
  const edit = await characterItem(page, "Pixel").getByRole("button", { name: "Edit Pixel" }).boundingBox();
  assert.ok(edit && edit.x >= 0 && edit.x + edit.width <= 375, `the Edit button is in view: ${JSON.stringify(edit)}`);
  await shot(page, "characters-375");
  await page.setViewportSize({ width: 1000, height: 760 });
  await shot(page, "characters-list");
  await ctx.close();
  assertNoProblems();
});

test("export as JSON and as PNG downloads the card", async () => {
  await api.characters.importCharacter({ data: Buffer.from(v2Card("Exporta", { tags: ["export"] })), filename: "exporta.json" }, RPC);
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openCharacters(page);
  const [json] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export Exporta as JSON" }).click()]);
  assert.match(json.suggestedFilename(), /\.json$/);
  const text = readFileSync(await json.path(), "utf8");
  assert.ok(text.includes("Exporta"), "the card has the name");
  const parsed = JSON.parse(text) as { data: { name: string; tags: string[] } };
  assert.equal(parsed.data.name, "Exporta");
  assert.deepEqual(parsed.data.tags, ["export"]);
  const [picture] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export Exporta as PNG" }).click()]);
  assert.match(picture.suggestedFilename(), /\.png$/);
  const bytes = readFileSync(await picture.path());
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(bytes.includes(Buffer.from("chara\0", "latin1")), "a chara chunk");
  await ctx.close();
  assertNoProblems();
});

test("create with the new fields: the extensions are checked as JSON before anything is sent", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openCharacters(page);
  const form = page.getByRole("form", { name: "New character" });
  await form.getByLabel("Name", { exact: true }).fill("Formy");
  await form.getByLabel("First message", { exact: true }).fill("Hi from the form.");
  await form.getByRole("button", { name: "Add a greeting" }).click();
  await form.getByLabel("Alternate greeting 1", { exact: true }).fill("Another hello.");
  await form.getByLabel("Tags", { exact: true }).fill("made, form");
  await form.getByLabel("Creator", { exact: true }).fill("me");
  await page.getByText("Advanced: extensions").click();
  const ext = form.getByLabel("Extensions (JSON)");
  await ext.fill("[1, 2]");
  await form.getByText("Must be a JSON object").waitFor();
  assert.equal(await ext.getAttribute("aria-invalid"), "true");
  await ext.fill('{"x": ');
  await form.getByText(/Not valid JSON/).waitFor();
  await form.getByRole("button", { name: "Create character" }).click();
  await form.getByRole("alert").filter({ hasText: "the extensions are not a JSON object" }).waitFor();
  assert.equal((await api.characters.listCharacters({ nameContains: "Formy" }, RPC)).characters.length, 0);
  await ext.fill('{"x": {"y": 1}}');
  assert.equal(await ext.getAttribute("aria-invalid"), null);
  await form.getByLabel("Avatar (optional)").setInputFiles({ name: "formy.png", mimeType: "image/png", buffer: png([60, 160, 60]) });
  await form.getByRole("button", { name: "Create character" }).click();
  await page.getByText("Created Formy.").waitFor();
  const [c] = (await api.characters.listCharacters({ nameContains: "Formy" }, RPC)).characters;
  assert.deepEqual(c.alternateGreetings, ["Another hello."]);
  assert.deepEqual(c.tags, ["made", "form"]);
  assert.equal(c.creator, "me");
  assert.deepEqual(JSON.parse(c.extensionsJson), { x: { y: 1 } });
  assert.notEqual(c.avatarUrl, "");
  assert.equal(await shownAvatarWidth(characterItem(page, "Formy").locator(".avatar")), 16);
  await ctx.close();
  assertNoProblems();
});

test("a chat from an imported card: the first greeting with 1/3 swipes, and the avatar beside it", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openCharacters(page);
  const card = v2Card("Greeter", { first_mes: "First hello.", alternate_greetings: ["Second hello.", "Third hello."] });
  await importFile(page, "greeter.png", "image/png", png([90, 90, 220], card));
  await characterItem(page, "Greeter").waitFor();
  await profileId();
  await page.getByRole("link", { name: "Chats" }).click();
  // A combobox: the Characters page has other things labelled "Character"
  // until the Chats page has replaced it.
  await page.getByRole("combobox", { name: "Character", exact: true }).selectOption({ label: "Greeter" });
  await page.getByRole("button", { name: "Start chat" }).click();
  await page.waitForSelector("#composer");
  const first = page.locator(".msg-assistant").first();
  await first.locator(".msg-body", { hasText: "First hello." }).waitFor();
  await page.locator(".reply-tools .swipe-count", { hasText: /^1\/3$/ }).waitFor();
  assert.equal(await shownAvatarWidth(first.locator(".msg-avatar")), 16);
  await page.getByRole("button", { name: "Next alternative" }).click();
  await page.locator(".reply-tools .swipe-count", { hasText: /^2\/3$/ }).waitFor();
  await page.locator(".msg-assistant .msg-body", { hasText: "Second hello." }).waitFor();
  await page.getByRole("button", { name: "Next alternative" }).click();
  await page.locator(".reply-tools .swipe-count", { hasText: /^3\/3$/ }).waitFor();
  await page.locator(".msg-assistant .msg-body", { hasText: "Third hello." }).waitFor();
  // The avatar is still there after the list is read again.
  assert.equal(await shownAvatarWidth(page.locator(".msg-assistant .msg-avatar").first()), 16);
  await shot(page, "chat-avatar");
  await ctx.close();
  assertNoProblems();
});

test("delete after a confirmation; a character with chats is kept, with the server's reason", async () => {
  const ctx = await world.context();
  const page = world.watch(await ctx.newPage());
  await openCharacters(page);
  // Escape cancels the question and puts the focus back on Delete.
  await page.getByRole("button", { name: "Delete Gamma" }).click();
  await page.getByRole("button", { name: "Really delete Gamma" }).waitFor();
  await page.keyboard.press("Escape");
  await page.getByRole("button", { name: "Really delete Gamma" }).waitFor({ state: "detached" });
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Delete Gamma");
  await page.getByRole("button", { name: "Delete Gamma" }).click();
  await page.getByRole("button", { name: "Really delete Gamma" }).click();
  await page.getByRole("status").filter({ hasText: "Deleted Gamma." }).waitFor();
  await characterItem(page, "Gamma").waitFor({ state: "detached" });
  assert.equal((await api.characters.listCharacters({ nameContains: "Gamma" }, RPC)).characters.length, 0);
  // Greeter has a chat (the test before): refused, still listed.
  await page.getByRole("button", { name: "Delete Greeter" }).click();
  await page.getByRole("button", { name: "Really delete Greeter" }).click();
  await page.getByRole("alert").filter({ hasText: /Could not delete Greeter: .*\(FAILED_PRECONDITION\)/ }).waitFor();
  await characterItem(page, "Greeter").getByRole("button", { name: "Edit Greeter" }).waitFor();
  await ctx.close();
  assertNoProblems();
});
