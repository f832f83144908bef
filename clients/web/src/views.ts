/** The list-and-form screens: chats, profiles, settings, usage (characters: src/characters.ts). */
import type { ChatSession } from "./gen/roleplay/v1/chat_session_pb.js";
import type { Settings } from "./gen/roleplay/v1/settings_pb.js";
import { UsageGrouping, type UsageTotal } from "./gen/roleplay/v1/usage_pb.js";
import type { UserProfile } from "./gen/roleplay/v1/user_profile_pb.js";
import { allPages, api, describeError, UNARY } from "./api.js";
import { listCharacters } from "./characters.js";
import { clear, errorBox, field, h, input, note, showError, svg, textarea } from "./dom.js";
import { loadCatalog, modelPicker } from "./models.js";
import { samplersForm } from "./samplers.js";

async function listProfiles(): Promise<UserProfile[]> {
  return allPages(async (pageToken) => {
    const r = await api.profiles.listUserProfiles({ pageSize: 500, pageToken }, UNARY);
    return { items: r.userProfiles, next: r.nextPageToken };
  });
}

/** The caller's chats by last activity, newest first; only `characterId`'s when given. */
export async function listChats(characterId = ""): Promise<ChatSession[]> {
  return allPages(async (pageToken) => {
    const r = await api.chats.listChatSessions({ pageSize: 500, pageToken, characterId }, UNARY);
    return { items: r.chatSessions, next: r.nextPageToken };
  });
}

function optional(value: string): string | undefined {
  return value.trim() === "" ? undefined : value;
}

// --- Chats ---------------------------------------------------------------------

function when(chat: ChatSession): string {
  const t = chat.updatedAt ?? chat.createdAt;
  if (!t) return "";
  const d = new Date(Number(t.seconds) * 1000);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export async function chatsView(): Promise<HTMLElement> {
  const error = errorBox();
  const filterId = new URLSearchParams(location.hash.split("?")[1] ?? "").get("character") ?? "";
  const [chats, characters, profiles] = await Promise.all([listChats(filterId), listCharacters(), listProfiles()]);
  const charName = new Map(characters.map((c) => [c.id, c.name]));
  const profileName = new Map(profiles.map((p) => [p.id, p.name]));

  const list = h("ul", { class: "cards", "aria-label": "Chats" });
  const renderList = () => {
    clear(list);
    if (chats.length === 0) list.appendChild(h("li", { class: "empty" }, "No chats yet."));
    for (const chat of chats) {
      const title = chat.title || `Chat with ${charName.get(chat.characterId) ?? "?"}`;
      const actions = h("div", { class: "actions" });
      const del = h("button", { type: "button", class: "danger", "aria-label": `Delete ${title}` }, "Delete");
      const askDelete = () => {
        clear(actions);
        const yes = h("button", { type: "button", class: "danger", "aria-label": `Really delete ${title}` }, "Yes, delete");
        const no = h("button", { type: "button" }, "Cancel");
        yes.addEventListener("click", async () => {
          yes.disabled = true;
          try {
            await api.chats.deleteChatSession({ id: chat.id }, UNARY);
            chats.splice(chats.indexOf(chat), 1);
            sessionStorage.removeItem(`roleplay.reply.${chat.id}`);
            renderList();
          } catch (err) {
            showError(error, `Could not delete: ${describeError(err)}`);
            yes.disabled = false;
          }
        });
        no.addEventListener("click", () => {
          renderList();
        });
        actions.append(h("span", { role: "alert" }, "Delete this chat and its messages?"), yes, no);
        yes.focus();
      };
      del.addEventListener("click", askDelete);
      actions.append(del);
      list.appendChild(
        h(
          "li",
          { class: "card", "data-chat-id": chat.id },
          h("a", { href: `#/chat/${chat.id}`, class: "card-title" }, title),
          h("span", { class: "meta" }, `${charName.get(chat.characterId) ?? "?"} · ${profileName.get(chat.userProfileId) ?? "?"} · `, h("time", { class: "activity", title: "Last activity" }, when(chat))),
          actions,
        ),
      );
    }
  };
  renderList();

  // The server filters; the choice lives in the hash so Back and a reload keep it.
  const filter = h(
    "select",
    { id: "chat-filter" },
    h("option", { value: "" }, "All characters"),
    characters.map((c) => h("option", { value: c.id, selected: c.id === filterId }, c.name)),
  );
  filter.addEventListener("change", () => {
    location.hash = filter.value ? `#/chats?character=${encodeURIComponent(filter.value)}` : "#/chats";
  });

  const charSelect = h("select", { id: "new-chat-character", required: true }, characters.map((c) => h("option", { value: c.id, selected: c.id === filterId }, c.name)));
  const profileSelect = h("select", { id: "new-chat-profile", required: true }, profiles.map((p) => h("option", { value: p.id }, p.name)));
  const title = input({ id: "new-chat-title", maxlength: 200 });
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "new-chat-h" },
    h("h3", { id: "new-chat-h" }, "New chat"),
    characters.length === 0 ? h("p", null, "First ", h("a", { href: "#/characters" }, "create a character"), ".") : null,
    profiles.length === 0 ? h("p", null, "First ", h("a", { href: "#/profiles" }, "create a profile"), ".") : null,
    field("Character", charSelect),
    field("Your profile", profileSelect),
    field("Title (optional)", title),
    h("button", { type: "submit", class: "primary", disabled: characters.length === 0 || profiles.length === 0 }, "Start chat"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const chat = await api.chats.createChatSession(
        { characterId: charSelect.value, userProfileId: profileSelect.value, title: optional(title.value) },
        UNARY,
      );
      location.hash = `#/chat/${chat.id}`;
    } catch (err) {
      showError(error, `Could not create the chat: ${describeError(err)}`);
    }
  });

  return h(
    "section",
    { class: "page", "aria-labelledby": "chats-h" },
    h("h2", { id: "chats-h" }, "Chats"),
    h("div", { class: "toolbar" }, field("Show chats with", filter, "Newest activity first.")),
    error,
    list,
    form,
  );
}

// --- Profiles ---------------------------------------------------------------------

export async function profilesView(): Promise<HTMLElement> {
  const error = errorBox();
  const status = h("p", { class: "ok", role: "status" });
  const profiles = await listProfiles();
  const list = h("ul", { class: "cards", "aria-label": "Profiles" });
  const formHost = h("div");

  const showForm = (p?: UserProfile) => {
    clear(formHost);
    const name = input({ value: p?.name ?? "", required: true, maxlength: 200 });
    const description = textarea(p?.description ?? "", 3);
    const heading = p ? `Edit ${p.name}` : "New profile";
    const form = h(
      "form",
      { class: "panel", "aria-label": heading },
      h("h3", null, heading),
      field("Name", name),
      field("Description", description, "Who you are in the story."),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, p ? "Save profile" : "Create profile"),
        p ? h("button", { type: "button", onclick: () => showForm() }, "Cancel") : null),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        if (p) {
          const updated = await api.profiles.updateUserProfile({ id: p.id, name: name.value, description: description.value }, UNARY);
          profiles[profiles.indexOf(p)] = updated;
          note(status, `Saved ${updated.name}.`);
        } else {
          const created = await api.profiles.createUserProfile({ name: name.value, description: description.value }, UNARY);
          profiles.push(created);
          note(status, `Created ${created.name}.`);
        }
        error.hidden = true;
        renderList();
        showForm();
      } catch (err) {
        showError(error, `Could not save: ${describeError(err)}`);
      }
    });
    formHost.appendChild(form);
    if (p) name.focus();
  };

  const renderList = () => {
    clear(list);
    if (profiles.length === 0) list.appendChild(h("li", { class: "empty" }, "No profiles yet."));
    for (const p of profiles) {
      list.appendChild(
        h(
          "li",
          { class: "card" },
          h("span", { class: "card-title" }, p.name),
          h("span", { class: "meta" }, p.description.slice(0, 120)),
          h("div", { class: "actions" }, h("button", { type: "button", "aria-label": `Edit ${p.name}`, onclick: () => showForm(p) }, "Edit")),
        ),
      );
    }
  };
  renderList();
  showForm();
  return h("section", { class: "page", "aria-labelledby": "profiles-h" }, h("h2", { id: "profiles-h" }, "Profiles"), error, status, list, formHost);
}

// --- Settings ----------------------------------------------------------------------

function keyState(set: boolean, hint: string, problem: string): string {
  if (problem) return `Set, but unusable: ${problem}`;
  return set ? `Set (${hint || "hidden"})` : "Not set";
}

function keyForm(
  heading: string,
  id: string,
  state: () => string,
  save: (key: string) => Promise<Settings>,
  clearKey: () => Promise<Settings>,
  onSettings: (s: Settings) => void,
): HTMLElement {
  const error = errorBox();
  const stateEl = h("p", { class: "key-state", id: `${id}-state`, role: "status" }, state());
  const key = h("input", { type: "password", id, autocomplete: "off", spellcheck: "false", minlength: 8, maxlength: 1024, "aria-describedby": `${id}-state` });
  const run = async (f: () => Promise<Settings>) => {
    try {
      onSettings(await f());
      key.value = "";
      error.hidden = true;
      stateEl.textContent = state();
    } catch (err) {
      showError(error, describeError(err));
    }
  };
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": `${id}-h` },
    h("h3", { id: `${id}-h` }, heading),
    stateEl,
    field("New key (write-only)", key),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save key"),
      h("button", { type: "button", onclick: () => void run(clearKey) }, "Remove key")),
    error,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (key.value) void run(() => save(key.value));
  });
  return form;
}

export async function settingsView(isAdmin: boolean): Promise<HTMLElement> {
  let [settings, catalog] = await Promise.all([api.settings.getSettings({}, UNARY), loadCatalog()]);
  const onSettings = (s: Settings) => {
    settings = s;
  };
  const provider = keyForm(
    "Provider API key",
    "provider-key",
    () => keyState(settings.apiKeySet, settings.apiKeyHint, settings.apiKeyProblem),
    (apiKey) => api.settings.setProviderApiKey({ apiKey }, UNARY),
    () => api.settings.clearProviderApiKey({}, UNARY),
    onSettings,
  );
  const own = keyForm(
    "Your own API key",
    "user-key",
    () => keyState(settings.userApiKeySet, settings.userApiKeyHint, settings.userApiKeyProblem),
    (apiKey) => api.settings.setUserProviderApiKey({ apiKey }, UNARY),
    () => api.settings.clearUserProviderApiKey({}, UNARY),
    onSettings,
  );

  const error = errorBox();
  const ok = h("p", { class: "ok", role: "status" });
  const pre = textarea(settings.preSystemPrompt, 3);
  const sys = textarea(settings.systemPrompt, 4);
  const post = textarea(settings.postSystemPrompt, 3);
  const model = modelPicker("default-model", "Default model", settings.defaultModel, catalog, "the server's built-in default");
  const baseUrl = input({ value: settings.providerBaseUrl, type: "url" });
  const globals = h(
    "form",
    { class: "panel", "aria-labelledby": "globals-h" },
    h("h3", { id: "globals-h" }, "Global prompts and model"),
    isAdmin ? null : h("p", { class: "hint" }, "Only admins can change these."),
    field("Pre-system prompt", pre),
    field("System prompt", sys),
    field("Post-history prompt", post),
    model.el,
    field("Provider base URL", baseUrl, "Moving it to another host clears the stored provider key."),
    h("button", { type: "submit", class: "primary" }, "Save settings"),
    error,
    ok,
  );
  globals.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      // Only what changed: moving the base URL to another origin clears the stored key.
      const changed = (now: string, was: string) => (now === was ? undefined : now);
      settings = await api.settings.updateSettings(
        {
          preSystemPrompt: changed(pre.value, settings.preSystemPrompt),
          systemPrompt: changed(sys.value, settings.systemPrompt),
          postSystemPrompt: changed(post.value, settings.postSystemPrompt),
          defaultModel: changed(model.input.value.trim(), settings.defaultModel),
          providerBaseUrl: changed(baseUrl.value, settings.providerBaseUrl),
        },
        UNARY,
      );
      error.hidden = true;
      note(ok, "Saved.");
    } catch (err) {
      ok.hidden = true;
      showError(error, describeError(err));
    }
  });
  return h(
    "section",
    { class: "page", "aria-labelledby": "settings-h" },
    h("h2", { id: "settings-h" }, "Settings"),
    provider,
    own,
    globals,
    defaultsForm(isAdmin, () => settings, onSettings),
  );
}

/** Default samplers and token counts for every chat (UpdateSettings). */
function defaultsForm(isAdmin: boolean, get: () => Settings, onSettings: (s: Settings) => void): HTMLElement {
  const error = errorBox();
  error.id = "defaults-error";
  const ok = h("p", { class: "ok", role: "status" });
  const start = get();
  const samplers = samplersForm(start.defaultSamplers, "default", "Default samplers");
  const contextTokens = input({ id: "default-context-tokens", type: "number", step: 1, inputmode: "numeric", value: start.defaultContextTokens || "" });
  const replyTokens = input({ id: "default-reply-tokens", type: "number", step: 1, inputmode: "numeric", value: start.defaultReplyTokens || "" });
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "defaults-h", "aria-describedby": "defaults-error" },
    h("h3", { id: "defaults-h" }, "Defaults for every chat"),
    isAdmin ? null : h("p", { class: "hint" }, "Only admins can change these."),
    samplers.el,
    h(
      "div",
      { class: "grid" },
      field("Default context length (tokens)", contextTokens, "When neither the model list nor the chat says; 256 to 10,000,000."),
      field("Default reply tokens", replyTokens, "Kept free for the reply when no max tokens is set; 1 to 1,000,000."),
    ),
    h("button", { type: "submit", class: "primary" }, "Save defaults"),
    error,
    ok,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const problem = samplers.problem();
    if (problem) {
      showError(error, problem);
      return;
    }
    const was = get();
    const num = (v: string, old: number) => (v.trim() === "" || Number(v) === old ? undefined : Number(v));
    try {
      const saved = await api.settings.updateSettings(
        {
          defaultSamplers: samplers.changed(was.defaultSamplers).length ? samplers.read() : undefined,
          defaultContextTokens: num(contextTokens.value, was.defaultContextTokens),
          defaultReplyTokens: num(replyTokens.value, was.defaultReplyTokens),
        },
        UNARY,
      );
      onSettings(saved);
      error.hidden = true;
      note(ok, "Saved.");
    } catch (err) {
      ok.hidden = true;
      showError(error, describeError(err));
    }
  });
  return form;
}

// --- Usage --------------------------------------------------------------------------

function formatCost(cost: number): string {
  return `$${cost.toFixed(cost < 1 ? 4 : 2)}`;
}

/** A bar chart (hand-drawn SVG) of prompt + completion tokens per key, with the cost above each bar. */
function barChart(totals: UsageTotal[], label: string): SVGElement {
  const width = 340;
  const height = 180;
  const pad = { top: 36, bottom: 24, left: 8, right: 8 };
  const max = Math.max(1, ...totals.map((t) => Number(t.promptTokens + t.completionTokens)));
  const n = Math.max(1, totals.length);
  const slot = (width - pad.left - pad.right) / n;
  const barW = Math.max(4, Math.min(48, slot * 0.7));
  const chartH = height - pad.top - pad.bottom;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart" });
  chart.appendChild(svg("line", { x1: pad.left, x2: width - pad.right, y1: height - pad.bottom, y2: height - pad.bottom, class: "axis" }));
  totals.forEach((t, i) => {
    const x = pad.left + slot * i + (slot - barW) / 2;
    const promptH = (Number(t.promptTokens) / max) * chartH;
    const complH = (Number(t.completionTokens) / max) * chartH;
    const base = height - pad.bottom;
    chart.appendChild(svg("rect", { x, y: base - promptH, width: barW, height: promptH, class: "bar-prompt" }, svg("title", {}, `${t.key}: ${t.promptTokens} prompt tokens`)));
    chart.appendChild(svg("rect", { x, y: base - promptH - complH, width: barW, height: complH, class: "bar-completion" }, svg("title", {}, `${t.key}: ${t.completionTokens} completion tokens`)));
    chart.appendChild(svg("text", { x: x + barW / 2, y: base - promptH - complH - 4, "text-anchor": "middle", class: "bar-label" }, formatCost(t.cost)));
    const short = t.key.length > 12 ? `${t.key.slice(0, 11)}…` : t.key;
    chart.appendChild(svg("text", { x: x + barW / 2, y: height - pad.bottom + 14, "text-anchor": "middle", class: "tick" }, short));
  });
  const legend = svg("g", { class: "legend" });
  legend.appendChild(svg("rect", { x: pad.left, y: 4, width: 10, height: 10, class: "bar-prompt" }));
  legend.appendChild(svg("text", { x: pad.left + 14, y: 13, class: "tick" }, "prompt"));
  legend.appendChild(svg("rect", { x: pad.left + 64, y: 4, width: 10, height: 10, class: "bar-completion" }));
  legend.appendChild(svg("text", { x: pad.left + 78, y: 13, class: "tick" }, "completion tokens (cost above)"));
  legend.appendChild(svg("text", { x: width - pad.right, y: 13, "text-anchor": "end", class: "tick" }, `max ${max} tokens`));
  chart.appendChild(legend);
  return chart;
}

function usageTable(totals: UsageTotal[], keyLabel: string): HTMLTableElement {
  return h(
    "table",
    { class: "usage" },
    h("thead", null, h("tr", null, h("th", { scope: "col" }, keyLabel), h("th", { scope: "col" }, "Replies"), h("th", { scope: "col" }, "Prompt"), h("th", { scope: "col" }, "Completion"), h("th", { scope: "col" }, "Cost"))),
    h(
      "tbody",
      null,
      totals.map((t) =>
        h("tr", null, h("th", { scope: "row" }, t.key), h("td", null, String(t.generations)), h("td", null, String(t.promptTokens)), h("td", null, String(t.completionTokens)), h("td", null, formatCost(t.cost))),
      ),
    ),
  );
}

export async function usageView(): Promise<HTMLElement> {
  const [byDay, byModel] = await Promise.all([
    api.usage.getUsage({ groupBy: UsageGrouping.DAY }, UNARY),
    api.usage.getUsage({ groupBy: UsageGrouping.MODEL }, UNARY),
  ]);
  const o = byDay.overall;
  const summary = o
    ? `${o.generations} replies (${o.completed} completed), ${o.promptTokens} prompt and ${o.completionTokens} completion tokens, ${formatCost(o.cost)} in the last 30 days.`
    : "No usage yet.";
  return h(
    "section",
    { class: "page", "aria-labelledby": "usage-h" },
    h("h2", { id: "usage-h" }, "Usage"),
    h("p", { class: "summary" }, summary),
    h("h3", null, "Per day"),
    barChart(byDay.totals, "Tokens and cost per day"),
    usageTable(byDay.totals, "Day"),
    h("h3", null, "Per model"),
    barChart(byModel.totals, "Tokens and cost per model"),
    usageTable(byModel.totals, "Model"),
  );
}
