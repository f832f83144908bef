/** Boot, sign-in and the router (hash-based: #/chats, #/chat/<id>, #/characters, ...). */
import "./style.css";
import type { User } from "./gen/roleplay/v1/user_pb.js";
import { api, Code, ConnectError, describeError, getToken, setToken, UNARY } from "./api.js";
import { forgetAvatar } from "./avatars.js";
import { charactersView } from "./characters.js";
import { ChatView } from "./chat.js";
import { clear, field, h } from "./dom.js";
import { lorebooksView } from "./lorebooks.js";
import { chatsView, profilesView, settingsView, usageView } from "./views.js";

const app = document.getElementById("app") as HTMLElement;
let user: User | undefined;
let current: ChatView | undefined;
let routeSeq = 0;

async function boot(): Promise<void> {
  try {
    user = await api.users.getCurrentUser({}, UNARY);
  } catch (err) {
    const e = ConnectError.from(err);
    showSignIn(e.code === Code.Unauthenticated ? (getToken() ? "That token was not accepted." : "") : `Cannot reach the server: ${describeError(e)}`);
    return;
  }
  showShell();
}

function showSignIn(message: string): void {
  current?.dispose();
  current = undefined;
  forgetAvatar();
  clear(app);
  const token = h("input", { type: "password", id: "token", autocomplete: "off", spellcheck: "false" });
  const error = h("p", { class: "error", role: "alert", hidden: !message }, message);
  const form = h(
    "form",
    { class: "panel signin", "aria-labelledby": "signin-h" },
    h("h1", { id: "signin-h" }, "Sign in"),
    field("API token", token, "Leave empty if the server runs in single-user mode."),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(token.value);
    void boot();
  });
  app.appendChild(h("main", { class: "signin-wrap" }, form));
  token.focus();
}

const NAV: [string, string][] = [
  ["#/chats", "Chats"],
  ["#/characters", "Characters"],
  ["#/profiles", "Profiles"],
  ["#/lorebooks", "Lorebooks"],
  ["#/settings", "Settings"],
  ["#/usage", "Usage"],
];

let main: HTMLElement;
let nav: HTMLElement;

function showShell(): void {
  clear(app);
  const signOut = h("button", { type: "button", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", () => {
    setToken("");
    user = undefined;
    showSignIn("Signed out.");
  });
  nav = h("nav", { "aria-label": "Main" }, h("ul", null, NAV.map(([href, label]) => h("li", null, h("a", { href }, label)))));
  main = h("main", { id: "view", tabindex: -1 });
  app.append(
    h(
      "header",
      { class: "top" },
      h("a", { class: "brand", href: "#/chats" }, "Roleplay"),
      nav,
      h("div", { class: "who" }, h("span", { class: "user", "aria-label": "Signed in as" }, user?.name ?? ""), signOut),
    ),
    main,
  );
  void route();
}

async function route(): Promise<void> {
  if (!user) return;
  const seq = ++routeSeq;
  const hash = location.hash || "#/chats";
  current?.dispose();
  current = undefined;
  forgetAvatar();
  for (const a of nav.querySelectorAll("a")) {
    const active =
      hash === a.getAttribute("href") || ((hash.startsWith("#/chat/") || hash.startsWith("#/chats?")) && a.getAttribute("href") === "#/chats");
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  clear(main);
  main.appendChild(h("p", { class: "loading", role: "status" }, "Loading…"));
  try {
    let view: HTMLElement;
    const chat = /^#\/chat\/([\w-]+)$/.exec(hash);
    if (chat) {
      const cv = new ChatView(chat[1]);
      current = cv;
      view = cv.el;
      clear(main);
      main.appendChild(view);
      main.dataset.view = "chat";
      await cv.open();
      return;
    }
    if (hash === "#/characters") view = await charactersView();
    else if (hash === "#/profiles") view = await profilesView();
    else if (hash === "#/lorebooks") view = await lorebooksView();
    else if (hash === "#/settings") view = await settingsView(Boolean(user.admin));
    else if (hash === "#/usage") view = await usageView();
    else view = await chatsView();
    if (seq !== routeSeq) return;
    clear(main);
    main.dataset.view = hash.slice(2).split("?")[0] || "chats";
    main.appendChild(view);
  } catch (err) {
    if (seq !== routeSeq) return;
    const e = ConnectError.from(err);
    if (e.code === Code.Unauthenticated) {
      showSignIn("Your token is no longer accepted.");
      return;
    }
    clear(main);
    main.appendChild(h("p", { class: "error", role: "alert" }, describeError(e)));
  }
}

// A token revoked while a chat is open: back to the sign-in form.
window.addEventListener("roleplay:unauthenticated", () => {
  user = undefined;
  showSignIn("Your token is no longer accepted.");
});
window.addEventListener("hashchange", () => {
  void route().then(() => {
    // A screen reader starts at the new content, not at the top of the page.
    if (main && !main.contains(document.activeElement)) main.focus({ preventScroll: true });
  });
});
void boot();
