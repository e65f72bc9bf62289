import { LimitReachedError } from '../errors.ts';
import type { Signature } from '../signature/types.ts';
import type { ServiceContext } from './context.ts';
import type { SignatureMaker } from './signatures.ts';

export interface AddedImage {
  id: number;
  width: number;
  height: number;
}

/** Changes to spaces, images and keywords: committed to SQLite, then applied to the index. */
export class WriteService {
  constructor(private readonly ctx: ServiceContext, private readonly signatures: SignatureMaker) {}

  /** Creates a space (nothing happens when it exists). */
  createSpace(dbId: number): void {
    const store = this.ctx.store();
    this.checkRoomFor(dbId);
    store.createSpace(dbId);
    this.ctx.o.catalog.ensure(dbId);
  }

  clearSpace(dbId: number): void {
    this.ctx.index(dbId);
    this.ctx.store().clearSpace(dbId, false);
    this.ctx.o.catalog.load(dbId, []);
  }

  removeSpace(dbId: number): void {
    this.ctx.index(dbId);
    this.ctx.store().clearSpace(dbId, true);
    this.ctx.o.catalog.drop(dbId);
    this.ctx.stats.forget(dbId);
  }

  /** Adds or replaces an image; creates the space when missing. */
  async addImage(dbId: number, imageId: number, bytes: Uint8Array): Promise<AddedImage> {
    const store = this.ctx.store();
    this.checkRoomFor(dbId);
    const { sig, width, height, thumb } = await this.signatures.of(bytes);
    this.checkRoomFor(dbId);
    store.putImage(dbId, imageId, width, height, sig, thumb);
    this.ctx.o.catalog.ensure(dbId).add(imageId, sig);
    this.ctx.stats.of(dbId).countAdd(imageId);
    return { id: imageId, width, height };
  }

  /** Adds decoded images in one transaction (bulk paths); returns how many were stored. */
  addSignatures(dbId: number, images: Array<{ imageId: number; width: number; height: number; sig: Signature; thumb?: Uint8Array }>): number {
    const store = this.ctx.store();
    this.checkRoomFor(dbId);
    const added = store.putImages(dbId, images);
    const index = this.ctx.o.catalog.ensure(dbId);
    for (const image of images) {
      index.add(image.imageId, image.sig);
      this.ctx.stats.of(dbId).countAdd(image.imageId);
    }
    return added;
  }

  removeImage(dbId: number, imageId: number): void {
    this.ctx.requireImage(dbId, imageId);
    this.ctx.store().removeImage(dbId, imageId);
    this.ctx.o.catalog.get(dbId)?.remove(imageId);
  }

  addKeywords(dbId: number, imageId: number, keywords: number[]): void {
    this.ctx.requireImage(dbId, imageId);
    this.ctx.store().addKeywords(dbId, imageId, keywords);
  }

  removeKeywords(dbId: number, imageId: number, keywords: number[] | 'all'): void {
    this.ctx.requireImage(dbId, imageId);
    this.ctx.store().removeKeywords(dbId, imageId, keywords);
  }

  private checkRoomFor(dbId: number): void {
    const { catalog, maxSpaces } = this.ctx.o;
    if (catalog.get(dbId) === undefined && catalog.ids().length >= maxSpaces) {
      throw new LimitReachedError(`this server holds its limit of ${maxSpaces} database spaces; remove one (removeDb) or start the server with a larger --max-spaces`);
    }
  }
}
