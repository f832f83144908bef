/**
 * Character cards built in the tests: Character Card V2 JSON, and PNGs
 * written byte by byte (IHDR, an optional `chara` tEXt chunk, IDAT, IEND)
 * with a small CRC32, so no image package is needed.
 */
import { deflateSync } from "node:zlib";

/** A Character Card V2 as JSON text. */
export function v2Card(name: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    spec: "chara_card_v2",
    spec_version: "2.0",
    data: {
      name,
      description: `${name} is a character from a card.`,
      personality: "curious",
      scenario: "A quiet library.",
      first_mes: `Hello, I am ${name}.`,
      mes_example: "<START>\n{{user}}: Hi\n{{char}}: Hello!",
      creator_notes: "Made in a test.",
      system_prompt: "",
      post_history_instructions: "",
      alternate_greetings: [],
      tags: [],
      creator: "tester",
      character_version: "1.0",
      extensions: { test_tool: { kept: true } },
      ...extra,
    },
  });
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A 16×16 RGB PNG (a diagonal gradient in `rgb`'s hue), with `chara` = base64(card) when a card is given. */
export function png(rgb: [number, number, number], card?: string): Buffer {
  const size = 16;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    const row = y * (1 + size * 3);
    raw[row] = 0; // no filter
    for (let x = 0; x < size; x++) {
      const shade = (x + y) / (2 * size);
      for (let i = 0; i < 3; i++) raw[row + 1 + x * 3 + i] = Math.min(255, Math.round(rgb[i] * (0.5 + shade)));
    }
  }
  const chunks = [chunk("IHDR", ihdr)];
  if (card) chunks.push(chunk("tEXt", Buffer.concat([Buffer.from("chara\0", "latin1"), Buffer.from(Buffer.from(card, "utf8").toString("base64"), "latin1")])));
  chunks.push(chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ...chunks]);
}
