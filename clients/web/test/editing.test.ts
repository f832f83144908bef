// Swipes and editing in the chat view, against the real server and the fake
// provider: regenerate and the alternatives counter, continue, edit, delete,
// rewind, fork, retry of a failed reply, and a second tab kept in step.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Locator, Page } from "playwright-core";
import {
  ARTIFACTS_DIR,
  createChat,
  delay,
  lastReplyOnScreen,
  lastStoredReply,
  liveText,
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

before(async () => {
  world = await World.start();
  api = world.server.clients();
});

after(async () => {
  await world?.stop();
});

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS_DIR, `${name}.png`), fullPage: false });

function assertNoProblems(): void {
  const problems = world.problems.filter((p) => !/Failed to load resource|ERR_INTERNET_DISCONNECTED|net::ERR/.test(p));
  assert.deepEqual(problems, [], "console errors or CSP violations");
}

/** Sends `content` through the API and waits for the reply, which says `reply`. */
async function exchange(chatId: string, content: string, reply: string): Promise<void> {
  world.upstream.script = { chunks: [reply], delayMs: 0 };
  for await (const event of api.messages.addUserMessageStreaming({ chatSessionId: chatId, content }, RPC)) {
    const c = event.event.case;
    if (c === "failed" || c === "cancelled") throw new Error(`the reply to ${content} did not complete: ${c}`);
  }
  await lastStoredReply(api, chatId);
}

async function storedMessages(chatId: string) {
  return (await api.chats.listMessages({ chatSessionId: chatId, pageSize: 500 }, RPC)).messages;
}

/** The text of every finished message on screen, in order. */
async function bodiesOnScreen(page: Page): Promise<string[]> {
  return (await page.locator(".messages > li.msg:not(.live) .msg-body").allTextContents()).map((t) => t.trim());
}

/** The message on screen whose text is exactly `text` (any run of white space matches any other). */
function message(page: Page, text: string): Locator {
  const words = text.split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return page.locator(".messages > li.msg").filter({ has: page.locator(".msg-body", { hasText: new RegExp(`^\\s*${words.join("\\s+")}\\s*$`) }) });
}

/** Waits for the last reply's counter to read `counter` ("2/3"), then checks its text. */
async function expectAlternative(page: Page, counter: string, text: string): Promise<void> {
  await page.locator(".reply-tools .swipe-count").filter({ hasText: new RegExp(`^${counter}$`) }).waitFor();
  assert.equal(await lastReplyOnScreen(page), text);
}

/** Sends `text` from the page and waits for its reply to end (however fast it is). */
async function sendAndWait(page: Page, text: string): Promise<void> {
  const before = await page.locator(".msg-assistant:not(.live)").count();
  await page.fill("#composer", text);
  await page.press("#composer", "Enter");
  await page.waitForFunction(
    (n) => document.querySelectorAll(".msg-assistant:not(.live)").length > n && document.querySelector(".chat")?.getAttribute("data-streaming") === "false",
    before,
    { timeout: 15_000 },
  );
}

async function openChat(ctx: Parameters<World["newPage"]>[0], chatId: string): Promise<Page> {
  const page = await world.newPage(ctx, `#/chat/${chatId}`);
  await page.waitForSelector("#composer");
  await page.locator(".conn[data-state=live]").waitFor({ state: "attached" });
  return page;
}

test("regenerate twice, then swipe between 1/3, 2/3 and 3/3", async () => {
  const chatId = await createChat(api, "Swipes");
  const ctx = await world.context();
  const page = await openChat(ctx, chatId);
  world.upstream.script = { chunks: ["Alpha", " reply."], delayMs: 0 };
  await sendAndWait(page, "Say something.");
  await expectAlternative(page, "1/1", "Alpha reply.");
  const replies = await page.locator(".msg-assistant").count();

  // Regenerate: the new text streams in place of the old one.
  world.upstream.script = { chunks: ["Beta", " reply", " streaming", " in."], delayMs: 150 };
  await page.getByRole("button", { name: "Regenerate", exact: true }).click();
  await waitForLiveText(page, 1);
  assert.equal(await page.locator(".msg-assistant").count(), replies, "the reply is replaced, not added");
  assert.ok(!(await bodiesOnScreen(page)).includes("Alpha reply."));
  await waitReplyDone(page);
  await expectAlternative(page, "2/2", "Beta reply streaming in.");

  // At the last alternative the right arrow regenerates (as in SillyTavern).
  world.upstream.script = { chunks: ["Gamma", " reply."], delayMs: 0 };
  await page.getByRole("button", { name: "New alternative (regenerate)" }).click();
  await waitReplyDone(page);
  await expectAlternative(page, "3/3", "Gamma reply.");
  await shot(page, "swipes");

  // Flick back and forth.
  await page.getByRole("button", { name: "Previous alternative" }).click();
  await expectAlternative(page, "2/3", "Beta reply streaming in.");
  await page.getByRole("button", { name: "Previous alternative" }).click();
  await expectAlternative(page, "1/3", "Alpha reply.");
  assert.ok(await page.getByRole("button", { name: "Previous alternative" }).isDisabled());
  await page.getByRole("button", { name: "Next alternative" }).click();
  await expectAlternative(page, "2/3", "Beta reply streaming in.");
  // The keyboard: → from the empty message box.
  await page.locator("#composer").focus();
  await page.keyboard.press("ArrowRight");
  await expectAlternative(page, "3/3", "Gamma reply.");
  await page.keyboard.press("ArrowLeft");
  await expectAlternative(page, "2/3", "Beta reply streaming in.");

  // The server agrees, and a reload shows the selected one.
  const stored = await lastStoredReply(api, chatId);
  const alternatives = await api.messages.listAlternatives({ messageId: stored.id }, RPC);
  assert.deepEqual(
    alternatives.alternatives.map((a) => a.content),
    ["Alpha reply.", "Beta reply streaming in.", "Gamma reply."],
  );
  assert.equal(alternatives.selectedIndex, 1);
  await page.reload();
  await page.waitForSelector("#composer");
  await expectAlternative(page, "2/3", "Beta reply streaming in.");
  assert.equal(world.upstream.requests >= 3, true);
  assert.equal(await page.locator("[data-mismatch]").count(), 0);
  await ctx.close();
  assertNoProblems();
});

test("continue appends to the last reply, also across a reload mid-way", async () => {
  const chatId = await createChat(api, "Continue");
  const ctx = await world.context();
  const page = await openChat(ctx, chatId);
  world.upstream.script = { chunks: ["Once upon"], delayMs: 0 };
  await sendAndWait(page, "Tell me a story.");
  assert.equal(await lastReplyOnScreen(page), "Once upon");

  const more = slowReply(30).map((w) => ` ${w.trim()}`);
  world.upstream.script = { chunks: more, delayMs: 60 };
  await page.getByRole("button", { name: "Continue" }).click();
  // The old text stays; the new text appends to it.
  const early = await waitForLiveText(page, "Once upon".length + 4);
  assert.ok(early.startsWith("Once upon "), early);
  await delay(300 + Math.floor(Math.random() * 400));
  await page.reload({ timeout: 15_000 });
  await page.waitForSelector("#composer");
  const restored = await liveText(page);
  await waitReplyDone(page, 20_000);

  const stored = await lastStoredReply(api, chatId);
  assert.equal(stored.content, `Once upon${more.join("")}`);
  // Straight after the reload the text so far was back, old text included.
  assert.ok(restored.length > "Once upon ".length && stored.content.startsWith(restored), `restored ${JSON.stringify(restored)}`);
  assert.equal(await lastReplyOnScreen(page), stored.content);
  // Still one message, one alternative.
  await expectAlternative(page, "1/1", stored.content);
  assert.equal(await page.locator(".msg-assistant").count(), 1);
  assert.equal(await page.locator("[data-mismatch]").count(), 0);
  await ctx.close();
  assertNoProblems();
});

test("edit a user message (Enter saves, Escape cancels) and an assistant message; a reload shows the edits", async () => {
  const chatId = await createChat(api, "Edits");
  await exchange(chatId, "How are you?", "Fine, thanks.");
  const ctx = await world.context();
  const page = await openChat(ctx, chatId);
  const user = message(page, "How are you?");
  const box = page.getByRole("textbox", { name: "Message text" });

  // Escape cancels, and does not count as "stop the reply".
  await user.getByRole("button", { name: "Edit" }).click();
  assert.equal(await box.inputValue(), "How are you?");
  await box.fill("Something else");
  await box.press("Escape");
  await box.waitFor({ state: "detached" });
  assert.deepEqual(await bodiesOnScreen(page), ["How are you?", "Fine, thanks."]);

  // Shift+Enter adds a line, Enter saves.
  await user.getByRole("button", { name: "Edit" }).click();
  await box.fill("How are you, Ada?");
  await box.press("End");
  await box.press("Shift+Enter");
  await box.pressSequentially("Tell me.");
  await box.press("Enter");
  await box.waitFor({ state: "detached" });
  await message(page, "How are you, Ada?\nTell me.").locator(".edited").waitFor();

  // An assistant message, with the Save button; markdown as usual.
  await message(page, "Fine, thanks.").getByRole("button", { name: "Edit" }).click();
  await box.fill("Fine, *thank you*.");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator(".msg-assistant em", { hasText: "thank you" }).waitFor();

  const stored = await storedMessages(chatId);
  assert.deepEqual(
    stored.map((m) => m.content),
    ["How are you, Ada?\nTell me.", "Fine, *thank you*."],
  );
  assert.ok(stored.every((m) => m.editedAt));
  await page.reload();
  await page.waitForSelector("#composer");
  await page.locator(".msg-assistant em", { hasText: "thank you" }).waitFor();
  assert.deepEqual(await bodiesOnScreen(page), ["How are you, Ada?\nTell me.", "Fine, thank you."]);
  await shot(page, "edited");
  await ctx.close();
  assertNoProblems();
});

test("an edit while a reply runs is refused with the server's ABORTED, and the draft is kept", async () => {
  const chatId = await createChat(api, "Busy");
  await exchange(chatId, "First.", "First reply.");
  const ctx = await world.context();
  const page = await openChat(ctx, chatId);
  world.upstream.script = { chunks: slowReply(80), delayMs: 60 };
  await send(page, "Go on and on.");
  await waitForLiveText(page, 5);
  await message(page, "First.").getByRole("button", { name: "Edit" }).click();
  const box = page.getByRole("textbox", { name: "Message text" });
  await box.fill("First, edited.");
  await box.press("Enter");
  const alert = page.getByRole("alert").filter({ hasText: "Could not save the edit" });
  await alert.waitFor();
  assert.match((await alert.textContent()) ?? "", /\(ABORTED\)$/);
  // The draft is still there; Escape closes the editor, not the reply.
  assert.equal(await box.inputValue(), "First, edited.");
  await box.press("Escape");
  await box.waitFor({ state: "detached" });
  assert.equal(await page.locator(".live").count(), 1, "Escape in the editor must not stop the reply");
  await page.getByRole("button", { name: "Stop the reply" }).click();
  await waitReplyDone(page);
  assert.equal((await storedMessages(chatId))[0].content, "First.");
  await ctx.close();
  assertNoProblems();
});

test("delete a message and rewind the chat, each after a confirmation", async () => {
  const chatId = await createChat(api, "Pruning");
  await exchange(chatId, "one", "Reply one.");
  await exchange(chatId, "two", "Reply two.");
  await exchange(chatId, "three", "Reply three.");
  const ctx = await world.context();
  const page = await openChat(ctx, chatId);
  assert.equal((await bodiesOnScreen(page)).length, 6);

  // Delete, but cancel first.
  const two = message(page, "Reply two.");
  await two.getByRole("button", { name: "Delete" }).click();
  await two.getByText("Delete this message?").waitFor();
  await two.getByRole("button", { name: "Cancel" }).click();
  assert.equal((await bodiesOnScreen(page)).length, 6);
  await two.getByRole("button", { name: "Delete" }).click();
  await two.getByRole("button", { name: "Really delete this message" }).click();
  await two.waitFor({ state: "detached" });
  assert.deepEqual(await bodiesOnScreen(page), ["one", "Reply one.", "two", "three", "Reply three."]);
  assert.deepEqual(
    (await storedMessages(chatId)).map((m) => m.content),
    ["one", "Reply one.", "two", "three", "Reply three."],
  );

  // Rewind to "two": everything after it goes.
  await message(page, "two").getByRole("button", { name: "Rewind to here" }).click();
  await page.getByRole("button", { name: "Really delete every later message" }).click();
  await message(page, "three").waitFor({ state: "detached" });
  assert.deepEqual(await bodiesOnScreen(page), ["one", "Reply one.", "two"]);
  assert.deepEqual(
    (await storedMessages(chatId)).map((m) => m.content),
    ["one", "Reply one.", "two"],
  );

  // The chat now ends with the user's message: it can be answered.
  world.upstream.script = { chunks: ["A new reply to two."], delayMs: 0 };
  await page.getByRole("button", { name: "Get a reply" }).click();
  await waitReplyDone(page);
  assert.equal(await lastReplyOnScreen(page), "A new reply to two.");
  assert.deepEqual(await bodiesOnScreen(page), ["one", "Reply one.", "two", "A new reply to two."]);
  await ctx.close();
  assertNoProblems();
});

test("fork from a message opens a new chat with the history up to it", async () => {
  const chatId = await createChat(api, "Original");
  await exchange(chatId, "one", "Reply one.");
  await exchange(chatId, "two", "Reply two.");
  const ctx = await world.context();
  const page = await openChat(ctx, chatId);
  await message(page, "Reply one.").getByRole("button", { name: "Fork from here" }).click();
  await page.waitForFunction((id) => location.hash.startsWith("#/chat/") && !location.hash.endsWith(id), chatId);
  const forkId = await page.evaluate(() => location.hash.slice("#/chat/".length));
  await page.getByRole("heading", { name: "Original (fork)" }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll(".messages > li.msg").length === 2);
  assert.deepEqual(await bodiesOnScreen(page), ["one", "Reply one."]);
  assert.deepEqual(
    (await storedMessages(forkId)).map((m) => m.content),
    ["one", "Reply one."],
  );
  // The original is untouched, and the fork goes its own way.
  assert.equal((await storedMessages(chatId)).length, 4);
  await page.locator(".conn[data-state=live]").waitFor({ state: "attached" });
  world.upstream.script = { chunks: ["Only in the fork."], delayMs: 0 };
  await sendAndWait(page, "three");
  assert.equal(await lastReplyOnScreen(page), "Only in the fork.");
  assert.equal((await storedMessages(chatId)).length, 4);
  await ctx.close();
  assertNoProblems();
});

test("a failed reply shows its reason and a Retry button, which regenerates it", async () => {
  const chatId = await createChat(api, "Retry");
  const ctx = await world.context();
  const page = await openChat(ctx, chatId);
  world.upstream.script = { chunks: [], delayMs: 0, status: 401 };
  await send(page, "Are you there?");
  await page.getByRole("alert").filter({ hasText: "The reply failed" }).waitFor({ timeout: 15_000 });
  const failed = page.locator(".msg-assistant").last();
  await failed.locator(".badge-failed").waitFor();
  assert.match((await failed.locator(".msg-error").textContent()) ?? "", /KEY_REJECTED/);
  await shot(page, "retry");

  world.upstream.script = { chunks: ["Here", " I am."], delayMs: 20 };
  await failed.getByRole("button", { name: "Retry" }).click();
  await waitReplyDone(page);
  await expectAlternative(page, "2/2", "Here I am.");
  assert.equal(await page.locator(".msg-assistant .badge-failed").count(), 0);
  assert.ok(await page.locator(".chat > .error").isHidden(), "the old failure is no longer shown");
  const stored = await lastStoredReply(api, chatId);
  assert.equal(stored.status, 1 /* COMPLETED */);
  assert.equal(stored.content, "Here I am.");
  await ctx.close();
  assertNoProblems();
});

test("two tabs: an edit, a regeneration and a swipe in one show in the other", async () => {
  const chatId = await createChat(api, "Two tabs");
  await exchange(chatId, "Hello there.", "Hi!");
  const ctx = await world.context();
  const a = await openChat(ctx, chatId);
  const b = await openChat(ctx, chatId);
  await waitForWatchers(api, chatId, 2);

  // An edit in A reaches B (ChatChanged).
  await message(a, "Hello there.").getByRole("button", { name: "Edit" }).click();
  await a.getByRole("textbox", { name: "Message text" }).fill("Hello there, friend.");
  await a.getByRole("textbox", { name: "Message text" }).press("Enter");
  await message(b, "Hello there, friend.").waitFor();

  // A regeneration in A streams in B, in place of the old text.
  const chunks = slowReply(24);
  world.upstream.script = { chunks, delayMs: 60 };
  await a.getByRole("button", { name: "Regenerate", exact: true }).click();
  await waitForLiveText(b, 5);
  assert.equal(await b.locator(".msg-assistant").count(), 1);
  assert.ok(!(await bodiesOnScreen(b)).includes("Hi!"));
  await waitReplyDone(a, 20_000);
  await waitReplyDone(b, 20_000);
  const stored = await lastStoredReply(api, chatId);
  assert.equal(stored.content, chunks.join(""));
  await expectAlternative(a, "2/2", stored.content);
  await expectAlternative(b, "2/2", stored.content);

  // A swipe back in A: B follows.
  await a.getByRole("button", { name: "Previous alternative" }).click();
  await expectAlternative(a, "1/2", "Hi!");
  await expectAlternative(b, "1/2", "Hi!");

  // A continuation in A: B shows the old text with the new text appended as it streams.
  const more = slowReply(20).map((w) => ` ${w.trim()}`);
  world.upstream.script = { chunks: more, delayMs: 60 };
  await a.getByRole("button", { name: "Continue" }).click();
  const seen = await waitForLiveText(b, "Hi! ".length + 3);
  assert.ok(seen.startsWith("Hi! "), seen);
  await waitReplyDone(a, 20_000);
  await waitReplyDone(b, 20_000);
  await expectAlternative(a, "1/2", `Hi!${more.join("")}`);
  await expectAlternative(b, "1/2", `Hi!${more.join("")}`);
  assert.equal((await lastStoredReply(api, chatId)).content, `Hi!${more.join("")}`);
  for (const p of [a, b]) assert.equal(await p.locator("[data-mismatch]").count(), 0);
  await ctx.close();
  assertNoProblems();
});
