/**
 * The query's views for the thumbnail check: the photo as sent, mirrored, and the
 * rectified card when one was found. Drawn lazily (a query the cascade settles after
 * the plain search only ever draws the plain view).
 */
import { makeView, makeWholeView, type CheckView } from './check.ts';
import type { QueryImage } from './decode-query.ts';
import type { CardDetection } from './rectify.ts';
import { toGrey, type GreyImage } from './raster.ts';
import { THUMB_HEIGHT, THUMB_WIDTH } from './thumbnail.ts';
import { squareToQuad, type Quad } from './warp.ts';

export type ViewKind = 'plain' | 'mirrored' | 'rectified';

export class QueryViews {
  private grey: GreyImage | undefined;
  private readonly drawn = new Map<ViewKind, CheckView>();
  private card: CardDetection | undefined;

  constructor(private readonly query: QueryImage) {}

  /** Makes the rectified view available (call once a card has been found). */
  setCard(card: CardDetection | undefined): void {
    this.card = card;
  }

  /** The kinds that can be drawn now. */
  kinds(all: boolean): ViewKind[] {
    if (!all) return ['plain'];
    return this.card ? ['plain', 'mirrored', 'rectified'] : ['plain', 'mirrored'];
  }

  view(kind: ViewKind): CheckView {
    let v = this.drawn.get(kind);
    if (!v) {
      v = this.draw(kind);
      this.drawn.set(kind, v);
    }
    return v;
  }

  private draw(kind: ViewKind): CheckView {
    this.grey ??= toGrey(this.query.rgb);
    const grey = this.grey;
    const { width: w, height: h } = grey;
    const aspect = this.query.aspect;
    if (kind === 'rectified' && this.card) {
      const q = this.card.quad;
      const trueQuad = q.map((p) => ({ x: (p.x * aspect * h) / w, y: p.y })) as Quad;
      return makeView(grey, squareToQuad(q), quadAspect(trueQuad), THUMB_WIDTH, THUMB_HEIGHT);
    }
    return makeWholeView(grey, aspect, THUMB_WIDTH, THUMB_HEIGHT, kind === 'mirrored');
  }
}

/** Width / height of a quad: mean of its opposite sides. */
export function quadAspect(q: Quad): number {
  const d = (a: number, b: number) => Math.hypot(q[b].x - q[a].x, q[b].y - q[a].y);
  const height = d(0, 3) + d(1, 2);
  return height > 0 ? (d(0, 1) + d(3, 2)) / height : 1;
}
