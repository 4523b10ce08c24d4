// The learner portal's scripts: one bundle, loaded with `defer` on every page.
// Each part enhances server-rendered HTML that already works without JavaScript.
// The code editor is a separate bundle (editor.js), loaded only on code exercises.
import { enhanceFormulaInputs } from "./formula.js";
import { followGrading } from "./grading.js";
import { highlightListings } from "./highlight.js";
import { typeset } from "./math.js";

function start() {
  typeset(document.body);
  highlightListings(document);
  enhanceFormulaInputs(document);
  followGrading(document);
  // Browser tests wait for this instead of sleeping.
  document.documentElement.dataset.portalReady = "1";
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
