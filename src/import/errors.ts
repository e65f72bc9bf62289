import { FileError } from '../errors.ts';

/**
 * Why a file was refused:
 * - truncated: the file ends before a field its own structure says is there;
 * - foreign: not a file of the expected program at all (an image, another database...);
 * - layout: an iskdaemon file of an ABI haarseek does not read (32-bit, Windows, big-endian);
 * - version: an iskdaemon format version haarseek does not read;
 * - damaged: the structure is right but a value is impossible (id out of range, bad
 *   coefficient, bucket section disagreeing with the records, trailing bytes...);
 * - space: the file does not hold the space asked for, or a space id is needed.
 */
export type ImportErrorKind = 'truncated' | 'foreign' | 'layout' | 'version' | 'damaged' | 'space';

/**
 * A refused import or export. It is a FileError, so every door reports it as the file
 * fault; nothing was written when it is thrown (the import is one transaction).
 */
export class ImportError extends FileError {
  constructor(readonly kind: ImportErrorKind, message: string) {
    super(message);
    this.name = 'ImportError';
  }
}
