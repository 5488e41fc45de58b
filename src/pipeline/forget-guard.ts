/** How many forgets make a run suspicious (state.maxForgetFraction, state.maxForgetFloor). */
export interface ForgetPolicy {
  /** Share of the known users a run met above which its forgets are held. */
  maxFraction: number;
  /** …when they are also at least this many. */
  floor: number;
  /**
   * Asked only when the forgets would be held: whether an operator allowed them (--allow-mass-
   * forget, or a release granted through the admin API, which this consumes).
   */
  released: () => Promise<boolean>;
}

/**
 * The state-store key of the operator's release of the forget guard: the admin API grants it
 * (POST /admin/forget-hold/release), the next run that would hold its forgets takes it. It lives
 * beside the guard so the daemon, which grants it, and the strategies, which take it, both depend
 * on the pipeline rather than on each other.
 */
export function massForgetPermitKey(detectorKeyPrefix: string): string {
  return `${detectorKeyPrefix}permit:mass-forget`;
}

export type ForgetDecision = { forget: string[] } | { held: number; reason: string };

/**
 * Collects the known users a run finds disabled and decides, once the run is over, whether to
 * forget them. A rules change that switches the flag off, empties a segment or drops many users
 * at once would otherwise remove them all from the known set — and re-backfill them all when they
 * come back. Above the policy's share (and floor) nothing is forgotten until a person says so.
 */
export class ForgetGuard {
  private readonly pending: string[] = [];
  private knownMet = 0;

  constructor(private readonly policy: ForgetPolicy) {}

  /** A batch's known users (`known` of them) and those of them now disabled. */
  meet(known: number, disabled: readonly string[]): void {
    this.knownMet += known;
    for (const id of disabled) this.pending.push(id);
  }

  async decide(): Promise<ForgetDecision> {
    const count = this.pending.length;
    const { maxFraction, floor } = this.policy;
    if (count === 0 || count < floor || count <= maxFraction * this.knownMet) return { forget: this.pending };
    if (await this.policy.released()) return { forget: this.pending };
    const share = ((100 * count) / Math.max(1, this.knownMet)).toFixed(1);
    return {
      held: count,
      reason:
        `forgetting held: ${count} of the ${this.knownMet} known users this run met are now disabled (${share} %, above state.maxForgetFraction ${maxFraction * 100} % and state.maxForgetFloor ${floor}); ` +
        'nobody was forgotten. If the rules change is meant, release the hold for the next run: detect --allow-mass-forget, or POST /admin/forget-hold/release on the daemon',
    };
  }
}
