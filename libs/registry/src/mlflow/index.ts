export { MlflowModelRegistry, DEFAULT_PACKAGES_EXPERIMENT, MLFLOW_MODEL_SUBDIR, validateMlflowModelName } from './mlflow-model-registry';
export type { MlflowModelRegistryOptions } from './mlflow-model-registry';
export { MlflowHttpClient, MlflowApiError } from './mlflow-http-client';
export type { MlflowHttpOptions, MlflowLogger } from './mlflow-http-client';
export { proxyPathOf, parseRunsUri, MLFLOW_ARTIFACTS_SCHEME, RUNS_SCHEME } from './artifact-uri';
