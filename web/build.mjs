// Builds the chart page into dist/: chart.js (src/chart.js with @tickwire/client's browser build
// and lightweight-charts bundled by esbuild, minified, with a source map and the bundled
// packages' licence notices in chart.js.LEGAL.txt), index.html and chart.css as they are.
// The output depends only on the sources and the locked packages (package-lock.json).
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  absWorkingDir: here,
  entryPoints: ["src/chart.js"],
  outfile: join(out, "chart.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  conditions: ["browser"],
  minify: true,
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
});
for (const f of ["index.html", "chart.css"]) await copyFile(join(here, "src", f), join(out, f));
console.log(`web: built ${out}`);
