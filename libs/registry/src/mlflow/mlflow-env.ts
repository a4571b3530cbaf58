import { RegistryValidationError } from '../model-registry';
import { MlflowModelRegistryOptions } from './mlflow-model-registry';

/**
 * MlflowModelRegistry options from the environment, using MLflow's own variable names
 * so that a shell already set up for the MLflow client works as it is:
 *   MLFLOW_TRACKING_URI (the predecessor's MLFLOW_URL is accepted too),
 *   MLFLOW_TRACKING_USERNAME + MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN,
 *   MLFLOW_HTTP_REQUEST_TIMEOUT (seconds), MLFLOW_HTTP_REQUEST_MAX_RETRIES.
 * Returns null when no tracking URI is set.
 */
export function mlflowOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): MlflowModelRegistryOptions | null {
  const trackingUri = env.MLFLOW_TRACKING_URI || env.MLFLOW_URL;
  if (!trackingUri) return null;
  const num = (name: string, min: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new RegistryValidationError(name, `${JSON.stringify(raw)} must be a number >= ${min}`);
    return n;
  };
  const timeoutS = num('MLFLOW_HTTP_REQUEST_TIMEOUT', 0.001);
  const maxRetries = num('MLFLOW_HTTP_REQUEST_MAX_RETRIES', 0);
  return {
    trackingUri,
    ...(env.MLFLOW_TRACKING_USERNAME ? { username: env.MLFLOW_TRACKING_USERNAME, password: env.MLFLOW_TRACKING_PASSWORD ?? '' } : {}),
    ...(env.MLFLOW_TRACKING_TOKEN ? { token: env.MLFLOW_TRACKING_TOKEN } : {}),
    ...(timeoutS !== undefined ? { timeoutMs: Math.round(timeoutS * 1000) } : {}),
    ...(maxRetries !== undefined ? { maxRetries: Math.floor(maxRetries) } : {}),
  };
}
