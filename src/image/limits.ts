/** Input limits of a decode; apart from sharp, so that reading them loads no image library. */
export interface DecodeLimits {
  /** Largest encoded image accepted, in bytes. */
  maxInputBytes: number;
  /** Largest decoded image accepted (width x height), against decompression bombs. */
  maxPixels: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = {
  maxInputBytes: 32 * 1024 * 1024,
  maxPixels: 100_000_000,
};
