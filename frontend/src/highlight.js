// Static syntax highlighting of code listings with the same parser and classes as the editor.
import { classHighlighter, highlightCode } from "@lezer/highlight";
import { parser } from "@lezer/python";

export function highlightListings(root) {
  for (const code of root.querySelectorAll("pre code.language-python:not([data-highlighted])")) {
    const text = code.textContent;
    const out = document.createDocumentFragment();
    highlightCode(
      text,
      parser.parse(text),
      classHighlighter,
      (piece, classes) => {
        if (!classes) {
          out.append(document.createTextNode(piece));
          return;
        }
        const span = document.createElement("span");
        span.className = classes;
        span.textContent = piece;
        out.append(span);
      },
      () => out.append(document.createTextNode("\n")),
    );
    code.replaceChildren(out);
    code.dataset.highlighted = "1";
  }
}
