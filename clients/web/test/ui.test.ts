// The UI against the real server and a fake provider, in Debian's chromium.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { join } from "node:path";
import type { Page } from "playwright-core";
import {
  ARTIFACTS_DIR,
  createChat,
  delay,
  lastReplyOnScreen,
  lastStoredReply,
  liveText,
  PACKAGE_DIR,
  RPC,
  send,
  slowReply,
  waitForLiveText,
  waitForWatchers,
  waitReplyDone,
  World,
  type Clients,
} from "./harness.js";

let world: World;
let api: Clients;
let chatId: string;

before(async () => {
  world = await World.start();
  api = world.server.clients();
  chatId = await createChat(api, "Test chat");
});

after(async () => {
  await world?.stop();
});

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS_DIR, `${name}.png`), fullPage: false });

async function openChat(page: Page, id = chatId): Promise<void> {
  await page.goto(world.url(`#/chat/${id}`), { timeout: 15_000 });
  await page.waitForSelector("#composer", { timeout: 10_000 });
  // Following: the server counts the page as a watcher.
}

function assertNoProblems(): void {
  const problems = world.problems.filter((p) => !/Failed to load resource|ERR_INTERNET_DISCONNECTED|net::ERR/.test(p));
  assert.deepEqual(problems, [], "console errors or CSP violations");
}

test("create a character, a profile and a chat through the UI", async () => {
  const ctx = await world.context();
  const page = await world.newPage(ctx, "#/characters");
  await page.getByLabel("Name").fill("Bard");
  await page.getByLabel("Description").fill("{{char}} is a bard who teases {{user}}.");
  await page.getByLabel("First message").fill("Well met, {{user}}!");
  await page.getByRole("button", { name: "Create character" }).click();
  await page.getByRole("button", { name: "Edit Bard" }).waitFor();
  // Edit it.
  await page.getByRole("button", { name: "Edit Bard" }).click();
  await page.getByLabel("Description").fill("{{char}} is a bard who sings to {{user}}.");
  await page.getByRole("button", { name: "Save character" }).click();
  await page.getByText("Saved Bard.").waitFor();
  await shot(page, "characters");

  await page.getByRole("link", { name: "Profiles" }).click();
  await page.getByLabel("Name").fill("Sam");
  await page.getByLabel("Description").fill("A travelling merchant.");
  await page.getByRole("button", { name: "Create profile" }).click();
  await page.getByRole("button", { name: "Edit Sam" }).click();
  await page.getByLabel("Name").fill("Samwise");
  await page.getByRole("button", { name: "Save profile" }).click();
  await page.getByRole("button", { name: "Edit Samwise" }).waitFor();

  await page.getByRole("link", { name: "Chats" }).click();
  await page.getByRole("combobox", { name: "Character", exact: true }).selectOption({ label: "Bard" });
  await page.getByLabel("Your profile").selectOption({ label: "Samwise" });
  await page.getByLabel("Title (optional)").fill("Tavern");
  await page.getByRole("button", { name: "Start chat" }).click();
  await page.waitForSelector("#composer");
  await page.getByRole("heading", { name: "Tavern" }).waitFor();
  // The character's first message, names filled in.
  await page.getByText("Well met, Samwise!").waitFor();

  // Back to the list: the chat is there; delete it with a confirmation.
  await page.getByRole("link", { name: "Chats" }).click();
  await page.getByRole("link", { name: "Tavern" }).waitFor();
  await shot(page, "chats");
  await page.getByRole("button", { name: "Delete Tavern" }).click();
  await page.getByRole("button", { name: "Really delete Tavern" }).click();
  await page.getByRole("link", { name: "Tavern" }).waitFor({ state: "detached" });
  const { chatSessions } = await api.chats.listChatSessions({}, RPC);
  assert.ok(!chatSessions.some((c) => c.title === "Tavern"));
  await ctx.close();
  assertNoProblems();
});

test("send a message and watch the reply stream in", async () => {
  world.upstream.script = { chunks: ["Hello", " **there**,", " traveller", " — 🎭", " welcome!"], delayMs: 120 };
  const ctx = await world.context();
  const page = await world.newPage(ctx, `#/chat/${chatId}`);
  await page.waitForSelector("#composer");
  await send(page, "Hi! Who are you?");
  // Streaming: some text before the end, the Stop button enabled meanwhile.
  const partial = await waitForLiveText(page, 1);
  assert.ok(await page.locator("#stop").isEnabled());
  await waitReplyDone(page);
  const final = await lastReplyOnScreen(page);
  assert.equal(final, "Hello there, traveller — 🎭 welcome!");
  assert.ok(final.startsWith(partial.replace(/\s+$/, "")) || partial.length < final.length, `partial ${partial}`);
  assert.equal(await page.locator(".msg-assistant strong").last().textContent(), "there");
  assert.equal(await page.locator(".msg-user .msg-body").last().textContent(), "Hi! Who are you?");
  const stored = await lastStoredReply(api, chatId);
  assert.equal(stored.content, "Hello **there**, traveller — 🎭 welcome!");
  assert.equal(await page.locator("[data-mismatch]").count(), 0);
  assert.ok(await page.locator("#stop").isDisabled());
  await shot(page, "chat");
  await ctx.close();
  assertNoProblems();
});

test("a reload mid-reply shows the text so far and resumes: nothing lost or doubled", async () => {
  const chunks = slowReply(36);
  world.upstream.script = { chunks, delayMs: 60 };
  const ctx = await world.context();
  const page = await world.newPage(ctx, `#/chat/${chatId}`);
  await page.waitForSelector("#composer");
  await send(page, "Tell me a long story.");
  await waitForLiveText(page, 3);
  await delay(Math.floor(Math.random() * 900));
  const before = await liveText(page);
  await page.reload({ timeout: 15_000 });
  // Straight after the reload, the text so far is back (from sessionStorage), before the stream continues.
  await page.waitForSelector("#composer");
  const restored = await liveText(page);
  await waitReplyDone(page, 20_000);
  const final = await lastReplyOnScreen(page);
  const stored = await lastStoredReply(api, chatId);
  assert.equal(stored.content, chunks.join(""));
  assert.equal(final, stored.content);
  assert.ok(restored.length > 0 && stored.content.startsWith(restored), `restored text ${JSON.stringify(restored)}`);
  assert.ok(before.length > 0);
  assert.equal(await page.locator("[data-mismatch]").count(), 0);
  assert.equal(await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith("roleplay.reply.")).length), 0);
  await ctx.close();
  assertNoProblems();
});

test("offline then online mid-reply: a visible reconnecting state, then the whole reply", async () => {
  const chunks = slowReply(30);
  world.upstream.script = { chunks, delayMs: 60 };
  const ctx = await world.context();
  const page = await world.newPage(ctx, `#/chat/${chatId}`);
  await page.waitForSelector("#composer");
  await send(page, "Keep talking.");
  await waitForLiveText(page, 3);
  await ctx.setOffline(true);
  await page.waitForFunction(() => /reconnecting/i.test(document.querySelector(".conn")?.textContent ?? ""), null, { timeout: 5000 });
  await shot(page, "reconnecting");
  await delay(800);
  await ctx.setOffline(false);
  await waitReplyDone(page, 20_000);
  await page.waitForFunction(() => (document.querySelector(".conn")?.textContent ?? "") === "", null, { timeout: 10_000 });
  const stored = await lastStoredReply(api, chatId);
  assert.equal(stored.content, chunks.join(""));
  assert.equal(await lastReplyOnScreen(page), stored.content);
  assert.equal(await page.locator("[data-mismatch]").count(), 0);
  await ctx.close();
  assertNoProblems();
});

test("a cut connection mid-reply: reconnects with backoff and resumes where it was", async () => {
  const chunks = slowReply(30);
  world.upstream.script = { chunks, delayMs: 50 };
  const ctx = await world.context();
  const page = await world.newPage(ctx, `#/chat/${chatId}`);
  await page.waitForSelector("#composer");
  await send(page, "Through the tunnel.");
  await waitForLiveText(page, 3);
  assert.ok(world.proxy!.cut() > 0);
  await delay(300);
  world.proxy!.cut(); // again, while it reconnects
  await waitReplyDone(page, 20_000);
  const reconnects = Number(await page.locator(".conn").getAttribute("data-reconnects"));
  assert.ok(reconnects >= 1, `reconnects: ${reconnects}`);
  const stored = await lastStoredReply(api, chatId);
  assert.equal(stored.content, chunks.join(""));
  assert.equal(await lastReplyOnScreen(page), stored.content);
  assert.equal(await page.locator("[data-mismatch]").count(), 0);
  await ctx.close();
  assertNoProblems();
});

test("two tabs on one chat see the same reply live", async () => {
  const chunks = slowReply(30);
  world.upstream.script = { chunks, delayMs: 60 };
  const ctx = await world.context();
  const before = (await api.messages.getStreamStatus({ chatSessionId: chatId }, RPC)).watchers;
  const a = await world.newPage(ctx, `#/chat/${chatId}`);
  const b = await world.newPage(ctx, `#/chat/${chatId}`);
  await a.waitForSelector("#composer");
  await b.waitForSelector("#composer");
  await waitForWatchers(api, chatId, before + 2);
  await send(a, "Both of you, listen.");
  // The other tab shows the reply while it streams, and the user's message.
  await waitForLiveText(b, 5);
  await b.getByText("Both of you, listen.").waitFor();
  // A third tab opened mid-reply starts from the stored text so far and resumes from its offset.
  const c = await world.newPage(ctx, `#/chat/${chatId}`);
  await waitForLiveText(c, 1);
  await waitReplyDone(a, 20_000);
  await waitReplyDone(b, 20_000);
  await waitReplyDone(c, 20_000);
  const stored = await lastStoredReply(api, chatId);
  assert.equal(stored.content, chunks.join(""));
  assert.equal(await lastReplyOnScreen(a), stored.content);
  assert.equal(await lastReplyOnScreen(b), stored.content);
  assert.equal(await lastReplyOnScreen(c), stored.content);
  for (const p of [a, b, c]) assert.equal(await p.locator("[data-mismatch]").count(), 0);
  await ctx.close();
  assertNoProblems();
});

test("Stop (and Escape) cancels the reply and keeps its text", async () => {
  const chunks = slowReply(80);
  world.upstream.script = { chunks, delayMs: 60 };
  const ctx = await world.context();
  const page = await world.newPage(ctx, `#/chat/${chatId}`);
  await page.waitForSelector("#composer");
  await send(page, "Go on forever.");
  await waitForLiveText(page, 10);
  await page.getByRole("button", { name: "Stop the reply" }).click();
  await waitReplyDone(page, 10_000);
  const stored = await lastStoredReply(api, chatId);
  assert.equal(stored.status, 4 /* CANCELLED */);
  assert.ok(stored.content.length > 0 && stored.content.length < chunks.join("").length);
  assert.equal(await lastReplyOnScreen(page), stored.content);
  await page.locator(".msg-assistant .badge-stopped").last().waitFor();

  // Escape does the same.
  await send(page, "Again.");
  await waitForLiveText(page, 5);
  await page.keyboard.press("Escape");
  await waitReplyDone(page, 10_000);
  const second = await lastStoredReply(api, chatId);
  assert.equal(second.status, 4);
  assert.equal(await lastReplyOnScreen(page), second.content);
  await ctx.close();
  assertNoProblems();
});

test("model output with HTML renders as text and runs nothing", async () => {
  world.upstream.script = {
    chunks: [
      "Look: <script>window.__pwned=1</script> and ",
      '<img src=x onerror="window.__pwned=1"> and ',
      "[a link](javascript:window.__pwned=1) and [ok](https://example.com/) and **bold**",
      "\n\n| left | right |\n|:--|--:|\n| 1 | 2 |\n",
    ],
    delayMs: 30,
  };
  const ctx = await world.context();
  const page = await world.newPage(ctx, `#/chat/${chatId}`);
  await page.waitForSelector("#composer");
  await send(page, "<b>not bold</b> <img src=x onerror=\"window.__pwned=1\">");
  await waitReplyDone(page);
  const check = async () => {
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.equal(await page.locator(".messages script, .messages img, .messages b").count(), 0);
    assert.equal(await page.locator('.messages a[href^="javascript"]').count(), 0);
    const text = await lastReplyOnScreen(page);
    assert.ok(text.includes("<script>window.__pwned=1</script>"), text);
    assert.ok(text.includes('<img src=x onerror="window.__pwned=1">'), text);
    // Table alignment comes as a class, not an inline style the CSP would refuse.
    assert.equal(await page.locator(".messages [style]").count(), 0);
    assert.ok((await page.locator(".messages td.align-right").count()) >= 1);
    const ok = page.locator('.messages a[href="https://example.com/"]').last();
    assert.equal(await ok.getAttribute("rel"), "noopener noreferrer nofollow");
    await page.getByText('<b>not bold</b> <img src=x onerror="window.__pwned=1">').last().waitFor();
  };
  await check();
  // The same from the stored messages (ListMessages), after a reload.
  await page.reload();
  await page.waitForSelector(".msg-assistant");
  await waitReplyDone(page);
  await check();
  await shot(page, "xss-as-text");
  await ctx.close();
  assertNoProblems();
});

test("a failed reply shows its reason", async () => {
  world.upstream.script = { chunks: [], delayMs: 0, status: 401 };
  const ctx = await world.context();
  const page = await world.newPage(ctx, `#/chat/${chatId}`);
  await page.waitForSelector("#composer");
  await send(page, "Are you there?");
  await page.getByRole("alert").filter({ hasText: "The reply failed" }).waitFor({ timeout: 15_000 });
  const alert = (await page.getByRole("alert").filter({ hasText: "The reply failed" }).textContent()) ?? "";
  assert.match(alert, /KEY_REJECTED/);
  await page.locator(".msg-assistant .badge-failed").last().waitFor();
  await shot(page, "failed");
  world.upstream.script = { chunks: ["Back again."], delayMs: 0 };
  await ctx.close();
});

test("settings: the provider key is write-only and shows its hint; usage has a chart", async () => {
  const ctx = await world.context();
  const page = await world.newPage(ctx, "#/settings");
  await page.getByLabel("New key (write-only)").first().fill("sk-or-v1-abcdefgh12345678wxyz");
  await page.getByRole("button", { name: "Save key" }).first().click();
  await page.locator("#provider-key-state").filter({ hasText: /Set \(.*wxyz\)/ }).waitFor();
  assert.equal(await page.locator("#provider-key").inputValue(), "");
  const settings = await api.settings.getSettings({}, RPC);
  assert.ok(settings.apiKeySet);
  // The admin (single-user mode: local is an admin) can change the default model.
  await page.getByLabel("Default model").fill("test/model-1");
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByText("Saved.").waitFor();
  assert.equal((await api.settings.getSettings({}, RPC)).defaultModel, "test/model-1");
  await shot(page, "settings");
  // Put the fake provider's key back for later tests.
  await api.settings.setProviderApiKey({ apiKey: "sk-test-0123456789abcdef" }, RPC);

  await page.getByRole("link", { name: "Usage" }).click();
  await page.locator("svg.chart rect.bar-completion").first().waitFor();
  const rows = await page.locator("table.usage tbody tr").count();
  assert.ok(rows >= 2, `usage rows: ${rows}`);
  await shot(page, "usage");
  await ctx.close();
  assertNoProblems();
});

test("a 375px-wide viewport: no horizontal scrolling, the composer is usable", async () => {
  const ctx = await world.context({ width: 375, height: 740 });
  const page = await world.newPage(ctx, `#/chat/${chatId}`);
  await page.waitForSelector("#composer");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `page is ${width}px wide`);
  const box = await page.locator("#composer").boundingBox();
  assert.ok(box && box.x >= 0 && box.x + box.width <= 375 && box.y + box.height <= 740, JSON.stringify(box));
  assert.ok(await page.locator("#send").isVisible());
  world.upstream.script = {
    chunks: ["*Ada bows.* ", "Well met! ", "Tonight I can offer:\n\n", "- a **song** of the sea\n", "- a tale of 🐉 dragons\n\n", "Which will it be?"],
    delayMs: 40,
  };
  await send(page, "Good evening! What can you do?");
  await waitReplyDone(page);
  await page.locator(".msg-assistant li").first().waitFor();
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 375);
  await shot(page, "mobile-chat");
  await page.screenshot({ path: join(PACKAGE_DIR, "screenshot.png") });
  await page.getByRole("link", { name: "Chats" }).click();
  await page.waitForSelector(".cards");
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 375);
  await shot(page, "mobile-chats");
  await ctx.close();
  assertNoProblems();
});
