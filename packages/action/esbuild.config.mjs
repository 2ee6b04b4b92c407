// Bundles the action to the repository root's dist/: dist/main.js (the `main` step),
// dist/post.js (the `post` step) and dist/launcher.js (the local runner's launcher), ESM
// for node24, committed (check-dist.yml rebuilds and diffs). Some dependencies call require() for Node built-ins, which an ESM bundle lacks:
// the banner defines it with createRequire (aliased to avoid a clash with bundled code).
import { build } from "esbuild";
import { rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, "../../dist");

await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: {
    main: path.join(here, "src/index.ts"),
    post: path.join(here, "src/post.ts"),
    // The local runner starts experiments through this program, found beside the bundle.
    launcher: path.join(here, "../local-runner/src/launcher.ts"),
  },
  outdir,
  bundle: true,
  platform: "node",
  target: "node22",
  format: "esm",
  splitting: false,
  minify: true,
  keepNames: true,
  legalComments: "linked",
  logLevel: "warning",
  banner: {
    js: 'import { createRequire as __tmggCreateRequire } from "node:module"; const require = __tmggCreateRequire(import.meta.url);',
  },
});
