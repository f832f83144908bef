/**
 * TypeScript client for roleplay-server.
 *
 * - The generated messages and service descriptors of `roleplay.v1`
 *   (@bufbuild/protobuf v2), for `createClient(Service, transport)` from
 *   @connectrpc/connect with any transport: `createGrpcTransport` from
 *   @connectrpc/connect-node (gRPC over HTTP/2) or `createGrpcWebTransport`
 *   from @connectrpc/connect-web (gRPC-Web over HTTP/1.1, browsers).
 * - {@link createClients}: one client per service on a transport.
 * - {@link sendMessage} and {@link watchChat}: replies that resume by UTF-8
 *   byte offset after a dropped connection, each byte exactly once.
 *
 * This module imports nothing Node-specific, so it bundles for browsers.
 *
 * @module
 */

import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { CharacterService } from "./gen/roleplay/v1/character_pb.js";
import { ChatSessionService } from "./gen/roleplay/v1/chat_session_pb.js";
import { MessageService } from "./gen/roleplay/v1/message_pb.js";
import { SettingsService } from "./gen/roleplay/v1/settings_pb.js";
import { UserProfileService } from "./gen/roleplay/v1/user_profile_pb.js";

export * from "./gen/roleplay/v1/character_pb.js";
export * from "./gen/roleplay/v1/chat_session_pb.js";
export * from "./gen/roleplay/v1/message_pb.js";
export * from "./gen/roleplay/v1/settings_pb.js";
export * from "./gen/roleplay/v1/user_profile_pb.js";
export * from "./helpers.js";

/** A client for each roleplay.v1 service. */
export interface RoleplayClients {
  characters: Client<typeof CharacterService>;
  chats: Client<typeof ChatSessionService>;
  messages: Client<typeof MessageService>;
  settings: Client<typeof SettingsService>;
  userProfiles: Client<typeof UserProfileService>;
}

/** Makes a client for each roleplay.v1 service, all sharing `transport`. */
export function createClients(transport: Transport): RoleplayClients {
  return {
    characters: createClient(CharacterService, transport),
    chats: createClient(ChatSessionService, transport),
    messages: createClient(MessageService, transport),
    settings: createClient(SettingsService, transport),
    userProfiles: createClient(UserProfileService, transport),
  };
}
