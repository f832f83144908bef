// Signing in with a token, signing out, and a plain user's PERMISSION_DENIED on global settings.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { png, v2Card } from "./cards.js";
import { ARTIFACTS_DIR, RPC, waitUntil, World } from "./harness.js";

let world: World;
let bobToken = "";

before(async () => {
  world = await World.start();
  const alice = await world.server.cli(["users", "add", "alice", "--admin"]);
  assert.equal(alice.code, 0, alice.stderr);
  const bob = await world.server.cli(["users", "add", "bob"]);
  assert.equal(bob.code, 0, bob.stderr);
  bobToken = bob.stdout.trim();
  assert.ok(bobToken.length > 20);
  // The users were added by another process: the server trusts its "no
  // token yet" answer for up to a second. Wait until it asks for a token.
  await waitUntil(
    async () => {
      try {
        await world.server.clients().users.getCurrentUser({}, RPC);
        return false;
      } catch {
        return true;
      }
    },
    10_000,
    "the server to require tokens",
  );
});

after(async () => {
  await world?.stop();
});

test("tokens: sign in, a wrong token is refused, sign out; a plain user cannot change global settings", async () => {
  const ctx = await world.context();
  const page = await world.newPage(ctx, "#/chats");
  // Tokens exist now: a call without one is refused, so the sign-in form shows.
  const token = page.getByLabel("API token");
  await token.waitFor();
  await token.fill("not-a-real-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "not accepted" }).waitFor();
  await page.screenshot({ path: join(ARTIFACTS_DIR, "sign-in.png") });

  await token.fill(bobToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  assert.equal(await page.locator(".top .user").textContent(), "bob");
  assert.equal(await page.evaluate(() => localStorage.getItem("roleplay.token")), bobToken);

  // The token is kept: a reload stays signed in.
  await page.reload();
  await page.getByRole("button", { name: "Sign out" }).waitFor();

  // Global settings are admin-only: the server's message is shown.
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByLabel("Default model").fill("bob/model");
  await page.getByRole("button", { name: "Save settings" }).click();
  const denied = page.getByRole("alert").filter({ hasText: "PERMISSION_DENIED" });
  await denied.waitFor();
  // Bob's own key is his to set; the field is write-only and the hint shows.
  await page.locator("#user-key").fill("sk-bob-1234567890abcd");
  await page.getByRole("button", { name: "Save key" }).nth(1).click();
  await page.locator("#user-key-state").filter({ hasText: /Set \(.*abcd\)/ }).waitFor();
  assert.equal(await page.locator("#user-key").inputValue(), "");
  const settings = await world.server.clients(bobToken).settings.getSettings({}, RPC);
  assert.ok(settings.userApiKeySet);
  await page.screenshot({ path: join(ARTIFACTS_DIR, "settings-plain-user.png"), fullPage: true });

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API token").waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem("roleplay.token")), null);
  await ctx.close();
});

test("with tokens, avatars are fetched with the token (not shown to a request without one)", async () => {
  const bob = world.server.clients(bobToken);
  const { character } = await bob.characters.importCharacter({ data: png([30, 140, 90], v2Card("Tokeny")), filename: "tokeny.png" }, RPC);
  assert.ok(character?.avatarUrl);
  const bare = await fetch(`${world.server.baseUrl}${character.avatarUrl}`, { signal: AbortSignal.timeout(5000) });
  assert.equal(bare.status, 401);
  const ctx = await world.context({ token: bobToken });
  const page = await world.newPage(ctx, "#/characters");
  const img = page.locator("li.card.character", { hasText: "Tokeny" }).locator('.avatar[data-avatar="shown"] img');
  await img.waitFor();
  assert.equal(await img.evaluate((el: HTMLImageElement) => el.naturalWidth), 16);
  assert.match((await img.getAttribute("src")) ?? "", /^blob:/);
  await ctx.close();
});

test("a token revoked while a chat is open: the next reconnect brings the sign-in form back", async () => {
  const bob = world.server.clients(bobToken);
  const character = await bob.characters.createCharacter({ name: "Ada", description: "A guide." }, RPC);
  const profile = await bob.profiles.createUserProfile({ name: "Bob" }, RPC);
  const chat = await bob.chats.createChatSession({ characterId: character.id, userProfileId: profile.id }, RPC);
  const ctx = await world.context({ token: bobToken });
  const page = await world.newPage(ctx, `#/chat/${chat.id}`);
  await page.waitForSelector("#composer");
  await waitUntil(async () => (await bob.messages.getStreamStatus({ chatSessionId: chat.id }, RPC)).watchers >= 1, 8000, "the page to follow the chat");
  const revoked = await world.server.cli(["users", "revoke", "bob"]);
  assert.equal(revoked.code, 0, revoked.stderr);
  world.proxy!.cut();
  await page.getByLabel("API token").waitFor({ timeout: 10_000 });
  await page.getByRole("alert").filter({ hasText: "no longer accepted" }).waitFor();
  await ctx.close();
});
