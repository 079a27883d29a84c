// How big the reliability suite runs: RELIABILITY_PROFILE=full (the default of `npm run
// test:reliability`, the figures in docs/reliability.md) or ci (what .ci/run runs: the same checks, sized to
// fit comfortably in CI's time limit). Individual figures can be overridden by environment variables.
export type ProfileName = 'ci' | 'full';

const name: ProfileName = process.env.RELIABILITY_PROFILE === 'ci' ? 'ci' : 'full';

const number = (variable: string, fallback: number): number => {
  const value = Number(process.env[variable]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};

export const PROFILE = {
  name,
  /** Clients that reconnect at once in the storm, and the window they do it in. */
  stormClients: number('RELIABILITY_STORM_CLIENTS', name === 'full' ? 5000 : 1000),
  stormWindowS: 10,
  /** How long the soak runs, and how much of it is warm-up. */
  soakSeconds: number('RELIABILITY_SOAK_SECONDS', name === 'full' ? 600 : 60),
  soakWarmupSeconds: number('RELIABILITY_SOAK_WARMUP_SECONDS', name === 'full' ? 60 : 15),
  /** Property-based cases per REST route and per frame type. */
  fuzzRuns: number('RELIABILITY_FUZZ_RUNS', name === 'full' ? 300 : 60),
};
