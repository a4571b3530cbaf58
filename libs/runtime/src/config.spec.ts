import { BaseConfig, ConfigError, loadConfig } from './config';
import { registrySettingsFrom } from './infra';

describe('configuration from the environment', () => {
  it('reads numbers as numbers and keeps the documented defaults', () => {
    const c = loadConfig(BaseConfig, { DB_POOL_SIZE: '4', AMQP_URL: 'amqp://guest:guest@localhost:5672' });
    expect(c.DB_POOL_SIZE).toBe(4);
    expect(c.REGISTRY_BACKEND).toBe('local');
    expect(c.MLFLOW_HTTP_REQUEST_TIMEOUT).toBe(30);
  });

  it('names every bad variable, with what it got', () => {
    try {
      loadConfig(BaseConfig, { DB_POOL_SIZE: 'many', AMQP_URL: 'http://x', REGISTRY_BACKEND: 'ftp' });
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toContain("DB_POOL_SIZE");
      expect(msg).toContain("AMQP_URL must be an amqp:// or amqps:// URL (got 'http://x')");
      expect(msg).toContain("REGISTRY_BACKEND");
    }
  });

  it('treats an empty value as unset', () => {
    expect(loadConfig(BaseConfig, { DATABASE_URL: '', AMQP_URL: '' }).DATABASE_URL).toBeUndefined();
  });

  it('picks the registry backend, with MLFLOW_URL as the predecessor named it', () => {
    expect(registrySettingsFrom(loadConfig(BaseConfig, {}))).toEqual({ backend: 'local', artifactDir: './.data/artifacts' });
    expect(registrySettingsFrom(loadConfig(BaseConfig, { REGISTRY_BACKEND: 'mlflow', MLFLOW_URL: 'http://mlflow:5000', MLFLOW_TRACKING_TOKEN: 't' }))).toEqual({
      backend: 'mlflow', trackingUri: 'http://mlflow:5000', token: 't', username: undefined, password: undefined, timeoutMs: 30_000, maxRetries: 4,
    });
    const both = loadConfig(BaseConfig, { REGISTRY_BACKEND: 'mlflow', MLFLOW_URL: 'http://old:5000', MLFLOW_TRACKING_URI: 'http://new:5000' });
    expect(registrySettingsFrom(both)).toMatchObject({ trackingUri: 'http://new:5000' });
    expect(() => registrySettingsFrom(loadConfig(BaseConfig, { REGISTRY_BACKEND: 'mlflow' }))).toThrow('MLFLOW_TRACKING_URI (or MLFLOW_URL) is required with REGISTRY_BACKEND=mlflow');
  });
});
