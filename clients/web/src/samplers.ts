/**
 * The sampler fields (temperature, top_p, ... stop strings), shared by the
 * chat settings panel and the global defaults. An empty field is "not set":
 * the next level (character, global default, provider) applies. Ranges are
 * only hinted, never enforced here: the server's INVALID_ARGUMENT says what
 * is wrong, in its words.
 */
import { clone, create } from "@bufbuild/protobuf";
import { SamplersSchema, type Samplers } from "./gen/roleplay/v1/samplers_pb.js";
import { field, h, input, textarea } from "./dom.js";

type NumberKey = "temperature" | "topP" | "topK" | "minP" | "topA" | "frequencyPenalty" | "presencePenalty" | "repetitionPenalty" | "maxTokens";

interface NumberField {
  key: NumberKey;
  /** The proto field name, as used in field masks (`samplers.<path>`). */
  path: string;
  label: string;
  hint: string;
  integer: boolean;
}

export const NUMBER_FIELDS: NumberField[] = [
  { key: "temperature", path: "temperature", label: "Temperature", hint: "0 to 2", integer: false },
  { key: "topP", path: "top_p", label: "Top P", hint: "above 0, up to 1", integer: false },
  { key: "topK", path: "top_k", label: "Top K", hint: "0 or more; 0 turns it off", integer: true },
  { key: "minP", path: "min_p", label: "Min P", hint: "0 to 1", integer: false },
  { key: "topA", path: "top_a", label: "Top A", hint: "0 to 1", integer: false },
  { key: "repetitionPenalty", path: "repetition_penalty", label: "Repetition penalty", hint: "above 0, up to 2", integer: false },
  { key: "frequencyPenalty", path: "frequency_penalty", label: "Frequency penalty", hint: "-2 to 2", integer: false },
  { key: "presencePenalty", path: "presence_penalty", label: "Presence penalty", hint: "-2 to 2", integer: false },
  { key: "maxTokens", path: "max_tokens", label: "Max reply tokens", hint: "1 to 1,000,000; also kept free in the context", integer: true },
];

export interface SamplersForm {
  el: HTMLElement;
  /** The samplers as entered, on top of `base` (fields not shown here, like reasoning, are kept). */
  read(): Samplers;
  /** The proto field names whose value differs from `was` (for a field mask). */
  changed(was: Samplers | undefined): string[];
  /** A field's text that is not a number, in words, else "". */
  problem(): string;
}

function text(v: number | bigint | undefined): string {
  return v === undefined ? "" : String(v);
}

/** An optional number from a field: undefined when empty, NaN when not a number. */
function parse(value: string, integer: boolean): number | undefined {
  const t = value.trim();
  if (t === "") return undefined;
  const n = Number(t);
  return integer && Number.isFinite(n) && !Number.isInteger(n) ? NaN : n;
}

function sameStops(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** A fieldset of sampler inputs, filled from `base`; `idPrefix` makes the ids unique ("chat-temperature"). */
export function samplersForm(base: Samplers | undefined, idPrefix: string, legend = "Samplers"): SamplersForm {
  const start = base ? clone(SamplersSchema, base) : create(SamplersSchema);
  const inputs = new Map<NumberKey, HTMLInputElement>();
  const fields = NUMBER_FIELDS.map((f) => {
    const el = input({
      id: `${idPrefix}-${f.path.replace(/_/g, "-")}`,
      type: "number",
      step: f.integer ? 1 : "any",
      inputmode: f.integer ? "numeric" : "decimal",
      value: text(start[f.key]),
      placeholder: "not set",
      "data-path": f.path,
    });
    inputs.set(f.key, el);
    return field(f.label, el, f.hint);
  });
  const seed = input({ id: `${idPrefix}-seed`, type: "number", step: 1, inputmode: "numeric", value: text(start.seed), placeholder: "not set" });
  const stop = textarea(start.stop.join("\n"), 2);
  stop.id = `${idPrefix}-stop`;
  const el = h(
    "fieldset",
    { class: "samplers" },
    h("legend", null, legend),
    h("p", { class: "hint" }, "Empty fields are not set: the character's, then the global default applies."),
    h("div", { class: "grid" }, fields, field("Seed", seed, "Any whole number")),
    field("Stop strings", stop, "One per line, up to 4."),
  );

  const read = (): Samplers => {
    const s = clone(SamplersSchema, start);
    for (const f of NUMBER_FIELDS) {
      const v = parse(inputs.get(f.key)?.value ?? "", f.integer);
      s[f.key] = v;
    }
    const seedText = seed.value.trim();
    s.seed = seedText === "" || !/^-?\d+$/.test(seedText) ? undefined : BigInt(seedText);
    s.stop = stop.value.split("\n").filter((line) => line !== "");
    return s;
  };

  return {
    el,
    read,
    changed(was) {
      const now = read();
      const old = was ?? create(SamplersSchema);
      const out = NUMBER_FIELDS.filter((f) => !Object.is(now[f.key], old[f.key])).map((f) => f.path);
      if (now.seed !== old.seed) out.push("seed");
      if (!sameStops(now.stop, old.stop)) out.push("stop");
      return out;
    },
    problem() {
      for (const f of NUMBER_FIELDS) {
        const el = inputs.get(f.key);
        // A number input reports text it cannot read as invalid (badInput).
        if (el && (el.validity.badInput || Number.isNaN(parse(el.value, f.integer)))) return `${f.label} must be ${f.integer ? "a whole number" : "a number"}.`;
      }
      if (seed.validity.badInput || (seed.value.trim() !== "" && !/^-?\d+$/.test(seed.value.trim()))) return "Seed must be a whole number.";
      return "";
    },
  };
}
