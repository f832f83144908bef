/**
 * The model picker: a text input with a datalist of the provider's catalog
 * (ListModels) when the server has one, free text otherwise, and the chosen
 * model's context length under it.
 */
import type { ModelInfo } from "./gen/roleplay/v1/settings_pb.js";
import { api, describeError, UNARY } from "./api.js";
import { field, h, input } from "./dom.js";

export interface Catalog {
  models: ModelInfo[];
  /** Why there is no list, or why it is old; "" when all is well. */
  note: string;
}

/** The catalog, asked once per page load (the server refreshes it in the background). */
let cached: Promise<Catalog> | undefined;

export function loadCatalog(): Promise<Catalog> {
  cached ??= api.settings.listModels({}, UNARY).then(
    (r) => ({ models: r.models, note: r.refreshError ? `The list may be old: ${r.refreshError}` : "" }),
    (err: unknown) => {
      cached = undefined; // ask again next time
      return { models: [], note: `No model list from the provider (${describeError(err)}): type a model id.` };
    },
  );
  return cached;
}

function tokens(n: number): string {
  return n.toLocaleString("en-US");
}

/** What the hint says about `id`. */
function describe(catalog: Catalog, id: string, fallback: string): string {
  const t = id.trim();
  if (!t) return fallback;
  const m = catalog.models.find((x) => x.id === t);
  if (!m) return catalog.models.length ? `${t} is not in the provider's list (sending still works).` : catalog.note || fallback;
  const parts = [m.name !== m.id ? m.name : "", m.contextLength ? `context ${tokens(m.contextLength)} tokens` : "context length unknown"];
  if (m.maxCompletionTokens) parts.push(`replies up to ${tokens(m.maxCompletionTokens)} tokens`);
  return parts.filter(Boolean).join(" · ");
}

export interface ModelPicker {
  el: HTMLElement;
  input: HTMLInputElement;
}

/** A labelled model input; `empty` says what an empty value means ("the global default"). */
export function modelPicker(id: string, label: string, value: string, catalog: Catalog, empty: string): ModelPicker {
  const listId = `${id}-list`;
  const el = input({ id, value, maxlength: 200, list: catalog.models.length ? listId : undefined, autocomplete: "off", spellcheck: "false", placeholder: empty });
  const datalist = h(
    "datalist",
    { id: listId },
    catalog.models.map((m) => h("option", { value: m.id, label: m.contextLength ? `${m.name} (${tokens(m.contextLength)} tokens)` : m.name })),
  );
  const fallback = catalog.models.length ? `${catalog.models.length} models in the provider's list; empty: ${empty}.` : catalog.note || `Empty: ${empty}.`;
  const info = h("small", { class: "hint model-info", id: `${id}-info`, "aria-live": "polite" }, describe(catalog, value, fallback));
  el.addEventListener("input", () => {
    info.textContent = describe(catalog, el.value, fallback);
  });
  const wrap = field(label, el);
  el.setAttribute("aria-describedby", info.id);
  wrap.append(datalist, info);
  return { el: wrap, input: el };
}
