/** Entry of the `main` step (bundled to dist/main.js). */
import { run } from "./main.ts";

await run();
