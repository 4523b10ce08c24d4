// Live grading: poll the submission's small JSON status with backoff (queued -> running ->
// graded), then fetch the server-rendered feedback once and swap it in. Polling, not
// server-sent events: a held-open stream would pin one of the web's few sync workers.
import { highlightListings } from "./highlight.js";
import { typeset } from "./math.js";

const LIVE = new Set(["queued", "running"]);
const LABELS = {
  queued: "Queued: waiting for a grader…",
  running: "Running: checking your answer against autograd…",
  graded: "Graded.",
  failed: "Grading failed.",
};

function showStatus(box, status) {
  box.dataset.status = status;
  const text = box.querySelector("[data-status-text]");
  if (text) text.textContent = LABELS[status] || status;
  const order = ["queued", "running", "graded"];
  const at = order.indexOf(status === "failed" ? "graded" : status);
  box.querySelectorAll("[data-step]").forEach((li) => {
    const i = order.indexOf(li.dataset.step);
    li.classList.toggle("done", i < at || (i === at && !LIVE.has(status)));
    li.classList.toggle("current", i === at);
    if (i === at) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  });
}

function swapIn(html) {
  const doc = new DOMParser().parseFromString(html, "text/html"); // parsing runs no scripts
  for (const fresh of doc.querySelectorAll("[data-swap]")) {
    const old = document.getElementById(fresh.id);
    if (!old) continue;
    const node = document.importNode(fresh, true);
    old.replaceWith(node);
    typeset(node);
    highlightListings(node);
  }
}

function poll(box, delay) {
  fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((sub) => {
      showStatus(box, sub.status);
      if (LIVE.has(sub.status)) {
        setTimeout(() => poll(box, Math.min(delay * 1.5, 2000)), delay);
        return undefined;
      }
      return fetch(box.dataset.feedbackUrl, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`HTTP ${r.status}`))))
        .then(swapIn);
    })
    .catch(() => setTimeout(() => poll(box, Math.min(delay * 2, 5000)), delay));
}

export function followGrading(root) {
  const box = root.getElementById ? root.getElementById("result") : null;
  if (!box || !box.dataset.statusUrl || !LIVE.has(box.dataset.status)) return;
  showStatus(box, box.dataset.status);
  poll(box, 200);
}
