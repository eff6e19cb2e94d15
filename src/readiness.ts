export type ReadinessState = 'starting' | 'ready' | 'draining' | 'failed';

export interface Readiness {
  state(): ReadinessState;
  set(state: ReadinessState): void;
}

export function createReadiness(initial: ReadinessState = 'starting', onChange?: (s: ReadinessState) => void): Readiness {
  let current = initial;
  return {
    state: () => current,
    set(s) {
      current = s;
      onChange?.(s);
    },
  };
}
