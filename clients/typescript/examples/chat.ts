/**
 * Sends one message and prints the reply as it is generated. If the
 * connection drops mid-reply, sendMessage resumes it by byte offset and the
 * text carries on where it stopped, each byte printed exactly once.
 *
 *   npm run build
 *   node dist/examples/chat.js [--url http://127.0.0.1:50051] [--web] [--chat CHAT_ID] [--token TOKEN] "Hello!"
 *   node dist/examples/chat.js --chat CHAT_ID --swipes 2 --select 0 "Hello!"
 *
 * Without --chat it makes a character, a user profile and a chat first (the
 * provider API key must be set, or given in $ROLEPLAY_API_KEY). --web uses
 * gRPC-Web over HTTP/1.1 instead of gRPC over HTTP/2. Reconnections are
 * reported on stderr; the reply alone goes to stdout. Once the server has
 * users, give a token with --token or, better (ps shows arguments),
 * $ROLEPLAY_TOKEN.
 *
 * Swipes: with --swipes N the reply is then regenerated N times
 * (RegenerateReply, each resumed the same way after a drop); each new
 * alternative is printed on its own line and becomes the selected one.
 * --select INDEX then keeps alternative INDEX (SelectAlternative; 0 is the
 * first reply): the one the story continues from. Notes go to stderr.
 */

import { parseArgs } from "node:util";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { createClients, regenerate, sendMessage, type FollowOptions, type ReplyStream } from "../src/index.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: "string", default: process.env.ROLEPLAY_URL ?? "http://127.0.0.1:50051" },
    chat: { type: "string" },
    web: { type: "boolean", default: false },
    token: { type: "string", default: process.env.ROLEPLAY_TOKEN },
    swipes: { type: "string", default: "0" },
    select: { type: "string" },
  },
});
const content = positionals.join(" ") || "Hello!";
const swipes = Number(values.swipes);
const select = values.select === undefined ? undefined : Number(values.select);
if (!Number.isInteger(swipes) || swipes < 0 || (select !== undefined && (!Number.isInteger(select) || select < 0))) {
  console.error("--swipes and --select take a whole number");
  process.exit(2);
}
if (select !== undefined && swipes === 0) {
  console.error("--select needs --swipes");
  process.exit(2);
}

const transport = values.web
  ? createGrpcWebTransport({ baseUrl: values.url })
  : createGrpcTransport({ baseUrl: values.url });
const clients = createClients(transport, { token: values.token });

let chatId = values.chat;
if (chatId === undefined) {
  if (process.env.ROLEPLAY_API_KEY) {
    await clients.settings.setProviderApiKey({ apiKey: process.env.ROLEPLAY_API_KEY });
  }
  const character = await clients.characters.createCharacter({
    name: "Narrator",
    description: "Tells short, vivid stories.",
  });
  const profile = await clients.userProfiles.createUserProfile({ name: "Reader" });
  const chat = await clients.chats.createChatSession({ characterId: character.id, userProfileId: profile.id });
  chatId = chat.id;
  console.error(`chat ${chatId}`);
}

const follow: FollowOptions = {
  onReconnect: ({ attempt, delayMs, offset, error }) =>
    console.error(`\n[connection lost at byte ${offset} (${error.message}); retry ${attempt} in ${Math.round(delayMs)} ms]`),
};

/** Prints a reply as it streams; true when it completed. */
async function print(reply: ReplyStream): Promise<boolean> {
  for await (const piece of reply) {
    process.stdout.write(piece);
  }
  process.stdout.write("\n");
  const outcome = reply.outcome?.event;
  if (outcome?.case !== "completed") {
    console.error(`reply ended: ${outcome?.case}${outcome?.case === "failed" ? ` (${outcome.value.message})` : ""}`);
    return false;
  }
  return true;
}

let ok = await print(sendMessage(clients.messages, chatId, content, follow));
let messageId = "";
for (let i = 0; ok && i < swipes; i++) {
  const swipe = regenerate(clients.messages, chatId, follow);
  ok = await print(swipe);
  const started = swipe.started!;
  messageId = started.assistantMessageId;
  console.error(`[alternative ${started.alternativeIndex + 1} of ${started.alternativeCount}]`);
}
if (ok && select !== undefined) {
  const kept = await clients.messages.selectAlternative({ messageId, index: select });
  console.error(`[kept alternative ${kept.alternativeIndex + 1} of ${kept.alternativeCount}: ${kept.content}]`);
}
if (!ok) process.exitCode = 1;
