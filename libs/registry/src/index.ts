export * from './model-registry';
export { LocalModelRegistry, LOCAL_ARTIFACT_SCHEME } from './local-model-registry';
export type { LocalModelRegistryOptions } from './local-model-registry';
export { publishModelPackage, packageHash, PACKAGE_HASH_TAG } from './publish';
export * from './mlflow';
