/**
 * Character avatars. The server serves them at `avatar_url`
 * (`/v1/characters/<id>/avatar`) behind the same token as the API, which an
 * `<img src>` cannot send as a header. So each image is fetched with the
 * token in `authorization` and shown from a `blob:` URL (the CSP allows
 * `img-src blob:`, and `connect-src` covers the API wherever it is, so this
 * also works with `?api=`), and the token never lands in a URL. One fetch
 * per avatar per screen (revalidated by ETag), shared by every image of it.
 */
import { apiBaseUrl, getToken } from "./api.js";
import { h, svg } from "./dom.js";

const cache = new Map<string, Promise<string | undefined>>();
/** The blob: URLs fetched so far, so a view drawn again shows them at once (no placeholder flash). */
const ready = new Map<string, string>();

async function load(path: string): Promise<string | undefined> {
  const token = getToken();
  const res = await fetch(new URL(path, apiBaseUrl()), {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    cache: "no-cache",
    credentials: "omit",
  });
  if (!res.ok) return undefined;
  const blob = await res.blob();
  if (!blob.type.startsWith("image/")) return undefined;
  return URL.createObjectURL(blob);
}

/** A `blob:` URL for the avatar at `path`, or undefined when there is none (or it cannot be fetched). */
export function avatarSrc(path: string): Promise<string | undefined> {
  let p = cache.get(path);
  if (!p) {
    const loading = load(path).catch(() => undefined);
    p = loading;
    cache.set(path, loading);
    void loading.then((url) => {
      if (cache.get(path) !== loading) return;
      if (url) ready.set(path, url);
      // A failure is not remembered: the next view tries again.
      else cache.delete(path);
    });
  }
  return p;
}

/**
 * Forgets an avatar (after it changed or was removed), or every avatar (on
 * each new screen, so a change made elsewhere shows; and after signing out).
 */
export function forgetAvatar(path?: string): void {
  const paths = path === undefined ? [...cache.keys()] : [path];
  for (const p of paths) {
    const entry = cache.get(p);
    cache.delete(p);
    ready.delete(p);
    // Images already shown keep their decoded picture; later ones fetch anew.
    void entry?.then((url) => {
      if (url) setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });
  }
}

function placeholder(): SVGElement {
  // A neutral head and shoulders, drawn in the page's colours.
  return svg(
    "svg",
    { viewBox: "0 0 40 40", class: "avatar-placeholder", "aria-hidden": "true", focusable: "false" },
    svg("circle", { cx: 20, cy: 15, r: 7 }),
    svg("path", { d: "M6 36c1.5-8 7.5-12 14-12s12.5 4 14 12z" }),
  );
}

/**
 * A square avatar: the image once it is fetched, a neutral placeholder
 * before that and when there is none. `alt` empty when the name is next to it.
 */
export function avatar(path: string, alt: string, size: "small" | "medium" | "large" = "medium"): HTMLElement {
  const box = h("span", { class: `avatar avatar-${size}`, "data-avatar": path ? "loading" : "none" });
  if (!path) {
    box.appendChild(placeholder());
    return box;
  }
  const show = (src: string) => {
    const img = h("img", { src, alt, decoding: "async", draggable: "false" });
    img.addEventListener("load", () => (box.dataset.avatar = "shown"), { once: true });
    img.addEventListener(
      "error",
      () => {
        box.replaceChildren(placeholder());
        box.dataset.avatar = "none";
      },
      { once: true },
    );
    box.replaceChildren(img);
  };
  const known = ready.get(path);
  if (known) {
    show(known);
    return box;
  }
  box.appendChild(placeholder());
  void avatarSrc(path).then((src) => {
    if (src) show(src);
    else box.dataset.avatar = "none";
  });
  return box;
}
