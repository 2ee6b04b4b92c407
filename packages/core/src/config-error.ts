/** Bad input from the user (a stage file, a config file, a flag): the CLI exits 2 on it. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** The file at fault, when there is one. */
  readonly file: string | undefined;
  /** The key path at fault, dotted as written in the file (`hyperparameter_space.model.dropout.low`). */
  readonly key: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(
    message: string,
    where: { file?: string; key?: string; line?: number; column?: number } = {},
    options?: ErrorOptions,
  ) {
    const place = where.file
      ? `${where.file}${where.line !== undefined ? `:${where.line}${where.column !== undefined ? `:${where.column}` : ""}` : ""}: `
      : "";
    super(`${place}${message}`, options);
    this.file = where.file;
    this.key = where.key;
    this.line = where.line;
    this.column = where.column;
  }
}
