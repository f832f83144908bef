/**
 * Markdown for model output, rendered safely: raw HTML is never passed
 * through (html: false escapes it as text), images are not rendered (the text
 * stays), and only absolute http/https links become links, opening in a new
 * tab without a referrer or opener.
 */
import MarkdownIt from "markdown-it";

const md = new MarkdownIt({ html: false, linkify: false, breaks: true, typographer: false });
md.disable(["image"]);
md.validateLink = (url: string) => /^https?:\/\/[^\s]+$/i.test(url.trim());

const renderToken = md.renderer.renderToken.bind(md.renderer);
md.renderer.rules.link_open = (tokens, idx, options) => {
  const token = tokens[idx];
  token.attrSet("target", "_blank");
  token.attrSet("rel", "noopener noreferrer nofollow");
  return renderToken(tokens, idx, options);
};

// Table cells carry their alignment as a style attribute, which the page's
// CSP (style-src 'self') refuses: use a class instead.
for (const rule of ["th_open", "td_open"] as const) {
  md.renderer.rules[rule] = (tokens, idx, options) => {
    const token = tokens[idx];
    const style = token.attrGet("style");
    if (style) {
      const align = /text-align:\s*(left|right|center)/.exec(style)?.[1];
      token.attrs = (token.attrs ?? []).filter(([name]) => name !== "style");
      if (align) token.attrJoin("class", `align-${align}`);
    }
    return renderToken(tokens, idx, options);
  };
}

export function renderMarkdown(text: string): string {
  return md.render(text);
}

/** Replaces the children of `el` with `text` rendered as markdown. */
export function setMarkdown(el: Element, text: string): void {
  el.innerHTML = renderMarkdown(text);
}
