import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.ts';
import { formDataBoundary, parseFormData } from '../../src/http/multipart.ts';

const body = (...lines: string[]) => Buffer.from(lines.join('\r\n'), 'latin1');

describe('multipart/form-data', () => {
  it('reads the boundary from the Content-Type, quoted or not, and ignores other types', () => {
    expect(formDataBoundary('multipart/form-data; boundary=----abc123')).toBe('----abc123');
    expect(formDataBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b:c"')).toBe('a b:c');
    expect(formDataBoundary('image/jpeg')).toBeNull();
    expect(formDataBoundary(undefined)).toBeNull();
    expect(() => formDataBoundary('multipart/form-data')).toThrow(ProtocolError);
  });

  it('splits parts as curl and browsers send them, keeping binary data exact', () => {
    const binary = Buffer.from([0xff, 0xd8, 0x0d, 0x0a, 0x2d, 0x2d, 0x00, 0xff]); // CRLF and "--" inside the data
    const parts = parseFormData(
      Buffer.concat([
        body('preamble to ignore', '--XY', 'Content-Disposition: form-data; name="note"', '', 'hello', '--XY',
          'Content-Disposition: form-data; name="file"; filename="a \\"b\\".jpg"', 'Content-Type: image/jpeg', '', ''),
        binary,
        body('', '--XY--', 'epilogue'),
      ]),
      'XY',
    );
    expect(parts).toHaveLength(2);
    expect(parts[0]).toMatchObject({ name: 'note', data: Buffer.from('hello') });
    expect(parts[1]).toMatchObject({ name: 'file', filename: 'a "b".jpg', contentType: 'image/jpeg' });
    expect(Buffer.compare(parts[1].data, binary)).toBe(0);
  });

  it('refuses what is malformed with a ProtocolError', () => {
    expect(() => parseFormData(body('no boundary here'), 'XY')).toThrow(/does not contain its boundary/);
    expect(() => parseFormData(body('--XY', 'Content-Disposition: form-data; name="f"', '', 'data'), 'XY')).toThrow(/truncated/);
    expect(() => parseFormData(body('--XY', 'Content-Disposition: form-data; name="f"'), 'XY')).toThrow(/headers do not end/);
    expect(() => parseFormData(body('--XY', 'Content-Type: text/plain', '', 'data', '--XY--'), 'XY')).toThrow(/Content-Disposition/);
    expect(() => parseFormData(body('--XY', 'Content-Disposition: form-data', '', 'data', '--XY--'), 'XY')).toThrow(/no name/);
    expect(() => parseFormData(body('--XY', '', 'a part without headers', '--XY--'), 'XY')).toThrow(/Content-Disposition/);
    expect(() => parseFormData(body('--XYjunk', '', 'data', '--XY--'), 'XY')).toThrow(ProtocolError);
  });
});
