export {
  S3Storage,
  createS3Storage,
  createS3Storage as createStorage,
  parseS3Uri,
  resolveS3Settings,
} from "./s3-storage.ts";
export type { ResolvedS3Settings, S3StorageOptions } from "./s3-storage.ts";
