/**
 * Sends one message and prints the reply as it is generated. If the
 * connection drops mid-reply, sendMessage resumes it by byte offset and the
 * text carries on where it stopped, each byte printed exactly once.
 *
 *   npm run build
 *   node dist/examples/chat.js [--url http://127.0.0.1:50051] [--web] [--chat CHAT_ID] [--token TOKEN] "Hello!"
 *
 * Without --chat it makes a character, a user profile and a chat first (the
 * provider API key must be set, or given in $ROLEPLAY_API_KEY). --web uses
 * gRPC-Web over HTTP/1.1 instead of gRPC over HTTP/2. Reconnections are
 * reported on stderr; the reply alone goes to stdout. Once the server has
 * users, give a token with --token or, better (ps shows arguments),
 * $ROLEPLAY_TOKEN.
 */

import { parseArgs } from "node:util";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { createClients, sendMessage } from "../src/index.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: "string", default: process.env.ROLEPLAY_URL ?? "http://127.0.0.1:50051" },
    chat: { type: "string" },
    web: { type: "boolean", default: false },
    token: { type: "string", default: process.env.ROLEPLAY_TOKEN },
  },
});
const content = positionals.join(" ") || "Hello!";

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

const reply = sendMessage(clients.messages, chatId, content, {
  onReconnect: ({ attempt, delayMs, offset, error }) =>
    console.error(`\n[connection lost at byte ${offset} (${error.message}); retry ${attempt} in ${Math.round(delayMs)} ms]`),
});
for await (const piece of reply) {
  process.stdout.write(piece);
}
process.stdout.write("\n");

const outcome = reply.outcome?.event;
if (outcome?.case !== "completed") {
  console.error(`reply ended: ${outcome?.case}${outcome?.case === "failed" ? ` (${outcome.value.message})` : ""}`);
  process.exitCode = 1;
}
