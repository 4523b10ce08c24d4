// Live preview of formula answers: the server parses the text with the grader's own
// parser (never eval) and answers LaTeX or the reason it cannot read it.
import { renderTex } from "./math.js";

export function enhanceFormulaInputs(root) {
  for (const input of root.querySelectorAll("input[data-preview-url]")) {
    const out = document.getElementById(input.dataset.previewTarget);
    if (!out) continue;
    let timer = 0;
    let latest = 0;
    const update = () => {
      const text = input.value;
      const mine = ++latest;
      if (!text.trim()) {
        out.replaceChildren();
        out.dataset.state = "empty";
        return;
      }
      const url = `${input.dataset.previewUrl}?${new URLSearchParams({ formula: text })}`;
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
        .then((res) => {
          if (mine !== latest) return; // a newer keystroke has its own request
          if (res.ok) {
            renderTex(res.latex, out, true);
            out.dataset.state = "ok";
          } else {
            out.textContent = res.error;
            out.dataset.state = "error";
          }
        })
        .catch(() => {
          if (mine !== latest) return;
          out.textContent = "Preview unavailable right now; you can still submit.";
          out.dataset.state = "error";
        });
    };
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(update, 180);
    });
    if (input.value) update();
  }
}
