import type { RankedResult } from './types.ts';

/**
 * Keeps the k best (lowest score, then lowest id) entries seen, in a bounded max-heap
 * whose root is the worst kept entry. Unlike imgSeek's queue, an entry only gets in by
 * beating the worst one kept.
 */
export class TopK {
  private readonly scores: Float64Array;
  private readonly ids: Float64Array;
  private size = 0;

  constructor(private readonly k: number) {
    this.scores = new Float64Array(k);
    this.ids = new Float64Array(k);
  }

  wouldAccept(score: number, id: number): boolean {
    if (this.size < this.k) return true;
    const worst = this.scores[0];
    return score < worst || (score === worst && id < this.ids[0]);
  }

  /** The score an entry must not exceed to get in; Infinity until k are kept. */
  worstScore(): number {
    return this.size < this.k ? Infinity : this.scores[0];
  }

  /** Call only after wouldAccept returned true. */
  push(score: number, id: number): void {
    const scores = this.scores;
    const ids = this.ids;
    if (this.size < this.k) {
      let pos = this.size++;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (!(scores[parent] < score || (scores[parent] === score && ids[parent] < id))) break;
        scores[pos] = scores[parent];
        ids[pos] = ids[parent];
        pos = parent;
      }
      scores[pos] = score;
      ids[pos] = id;
      return;
    }
    let pos = 0;
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= this.size) break;
      let m = l;
      const r = l + 1;
      if (r < this.size && (scores[r] > scores[l] || (scores[r] === scores[l] && ids[r] > ids[l]))) m = r;
      if (!(scores[m] > score || (scores[m] === score && ids[m] > id))) break;
      scores[pos] = scores[m];
      ids[pos] = ids[m];
      pos = m;
    }
    scores[pos] = score;
    ids[pos] = id;
  }

  sorted(): RankedResult[] {
    const out: RankedResult[] = [];
    for (let i = 0; i < this.size; i++) out.push([this.ids[i], this.scores[i]]);
    return out.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  }
}
