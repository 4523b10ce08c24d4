// A CodeMirror 6 editor over each `textarea[data-editor=python]`; the textarea stays in the
// form (hidden) and is kept in sync, so submitting works exactly as without JavaScript.
import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { bracketMatching, indentUnit, syntaxHighlighting } from "@codemirror/language";
import { EditorView, highlightActiveLine, keymap, lineNumbers } from "@codemirror/view";
import { classHighlighter } from "@lezer/highlight";
import { minimalSetup } from "codemirror";

function enhanceCodeEditors(root) {
  for (const textarea of root.querySelectorAll("textarea[data-editor=python]")) {
    const label = root.querySelector(`label[for="${textarea.id}"]`);
    const attrs = { "aria-label": label ? label.textContent.trim() : "Code" };
    if (textarea.getAttribute("aria-describedby")) {
      attrs["aria-describedby"] = textarea.getAttribute("aria-describedby");
    }
    const view = new EditorView({
      doc: textarea.value,
      extensions: [
        minimalSetup,
        lineNumbers(),
        highlightActiveLine(),
        bracketMatching(),
        indentUnit.of("    "),
        python(),
        syntaxHighlighting(classHighlighter),
        // Tab indents; Escape then Tab leaves the editor (CodeMirror's tab-focus mode).
        keymap.of([indentWithTab]),
        EditorView.contentAttributes.of(attrs),
        // The page's CSP admits CodeMirror's own <style> element by this per-response nonce.
        EditorView.cspNonce.of(textarea.dataset.styleNonce || ""),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) textarea.value = update.state.doc.toString();
        }),
      ],
    });
    view.dom.classList.add("code-editor");
    view.dom.dataset.for = textarea.id;
    textarea.after(view.dom);
    textarea.hidden = true;
    if (label) label.addEventListener("click", () => view.focus());
  }
}

function start() {
  enhanceCodeEditors(document);
  document.documentElement.dataset.editorReady = "1";
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
