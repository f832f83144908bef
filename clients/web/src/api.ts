/** Clients for every service over gRPC-Web, with the stored API token. */
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { CharacterService } from "./gen/roleplay/v1/character_pb.js";
import { ChatSessionService } from "./gen/roleplay/v1/chat_session_pb.js";
import { LorebookService } from "./gen/roleplay/v1/lorebook_pb.js";
import { MessageService } from "./gen/roleplay/v1/message_pb.js";
import { SettingsService } from "./gen/roleplay/v1/settings_pb.js";
import { UsageService } from "./gen/roleplay/v1/usage_pb.js";
import { UserService } from "./gen/roleplay/v1/user_pb.js";
import { UserProfileService } from "./gen/roleplay/v1/user_profile_pb.js";

const TOKEN_KEY = "roleplay.token";

/**
 * Where the API is: the page's own origin, unless `?api=<origin>` names
 * another one. The override is honoured only for loopback hosts (it exists
 * for tests that serve the page separately), so a crafted link cannot send
 * the stored token elsewhere.
 */
export function apiBaseUrl(): string {
  const override = new URLSearchParams(location.search).get("api");
  if (override) {
    try {
      const url = new URL(override);
      const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
      if ((url.protocol === "http:" || url.protocol === "https:") && loopback) return url.origin;
    } catch {
      // fall through
    }
    console.warn("ignoring ?api=: only http(s) loopback origins are accepted");
  }
  return location.origin;
}

export function getToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export function setToken(token: string): void {
  const t = token.trim();
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
}

const auth: Interceptor = (next) => async (req) => {
  const token = getToken();
  if (token && !req.header.has("authorization")) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

const transport = createGrpcWebTransport({ baseUrl: apiBaseUrl(), interceptors: [auth] });

export const api = {
  characters: createClient(CharacterService, transport),
  chats: createClient(ChatSessionService, transport),
  lorebooks: createClient(LorebookService, transport),
  messages: createClient(MessageService, transport),
  settings: createClient(SettingsService, transport),
  usage: createClient(UsageService, transport),
  users: createClient(UserService, transport),
  profiles: createClient(UserProfileService, transport),
};

export type Api = typeof api;
export type MessageClient = Client<typeof MessageService>;

/** Deadline for unary calls, in ms. */
export const UNARY = { timeoutMs: 15_000 };

/** "PERMISSION_DENIED" for Code.PermissionDenied. */
export function codeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** A sentence for the user: the server's message and its status code. */
export function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  const message = e.rawMessage || "request failed";
  return `${message} (${codeName(e.code)})`;
}

/** Calls `list(pageToken)` until the last page; returns every item. */
export async function allPages<T>(
  list: (pageToken: string) => Promise<{ items: T[]; next: string }>,
  maxPages = 200,
): Promise<T[]> {
  const out: T[] = [];
  let token = "";
  for (let i = 0; i < maxPages; i++) {
    const page = await list(token);
    out.push(...page.items);
    if (!page.next) break;
    token = page.next;
  }
  return out;
}

export { Code, ConnectError };
