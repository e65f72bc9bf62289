/** Why an image could not be turned into pixels; the message is meant for a person. */
export type ImageErrorKind = 'empty' | 'too-large' | 'too-many-pixels' | 'undecodable';

export class ImageError extends Error {
  constructor(readonly kind: ImageErrorKind, message: string) {
    super(message);
    this.name = 'ImageError';
  }
}
