// Typeset the TeX the server left in `.math` elements (Markdown's $...$ and $$...$$).
// katex.render builds DOM nodes and sets styles through the CSSOM, which the page's
// Content-Security-Policy (no inline styles) allows; renderToString's HTML would not be.
import katex from "katex";

const OPTIONS = { throwOnError: false, trust: false, strict: "ignore", output: "htmlAndMathml" };

export function renderTex(tex, element, displayMode) {
  katex.render(tex, element, { ...OPTIONS, displayMode });
}

export function typeset(root) {
  for (const el of root.querySelectorAll(".math:not([data-typeset])")) {
    const display = el.classList.contains("block") || el.classList.contains("display");
    renderTex(el.textContent.trim(), el, display);
    el.dataset.typeset = "1";
  }
}
