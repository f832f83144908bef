// The byte-offset merge of reply text, in Node (no browser).
import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay, parseSavedReply, ReplyText, utf8Length } from "../src/reply.js";

test("offsets count UTF-8 bytes, not UTF-16 units", () => {
  assert.equal(utf8Length("a"), 1);
  assert.equal(utf8Length("é"), 2);
  assert.equal(utf8Length("€"), 3);
  assert.equal(utf8Length("🎭"), 4);
  assert.equal("🎭".length, 2);
});

test("deltas from two streams merge by byte offset: each byte once", () => {
  const r = new ReplyText("s1");
  assert.equal(r.apply(0, "Über "), "Über ");
  assert.equal(r.offset, 6);
  // The same bytes again (the other stream, cut differently): nothing new.
  assert.equal(r.apply(0, "Üb"), "");
  // Overlapping: only the new part.
  assert.equal(r.apply(3, "er 🎭!"), "🎭!");
  assert.equal(r.text, "Über 🎭!");
  assert.equal(r.offset, utf8Length("Über 🎭!"));
  // A gap is refused: the caller resumes from r.offset.
  assert.equal(r.apply(r.offset + 1, "x"), null);
  // An overlap that would start inside a character is refused too.
  const s = new ReplyText("s2", "a🎭");
  assert.equal(s.apply(0, "a🎭b"), "b");
  assert.equal(new ReplyText("s3", "a").apply(0, "a€b"), "€b");
});

test("a saved reply is used only when its offset matches its text", () => {
  const ok = JSON.stringify({ chatId: "c", streamId: "s", offset: 5, text: "a🎭", assistantMessageId: "m", userMessageId: "u" });
  assert.equal(parseSavedReply(ok, "c")?.offset, 5);
  assert.equal(parseSavedReply(ok, "other"), undefined);
  assert.equal(parseSavedReply(ok.replace('"offset":5', '"offset":3'), "c"), undefined);
  assert.equal(parseSavedReply("{not json", "c"), undefined);
  assert.equal(parseSavedReply(null, "c"), undefined);
});

test("backoff grows, is capped and jittered", () => {
  assert.equal(backoffDelay(1, () => 1), 250);
  assert.equal(backoffDelay(3, () => 1), 1000);
  assert.equal(backoffDelay(20, () => 1), 8000);
  assert.equal(backoffDelay(20, () => 0), 4000);
});
