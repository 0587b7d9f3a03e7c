import { describe, expect, it } from 'vitest';
import { AppConfig, ConfigError, loadEnv } from './app-config.js';

describe('loadEnv', () => {
  it('runs with no configuration at all: embedded database, generated development secret', () => {
    const env = loadEnv({ NODE_ENV: 'development', DATABASE_URL: '', JWT_SECRET: '' });
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.DATA_DIR).toBe('./data');
    expect(env.JWT_SECRET.length).toBeGreaterThanOrEqual(32);
    expect(env.JWT_SECRET_GENERATED).toBe(true);
  });

  it('refuses to start in production without JWT_SECRET', () => {
    expect(() => loadEnv({ NODE_ENV: 'production', JWT_SECRET: '' })).toThrow(/JWT_SECRET: required when NODE_ENV=production/);
  });

  it('lists every invalid variable by name', () => {
    let message = '';
    try {
      loadEnv({ PORT: 'eighty', DATABASE_URL: 'mysql://x', JWT_SECRET: 'short', CORS_ORIGINS: 'https://a.io, https://b.io' });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toContain('PORT');
    expect(message).toContain('DATABASE_URL');
    expect(message).toContain('JWT_SECRET: must be at least 32 characters');
  });

  it('parses lists and numbers', () => {
    const env = loadEnv({ CORS_ORIGINS: 'https://a.io, https://b.io', WS_MAX_SOCKETS_PER_USER: '3', JWT_SECRET: 'x'.repeat(32) });
    expect(env.CORS_ORIGINS).toEqual(['https://a.io', 'https://b.io']);
    expect(env.WS_MAX_SOCKETS_PER_USER).toBe(3);
    expect(env.JWT_SECRET_GENERATED).toBe(false);
  });

  it('wants an instance TTL of at least two report intervals, so that a late report does not drop it', () => {
    expect(() => loadEnv({ CLUSTER_REPORT_INTERVAL_MS: '2000', CLUSTER_INSTANCE_TTL_MS: '1000' })).toThrow(/CLUSTER_INSTANCE_TTL_MS/);
    expect(loadEnv({ CLUSTER_REPORT_INTERVAL_MS: '500', CLUSTER_INSTANCE_TTL_MS: '1000' }).CLUSTER_INSTANCE_TTL_MS).toBe(1000);
  });

  it('wants ADMIN_EMAIL and ADMIN_PASSWORD together', () => {
    expect(() => loadEnv({ ADMIN_EMAIL: 'a@b.io', ADMIN_PASSWORD: '' })).toThrow(/ADMIN_EMAIL and ADMIN_PASSWORD/);
  });
});

describe('AppConfig', () => {
  it('answers from the validated environment, as it was when the application was built', () => {
    const env = loadEnv({ JWT_SECRET: 'x'.repeat(32), PORT: '8080', DATABASE_URL: '' });
    const config = new AppConfig(env);
    env.PORT = 1;
    expect(config.get('PORT')).toBe(8080);
    expect(config.get('JWT_SECRET_GENERATED')).toBe(false);
    expect(config.usesEmbeddedDatabase).toBe(true);
  });
});
