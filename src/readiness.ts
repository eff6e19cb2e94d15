// Readiness: the lifecycle state (starting, ready, draining, failed) and the live conditions the
// service needs to issue anything (its own AWS credentials usable, the audit log writable). /readyz
// is 200 only when the state is ready and every condition holds, so a load balancer stops sending
// traffic to an instance that could only answer 503.
export type ReadinessState = 'starting' | 'ready' | 'draining' | 'failed';

export interface Readiness {
  state(): ReadinessState;
  set(state: ReadinessState): void;
  /** A named condition that must hold for /readyz to be 200 (checked on every probe). */
  addCheck(name: string, ok: () => boolean): void;
  /** Names of the conditions that do not hold now. */
  failing(): string[];
}

export function createReadiness(
  initial: ReadinessState = 'starting',
  onChange?: (s: ReadinessState) => void,
): Readiness {
  let current = initial;
  const checks: { name: string; ok: () => boolean }[] = [];
  return {
    state: () => current,
    set(s) {
      current = s;
      onChange?.(s);
    },
    addCheck(name, ok) {
      checks.push({ name, ok });
    },
    failing: () => checks.filter((c) => !c.ok()).map((c) => c.name),
  };
}
