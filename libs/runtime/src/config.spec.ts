import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BaseConfig, ConfigError, loadConfig } from './config';
import { brokerOptions, registrySettingsFrom } from './infra';

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

describe('broker connection options from the configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-broker-opts-'));
  const pem = join(dir, 'ca.pem');
  writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("stamps the URL's user as user_id, so that receivers know who published", () => {
    const opts = brokerOptions(loadConfig(BaseConfig, { AMQP_URL: 'amqp://site-1.net:pw@broker:5672/fl' }), 'worker-site-1');
    expect(opts).toEqual({ connectionName: 'worker-site-1', userId: 'site-1.net', queueExpiresMs: 7 * 86_400_000 });
  });

  it('gives the queues it declares an expiry of QUEUE_EXPIRES_S (7 days unless set; 0: none)', () => {
    expect(brokerOptions(loadConfig(BaseConfig, { QUEUE_EXPIRES_S: '3600' }), 'x').queueExpiresMs).toBe(3_600_000);
    expect(brokerOptions(loadConfig(BaseConfig, { QUEUE_EXPIRES_S: '0' }), 'x').queueExpiresMs).toBe(0);
    // At most 30 days, in whole seconds.
    expect(() => loadConfig(BaseConfig, { QUEUE_EXPIRES_S: String(31 * 86_400) })).toThrow(/QUEUE_EXPIRES_S/);
    expect(() => loadConfig(BaseConfig, { QUEUE_EXPIRES_S: '1.5' })).toThrow(/QUEUE_EXPIRES_S/);
  });

  it('reads the TLS files named in the environment', () => {
    const opts = brokerOptions(loadConfig(BaseConfig, { AMQP_URL: 'amqps://u:p@broker/fl', AMQP_TLS_CA_FILE: pem }), 'x');
    expect(opts.tls).toEqual({ ca: Buffer.from('-----BEGIN CERTIFICATE-----\n'), cert: undefined, key: undefined });
  });

  it('names the variable of a TLS file it cannot read', () => {
    const config = loadConfig(BaseConfig, { AMQP_URL: 'amqps://u:p@broker/fl', AMQP_TLS_CA_FILE: `${dir}/missing.pem` });
    expect(() => brokerOptions(config, 'x')).toThrow(new ConfigError([`AMQP_TLS_CA_FILE: cannot read '${dir}/missing.pem': ENOENT`]));
  });

  it('refuses TLS files with a plain amqp:// URL, and a certificate without its key', () => {
    expect(() => brokerOptions(loadConfig(BaseConfig, { AMQP_URL: 'amqp://u:p@broker/fl', AMQP_TLS_CA_FILE: pem }), 'x')).toThrow(/not an amqps:\/\/ URL/);
    expect(() => brokerOptions(loadConfig(BaseConfig, { AMQP_URL: 'amqps://u:p@broker/fl', AMQP_TLS_CERT_FILE: pem }), 'x')).toThrow(
      /AMQP_TLS_CERT_FILE and AMQP_TLS_KEY_FILE go together/,
    );
  });

  it('refuses a SITE_USER_SUFFIX that could not be part of a user name pattern', () => {
    expect(() => loadConfig(BaseConfig, { SITE_USER_SUFFIX: '.*' })).toThrow(/SITE_USER_SUFFIX may hold only/);
  });
});
