/**
 * The Modal SDK's own gRPC service definitions. `modal@0.11.1` generates them (ts-proto)
 * inside `dist/index.cjs` but does not export them, so a private copy of that file is
 * compiled in memory with one line appended that hands them out. This depends on the
 * SDK's internals, which is one reason the SDK is pinned exactly.
 */
import { readFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import path from "node:path";

/** One method of a ts-proto service definition, as nice-grpc reads it. */
export interface SdkMethodDefinition {
  name: string;
  requestStream: boolean;
  responseStream: boolean;
  requestType: unknown;
  responseType: unknown;
  options: unknown;
}

/** A ts-proto service definition (`{ name, fullName, methods }`). */
export interface SdkServiceDefinition {
  name: string;
  fullName: string;
  methods: Record<string, SdkMethodDefinition>;
}

export interface SdkDefinitions {
  /** `modal.client.ModalClient`: the control plane. */
  controlPlane: SdkServiceDefinition;
  /** `modal.task_command_router.TaskCommandRouter`: exec and files inside one sandbox. */
  commandRouter: SdkServiceDefinition;
}

interface CompilableModule {
  filename: string;
  paths: string[];
  exports: unknown;
  _compile(content: string, filename: string): void;
}

interface ModuleStatics {
  new (id: string): CompilableModule;
  _nodeModulePaths(from: string): string[];
}

const EXPORT_KEY = "__tmggFakeDefinitions";
let cached: SdkDefinitions | undefined;

/** Compiles (once per process) a private copy of the SDK and returns its service definitions. */
export function sdkDefinitions(): SdkDefinitions {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const file = require.resolve("modal");
  if (!file.endsWith(".cjs")) {
    throw new Error(`[modal-fake] expected the modal SDK's CommonJS build, resolved ${file}`);
  }
  const source = readFileSync(file, "utf8");
  if (
    !source.includes("var ModalClientDefinition = {") ||
    !source.includes("var TaskCommandRouterDefinition = {")
  ) {
    throw new Error(
      `[modal-fake] ${file} has no ModalClientDefinition / TaskCommandRouterDefinition: the fake only knows modal@0.11.1; pin that version`,
    );
  }
  const statics = Module as unknown as ModuleStatics;
  const copy = new statics(file);
  copy.filename = file;
  copy.paths = statics._nodeModulePaths(path.dirname(file));
  copy._compile(
    `${source}\nmodule.exports.${EXPORT_KEY} = { controlPlane: ModalClientDefinition, commandRouter: TaskCommandRouterDefinition };\n`,
    file,
  );
  const definitions = (copy.exports as Record<string, SdkDefinitions | undefined>)[EXPORT_KEY];
  if (!definitions)
    throw new Error(`[modal-fake] compiling ${file} did not yield the service definitions`);
  cached = definitions;
  return definitions;
}
