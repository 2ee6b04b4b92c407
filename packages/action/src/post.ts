/** Entry of the `post` step (bundled to dist/post.js). */
import { runPost } from "./cleanup.ts";

await runPost();
