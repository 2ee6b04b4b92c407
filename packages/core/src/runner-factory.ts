import type { CloudRunner } from "./cloud-runner.ts";

/** Makes a runner from options; a plugin's factory. */
export type RunnerFactory = (
  options: Record<string, unknown>,
) => CloudRunner | Promise<CloudRunner>;

/** Built-in backends, loaded by package name only when asked for. */
const BUILT_INS = {
  local: { packageName: "@tmgg/local-runner", exportName: "createLocalRunner" },
  modal: { packageName: "@tmgg/modal-runner", exportName: "createModalRunner" },
} as const;

type BuiltInName = keyof typeof BUILT_INS;

function isBuiltIn(name: string): name is BuiltInName {
  return Object.hasOwn(BUILT_INS, name);
}

function isModuleNotFound(error: unknown, packageName: string): boolean {
  const e = error as NodeJS.ErrnoException;
  return (
    (e.code === "ERR_MODULE_NOT_FOUND" || e.code === "MODULE_NOT_FOUND") &&
    String(e.message).includes(packageName)
  );
}

/**
 * Chooses a backend by name (the original module's CloudRunnerFactory). `local` and
 * `modal` are built in: `create` imports their package on demand, and
 * `availableBackends` lists one only where its package is installed.
 *
 * @example
 * const runner = await CloudRunnerFactory.create("local", { outputDir: "./outputs" });
 */
export class CloudRunnerFactory {
  static readonly #registered = new Map<string, RunnerFactory>();

  /** Registers (or replaces) a backend. */
  static register(name: string, factory: RunnerFactory): void {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) {
      throw new Error(
        `[runner-factory] invalid backend name ${JSON.stringify(name)}: use lower-case letters, digits and '-'`,
      );
    }
    this.#registered.set(name, factory);
  }

  /** Removes a registered backend; built-ins stay available. */
  static unregister(name: string): boolean {
    return this.#registered.delete(name);
  }

  static async #loadBuiltIn(name: BuiltInName): Promise<RunnerFactory | undefined> {
    const { packageName, exportName } = BUILT_INS[name];
    try {
      const module = (await import(packageName)) as Record<string, unknown>;
      const factory = module[exportName];
      if (typeof factory !== "function") {
        throw new Error(
          `[runner-factory] ${packageName} does not export ${exportName}; install a matching version`,
        );
      }
      return factory as RunnerFactory;
    } catch (error) {
      if (isModuleNotFound(error, packageName)) return undefined;
      throw error;
    }
  }

  /** Creates a runner by name. Unknown names are an error listing the valid ones. */
  static async create(name: string, options: Record<string, unknown> = {}): Promise<CloudRunner> {
    const registered = this.#registered.get(name);
    if (registered) return registered(options);
    if (isBuiltIn(name)) {
      const factory = await this.#loadBuiltIn(name);
      if (factory) return factory(options);
      throw new Error(
        `[runner-factory] backend "${name}" needs the package ${BUILT_INS[name].packageName}: npm install ${BUILT_INS[name].packageName}`,
      );
    }
    const valid = await this.availableBackends();
    throw new Error(
      `[runner-factory] unknown backend "${name}"; valid backends: ${valid.join(", ") || "none installed"}`,
    );
  }

  /** Registered backends plus the built-ins whose packages are installed, sorted. */
  static async availableBackends(): Promise<string[]> {
    const names = new Set(this.#registered.keys());
    for (const name of Object.keys(BUILT_INS) as BuiltInName[]) {
      if (names.has(name)) continue;
      try {
        if (await this.#loadBuiltIn(name)) names.add(name);
      } catch {
        // installed but broken: create() reports why
        names.add(name);
      }
    }
    return [...names].sort();
  }
}
