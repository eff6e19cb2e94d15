// The problems a configuration step reports: loadConfig and the start-up checks throw a
// ConfigError listing every problem, and the tests assert on that list.
import { ConfigError } from '../../src/config/load.js';

export function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

export async function problemsOfAsync(p: Promise<unknown>): Promise<readonly string[]> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(err)}`);
  return err.problems;
}

/** The fixtures the configuration suites share: a role, a JWKS issuer and a profile builder. */
export const CONFIG_ROLE = 'arn:aws:iam::123456789012:role/credvend-uploads';
export const CONFIG_ISSUER = {
  issuer: 'https://gitlab.example.com',
  audiences: ['credvend'],
  jwksUri: 'https://gitlab.example.com/oauth/discovery/keys',
};

export function configProfile(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    roleArn: CONFIG_ROLE,
    bucket: 'tenant-bucket',
    region: 'eu-west-1',
    prefix: 'uploads/{sub}/',
    match: { iss: CONFIG_ISSUER.issuer },
    ...over,
  };
}
