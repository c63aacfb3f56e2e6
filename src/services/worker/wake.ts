// A wake-up call for a loop that sleeps between rounds: `kick()` ends the current (or the next)
// `sleep()` early, so a notification arriving while the loop works is not lost.
export class Wake {
  private kicked = false;
  private resolve: ((kicked: boolean) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  kick(): void {
    this.kicked = true;
    this.fire();
  }

  /** Sleep up to `ms`, or less if kicked (also if kicked since the last sleep). True when kicked. */
  sleep(ms: number): Promise<boolean> {
    if (this.kicked) {
      this.kicked = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(() => this.fire(false), ms);
    });
  }

  private fire(kicked = true): void {
    const r = this.resolve;
    if (!r) return;
    this.kicked = false;
    this.resolve = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    r(kicked);
  }
}
