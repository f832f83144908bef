/**
 * TypeScript client for roleplay-server.
 *
 * - The generated messages and service descriptors of `roleplay.v1`
 *   (@bufbuild/protobuf v2), for `createClient(Service, transport)` from
 *   @connectrpc/connect with any transport: `createGrpcTransport` from
 *   @connectrpc/connect-node (gRPC over HTTP/2) or `createGrpcWebTransport`
 *   from @connectrpc/connect-web (gRPC-Web over HTTP/1.1, browsers).
 * - {@link createClients}: one client per service on a transport, optionally
 *   with an API token (`authorization: Bearer <token>` on every call); or
 *   {@link withToken} / {@link tokenInterceptor} to add one to any transport.
 * - {@link sendMessage} and {@link watchChat}: replies that resume by UTF-8
 *   byte offset after a dropped connection, each byte exactly once.
 *
 * This module imports nothing Node-specific, so it bundles for browsers.
 *
 * @module
 */

import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { withToken } from "./auth.js";
import { CharacterService } from "./gen/roleplay/v1/character_pb.js";
import { ChatSessionService } from "./gen/roleplay/v1/chat_session_pb.js";
import { LorebookService } from "./gen/roleplay/v1/lorebook_pb.js";
import { MessageService } from "./gen/roleplay/v1/message_pb.js";
import { SettingsService } from "./gen/roleplay/v1/settings_pb.js";
import { UsageService } from "./gen/roleplay/v1/usage_pb.js";
import { UserService } from "./gen/roleplay/v1/user_pb.js";
import { UserProfileService } from "./gen/roleplay/v1/user_profile_pb.js";

export * from "./gen/roleplay/v1/character_pb.js";
export * from "./gen/roleplay/v1/chat_session_pb.js";
export * from "./gen/roleplay/v1/lorebook_pb.js";
export * from "./gen/roleplay/v1/message_pb.js";
export * from "./gen/roleplay/v1/samplers_pb.js";
export * from "./gen/roleplay/v1/settings_pb.js";
export * from "./gen/roleplay/v1/usage_pb.js";
export * from "./gen/roleplay/v1/user_pb.js";
export * from "./gen/roleplay/v1/user_profile_pb.js";
export * from "./auth.js";
export * from "./helpers.js";

/** A client for each roleplay.v1 service. */
export interface RoleplayClients {
  characters: Client<typeof CharacterService>;
  chats: Client<typeof ChatSessionService>;
  lorebooks: Client<typeof LorebookService>;
  messages: Client<typeof MessageService>;
  settings: Client<typeof SettingsService>;
  usage: Client<typeof UsageService>;
  users: Client<typeof UserService>;
  userProfiles: Client<typeof UserProfileService>;
}

export interface ClientsOptions {
  /**
   * An API token: every call (unary and streaming, including the resumes of
   * {@link sendMessage} and {@link watchChat}) then carries
   * `authorization: Bearer <token>`, unless it sets its own `authorization`
   * header. Needed once any user of the server has a token; undefined or
   * empty sends none (single-user mode).
   */
  token?: string;
}

/**
 * Makes a client for each roleplay.v1 service, all sharing `transport`
 * (wrapped by {@link withToken} when `options.token` is given).
 */
export function createClients(transport: Transport, options: ClientsOptions = {}): RoleplayClients {
  const t = withToken(transport, options.token);
  return {
    characters: createClient(CharacterService, t),
    chats: createClient(ChatSessionService, t),
    lorebooks: createClient(LorebookService, t),
    messages: createClient(MessageService, t),
    settings: createClient(SettingsService, t),
    usage: createClient(UsageService, t),
    users: createClient(UserService, t),
    userProfiles: createClient(UserProfileService, t),
  };
}
