/**
 * The text of one streaming reply, tracked by UTF-8 byte offset.
 *
 * The server's `Delta.offset` counts UTF-8 bytes of the whole reply, not
 * JavaScript string length (UTF-16 code units). The same reply can reach a
 * page through several streams at once (the sender's AddUserMessageStreaming
 * and the view's SubscribeChatSession, or a resume after a drop), cut into
 * different pieces; merging by byte offset keeps every byte exactly once.
 *
 * Pure: no DOM, so it is unit-tested in Node as well.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The length of `text` in UTF-8 bytes, which is what offsets count. */
export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

export class ReplyText {
  readonly streamId: string;
  /** UTF-8 bytes received so far. */
  offset: number;
  /** The text received so far. */
  text: string;

  constructor(streamId: string, text = "") {
    this.streamId = streamId;
    this.text = text;
    this.offset = utf8Length(text);
  }

  /**
   * Adds the delta `piece` that starts at byte `at`. Returns the part that was
   * new ("" for a repeat of bytes already held), or `null` when it cannot be
   * applied: it starts after the bytes held (a gap), or would split a
   * character. A caller seeing `null` resumes from {@link offset}.
   */
  apply(at: number, piece: string): string | null {
    if (at > this.offset) return null;
    const bytes = encoder.encode(piece);
    const end = at + bytes.length;
    if (end <= this.offset) return "";
    let fresh: string;
    if (at === this.offset) {
      fresh = piece;
    } else {
      const skip = this.offset - at;
      const first = bytes[skip];
      if (first >= 0x80 && first < 0xc0) return null; // would start inside a character
      try {
        fresh = decoder.decode(bytes.subarray(skip));
      } catch {
        return null;
      }
    }
    this.text += fresh;
    this.offset = end;
    return fresh;
  }
}

/** What a page keeps in sessionStorage about the reply it is showing, so a reload can resume it. */
export interface SavedReply {
  chatId: string;
  streamId: string;
  offset: number;
  text: string;
  assistantMessageId: string;
  userMessageId: string;
}

/** Parses a saved reply, or undefined when it is missing, malformed or inconsistent (offset ≠ bytes of text). */
export function parseSavedReply(raw: string | null, chatId: string): SavedReply | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<SavedReply>;
    if (
      v.chatId !== chatId ||
      typeof v.streamId !== "string" ||
      v.streamId === "" ||
      typeof v.text !== "string" ||
      typeof v.offset !== "number" ||
      utf8Length(v.text) !== v.offset
    ) {
      return undefined;
    }
    return {
      chatId,
      streamId: v.streamId,
      offset: v.offset,
      text: v.text,
      assistantMessageId: typeof v.assistantMessageId === "string" ? v.assistantMessageId : "",
      userMessageId: typeof v.userMessageId === "string" ? v.userMessageId : "",
    };
  } catch {
    return undefined;
  }
}

/** Delay before reconnection attempt `attempt` (from 1): exponential, capped, with jitter. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(8000, 250 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.5 + 0.5 * random()));
}
