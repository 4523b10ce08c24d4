// Live grading: poll the submission's status with backoff until it is graded or failed,
// then render the verdict in place (no manual reload).
"use strict";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderVerdict(box, sub) {
  box.replaceChildren();
  const h = el("h2", null, `Attempt ${sub.attempt}: `);
  const st = el("span", "status", sub.status);
  st.dataset.status = sub.status;
  h.appendChild(st);
  box.appendChild(h);
  const verdict = el("div", "verdict");
  if (sub.status === "graded") {
    verdict.appendChild(el("p", "score", `Score: ${Math.round(sub.score * 100)}%`));
    const ul = el("ul", "parts");
    for (const [name, part] of Object.entries(sub.parts)) {
      const li = el("li", part.correct ? "right" : "wrong");
      li.appendChild(el("strong", null, name));
      li.appendChild(document.createTextNode(`: ${part.correct ? "right" : "wrong"} — ${part.message}`));
      if (part.diagnosis) li.appendChild(el("div", "diagnosis", part.diagnosis.message));
      ul.appendChild(li);
    }
    verdict.appendChild(ul);
    if (sub.message) verdict.appendChild(el("p", null, sub.message));
  } else if (sub.status === "failed") {
    verdict.appendChild(el("p", null, sub.message));
  } else {
    verdict.appendChild(el("p", null, "Grading…"));
  }
  box.appendChild(verdict);
}

function poll(box, url, delay) {
  fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
    .then((sub) => {
      renderVerdict(box, sub);
      if (sub.status === "queued" || sub.status === "running") {
        setTimeout(() => poll(box, url, Math.min(delay * 1.5, 2000)), delay);
      }
    })
    .catch(() => setTimeout(() => poll(box, url, Math.min(delay * 2, 5000)), delay));
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("result");
  if (!box || !box.dataset.statusUrl) return;
  const status = box.querySelector(".status");
  if (status && (status.dataset.status === "graded" || status.dataset.status === "failed")) return;
  poll(box, box.dataset.statusUrl, 150);
});
