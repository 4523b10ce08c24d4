// Reproducible build of the portal's assets into service/static/dist (run: `make assets`).
// Versions are pinned by package-lock.json; esbuild's output depends only on its inputs.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "service", "static", "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "licenses"), { recursive: true });

const js = await esbuild.build({
  entryPoints: { portal: join(here, "src", "portal.js"), editor: join(here, "src", "editor.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "none", // the licences are shipped whole in dist/licenses/
  outdir: out,
  metafile: true,
  logLevel: "warning",
});

const css = await esbuild.build({
  entryPoints: { katex: join(here, "src", "katex.css") },
  bundle: true,
  minify: true,
  // Every browser that runs this bundle reads woff2, the first format KaTeX lists; the
  // woff and ttf fallbacks stay as unresolved references and are never requested.
  loader: { ".woff2": "file" },
  external: ["*.woff", "*.ttf"],
  assetNames: "fonts/[name]",
  outdir: out,
  metafile: true,
  logLevel: "warning",
});

// Ship the licence of every npm package that ended up in the bundles.
const packages = new Set();
for (const meta of [js.metafile, css.metafile]) {
  for (const input of Object.keys(meta.inputs)) {
    const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (m) packages.add(m[1]);
  }
}
const notice = [];
for (const name of [...packages].sort()) {
  const dir = join(here, "node_modules", name);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = ["LICENSE", "LICENSE.md", "LICENSE.txt"].find((f) => existsSync(join(dir, f)));
  if (!file) throw new Error(`no licence file in ${name}`);
  const target = `${name.replace("/", "__")}-LICENSE.txt`;
  copyFileSync(join(dir, file), join(out, "licenses", target));
  notice.push(`${name} ${pkg.version} (${pkg.license}): licenses/${target}`);
}
writeFileSync(
  join(out, "THIRD-PARTY.txt"),
  "Third-party code bundled into portal.js, editor.js and katex.css by frontend/build.mjs:\n\n" +
    notice.join("\n") + "\n",
);
console.log(`built ${out}:\n  ${notice.join("\n  ")}`);
