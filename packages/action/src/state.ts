/** Names of what the main step saves (core.saveState) for the post step. */
export const STATE = {
  /** JSON list of Modal sandbox ids that may still run. */
  sandboxes: "modal-sandboxes",
  /** The sticky comment's id, once written. */
  commentId: "comment-id",
  /** "reported" once the final report is in the comment. */
  phase: "phase",
} as const;
