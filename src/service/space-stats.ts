/** Per-space counters iskdaemon reports in getDbDetailedList. */
export class SpaceCounters {
  queries = 0;
  adds = 0;
  addsSinceSave = 0;
  lastId = 0;

  countQuery(): void {
    this.queries++;
  }

  countAdd(imageId: number): void {
    this.adds++;
    this.addsSinceSave++;
    this.lastId = imageId;
  }
}

export class SpaceStats {
  private readonly spaces = new Map<number, SpaceCounters>();
  readonly startedAt = Date.now();

  of(dbId: number): SpaceCounters {
    let counters = this.spaces.get(dbId);
    if (!counters) this.spaces.set(dbId, (counters = new SpaceCounters()));
    return counters;
  }

  forget(dbId: number): void {
    this.spaces.delete(dbId);
  }

  savedAll(): void {
    for (const counters of this.spaces.values()) counters.addsSinceSave = 0;
  }
}
