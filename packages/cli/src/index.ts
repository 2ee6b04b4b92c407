export { EXIT, main } from "./main.ts";
export type { Io } from "./main.ts";
export { Progress } from "./progress.ts";
