/**
 * Event-time watermarks across the partitions a task reads.
 *
 * Per partition: watermark = max event time seen - outOfOrdernessMs (Flink's bounded
 * out-of-orderness). The task's watermark is the minimum over *active* partitions and never moves
 * back. A partition is inactive when
 * - it is finished (bounded run, its end offset reached), or
 * - it is idle: caught up and without new records for `idleTimeoutMs` of wall time (Flink's
 *   `withIdleness`). Idle detection is a wall-clock effect, so bounded runs never use it.
 * When every partition is idle, event time is assumed to follow wall time: the watermark advances
 * by the wall time elapsed since the last record, so windows still close and sinks still flush on
 * a quiet topic (Flink would stall here; Kafka Streams and Quix only move on new records).
 */
export class PartitionClock {
  maxTs = -Infinity;
  lastActiveMs = 0;
  idle = false;
  finished = false;
  constructor(readonly id: string) {}
}

export class WatermarkTracker {
  readonly parts: PartitionClock[] = [];
  readonly #byId = new Map<string, PartitionClock>();
  /** Combined watermark (monotonic). */
  current = -Infinity;
  #allIdleSinceMs = -1;
  #allIdleBaseWm = -Infinity;

  constructor(
    readonly outOfOrdernessMs: number,
    readonly idleTimeoutMs: number,
  ) {}

  partition(id: string, nowMs: number): PartitionClock {
    let part = this.#byId.get(id);
    if (part === undefined) {
      part = new PartitionClock(id);
      part.lastActiveMs = nowMs;
      this.#byId.set(id, part);
      this.parts.push(part);
    }
    return part;
  }

  /** Records event time `ts` on `part`; returns the (possibly advanced) combined watermark. */
  observe(part: PartitionClock, ts: number): number {
    if (part.idle) {
      part.idle = false;
      this.#allIdleSinceMs = -1;
    }
    if (ts > part.maxTs) {
      part.maxTs = ts;
      return this.recompute();
    }
    return this.current;
  }

  recompute(): number {
    const parts = this.parts;
    let min = Infinity;
    let any = false;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p.finished || p.idle) continue;
      any = true;
      const wm = p.maxTs - this.outOfOrdernessMs;
      if (wm < min) min = wm;
    }
    if (any && min > this.current) this.current = min;
    return this.current;
  }

  /** Wall-clock housekeeping (unbounded runs): idle detection and idle advance. */
  tick(nowMs: number, caughtUp: (id: string) => boolean): number {
    let allIdle = this.parts.length > 0;
    for (const p of this.parts) {
      if (p.finished) continue;
      if (!p.idle && nowMs - p.lastActiveMs >= this.idleTimeoutMs && caughtUp(p.id)) p.idle = true;
      if (!p.idle) allIdle = false;
    }
    this.recompute();
    if (allIdle) {
      if (this.#allIdleSinceMs < 0) {
        this.#allIdleSinceMs = nowMs;
        let maxWm = -Infinity;
        for (const p of this.parts) maxWm = Math.max(maxWm, p.maxTs - this.outOfOrdernessMs);
        this.#allIdleBaseWm = Math.max(maxWm, this.current);
      }
      if (this.#allIdleBaseWm > -Infinity) {
        const advanced = this.#allIdleBaseWm + (nowMs - this.#allIdleSinceMs);
        if (advanced > this.current) this.current = advanced;
      }
    } else {
      this.#allIdleSinceMs = -1;
    }
    return this.current;
  }

  /** Bounded runs: every partition finished → +∞, all windows fire. */
  finishAll(): number {
    for (const p of this.parts) p.finished = true;
    this.current = Infinity;
    return this.current;
  }

  snapshot(): { parts: [string, number][]; current: number } {
    return {
      parts: this.parts.filter((p) => p.maxTs > -Infinity).map((p) => [p.id, p.maxTs]),
      current: Number.isFinite(this.current) ? this.current : -1e300,
    };
  }

  restore(saved: { parts: [string, number][]; current: number }, nowMs: number): void {
    for (const [id, maxTs] of saved.parts) this.partition(id, nowMs).maxTs = maxTs;
    this.current = saved.current <= -1e300 ? -Infinity : saved.current;
  }
}
