import { type MsgHdrs, headers as natsHeaders } from 'nats';

/**
 * What travels on NATS, in one place: the names of the stream and the snapshot bucket,
 * the headers of a change message and its JSON body.
 *
 * Ordering: JetStream's "expected last sequence" is the *stream's* sequence, and the
 * change log's own numbers start anywhere (an existing database, a trimmed log), so the
 * two are not equal. The writer is the stream's only publisher and publishes change
 * rows in log order, each with `expect.lastSequence` = the stream sequence its
 * predecessor got (pipelined: it predicts them, predecessor + 1). A publish that
 * failed makes every later one in the pipeline fail too, so the stream never holds a
 * row after a missing one; the writer then re-reads the stream's last message (whose
 * `Haarseek-Seq` header is the change sequence) and resumes after it. The message id
 * (`Nats-Msg-Id`) is `<database id>:<change seq>`, so a repeat inside the duplicate
 * window is dropped. A replica applies a message only when its change sequence is its
 * last applied + 1, skips lower ones, and fetches a snapshot on a higher one (a gap).
 */
export const PROTOCOL_VERSION = 1;

export const HEADER_DB = 'Haarseek-Db';
export const HEADER_SEQ = 'Haarseek-Seq';
/** When the writer read the row to send it (ms since the epoch): lag, as seen by the writer's clock. */
export const HEADER_SENT = 'Haarseek-Sent';

export interface ReplicationNames {
  stream: string;
  subject: string;
  bucket: string;
}

/** `--nats-stream NAME` (default "haarseek") names everything one writer publishes. */
export function replicationNames(name: string): ReplicationNames {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new RangeError(`--nats-stream must be 1..64 letters, digits, _ or - (not ${JSON.stringify(name)})`);
  return { stream: `HAARSEEK_${name}`, subject: `haarseek.${name}.changes`, bucket: `HAARSEEK_${name}_snapshots` };
}

/** An image's whole row, as the writer holds it when it sends the change. */
export interface ImagePayload {
  w: number;
  h: number;
  avgl: [number, number, number];
  /** 240 bytes of packed coefficients, base64. */
  sig: string;
  /** The 32x48 grey thumbnail, base64; null when the image has none. */
  thumb: string | null;
  kw: number[];
}

export interface SpaceImagePayload extends ImagePayload {
  id: number;
}

/**
 * One change-log row with the data a replica needs, which cannot read the writer's file:
 * - image: the image's current row and keywords, or null when it is gone;
 * - space (inline): the whole space as it is now (null: the space was removed);
 * - space (snapshot): a space too large for one message (a load or a restore of many
 *   images); the writer stores a snapshot at or after this sequence and the replica
 *   installs it instead of the message.
 */
export type ChangeMessage =
  | { v: number; seq: number; op: 'image'; db: number; id: number; image: ImagePayload | null }
  | { v: number; seq: number; op: 'space'; db: number; space: { createdAt: number; images: SpaceImagePayload[] } | null }
  | { v: number; seq: number; op: 'space'; db: number; snapshot: true };

/** Largest message body: NATS's default max_payload is 1 MiB; headers and JSON slack fit in the rest. */
export const MAX_MESSAGE_BYTES = 900 * 1024;

export function messageHeaders(dbId: string, seq: number): MsgHdrs {
  const h = natsHeaders();
  h.set(HEADER_DB, dbId);
  h.set(HEADER_SEQ, String(seq));
  h.set(HEADER_SENT, String(Date.now()));
  return h;
}

export function messageId(dbId: string, seq: number): string {
  return `${dbId}:${seq}`;
}

/** What a snapshot object's description holds (JSON). */
export interface SnapshotDescription {
  db: string;
  /** The change sequence the snapshot is consistent at. */
  seq: number;
  /** A stream sequence at or before the first message after `seq`: where a replica starts reading. */
  streamStart: number;
  bytes: number;
  createdAt: string;
}

export function snapshotName(seq: number): string {
  return `snapshot-${String(seq).padStart(16, '0')}`;
}
