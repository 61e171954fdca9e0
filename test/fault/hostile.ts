/**
 * Hostile inputs built inside the tests (nothing binary is checked in), and a watcher that proves
 * the process kept answering while they were processed.
 */
import { gzipSync } from 'node:zlib';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { strToU8 } from 'fflate';

/** Least-significant-bit-first bit writer, as DEFLATE packs its stream (RFC 1951 §3.1.1). */
class BitWriter {
  readonly #bytes: number[] = [];
  #current = 0;
  #used = 0;

  bits(value: number, count: number): void {
    for (let i = 0; i < count; i++) this.#bit((value >>> i) & 1);
  }

  /** Huffman codes are packed starting with their most significant bit. */
  code(value: number, count: number): void {
    for (let i = count - 1; i >= 0; i--) this.#bit((value >>> i) & 1);
  }

  #bit(bit: number): void {
    this.#current |= bit << this.#used;
    if (++this.#used === 8) {
      this.#bytes.push(this.#current);
      this.#current = 0;
      this.#used = 0;
    }
  }

  finish(): Uint8Array {
    if (this.#used > 0) this.#bytes.push(this.#current);
    return Uint8Array.from(this.#bytes);
  }
}

/**
 * A raw DEFLATE stream (one fixed-Huffman block) of `prefix`, then `fill` repeated to
 * `inflatedBytes`, then `suffix`: the repetition is one literal and matches of length 258 at
 * distance 1 (13 bits each), so 1 GiB compresses to ~6.5 MB. Built directly, in milliseconds.
 */
export function deflateBomb(prefix: string, fill: string, inflatedBytes: number, suffix: string): Uint8Array {
  const out = new BitWriter();
  out.bits(1, 1); // BFINAL
  out.bits(1, 2); // BTYPE 01: fixed Huffman codes
  const literal = (byte: number) => {
    if (byte > 143) throw new RangeError('ASCII below 144 only');
    out.code(0x30 + byte, 8);
  };
  for (const byte of strToU8(prefix)) literal(byte);
  literal(fill.charCodeAt(0));
  let remaining = inflatedBytes - 1;
  while (remaining >= 258) {
    out.code(0xc5, 8); // length symbol 285 = 258, no extra bits
    out.code(0, 5); // distance code 0 = 1
    remaining -= 258;
  }
  while (remaining-- > 0) literal(fill.charCodeAt(0));
  for (const byte of strToU8(suffix)) literal(byte);
  out.code(0, 7); // end of block (256)
  return out.finish();
}

/** A ZIP archive of already-compressed entries (method 8), sizes as declared. CRCs are zero. */
export function zipOf(entries: { name: string; deflated: Uint8Array; size: number }[]): Uint8Array {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(entry.deflated.length, 18);
    local.writeUInt32LE(entry.size, 22);
    local.writeUInt16LE(name.length, 26);
    parts.push(local, name, Buffer.from(entry.deflated));
    const record = Buffer.alloc(46);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE(20, 6);
    record.writeUInt16LE(8, 10);
    record.writeUInt32LE(entry.deflated.length, 20);
    record.writeUInt32LE(entry.size, 24);
    record.writeUInt16LE(name.length, 28);
    record.writeUInt32LE(offset, 42);
    central.push(record, name);
    offset += 30 + name.length + entry.deflated.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}

/** A DOCX whose `word/document.xml` inflates to `inflatedBytes` (one paragraph of `a`s). */
export function docxBomb(inflatedBytes: number): Uint8Array {
  const prefix = '<?xml version="1.0"?><w:document><w:body><w:p><w:r><w:t>';
  const suffix = '</w:t></w:r></w:p></w:body></w:document>';
  const xml = deflateBomb(prefix, 'a', inflatedBytes, suffix);
  const types = deflateBomb('<Types/>', ' ', 1, '');
  return zipOf([
    { name: '[Content_Types].xml', deflated: types, size: 9 },
    { name: 'word/document.xml', deflated: xml, size: prefix.length + inflatedBytes + suffix.length },
  ]);
}

/** A real PDF of `pages` pages with one line each (pdf-lib). */
export async function manyPagePdf(pages: number): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (let i = 1; i <= pages; i++)
    pdf.addPage([200, 200]).drawText(`Page ${i} of a hostile PDF.`, { x: 10, y: 100, size: 8, font });
  return pdf.save();
}

/**
 * Text against the backtracking expressions the extraction and chunking used to run: long runs of
 * spaces before no newline, sentence marks without a following space, unclosed link brackets,
 * emphasis markers without partners, pipes among spaces, trailing hashes after spaces.
 */
export function regexHostileText(bytes: number): string {
  const pieces = [
    ' '.repeat(4096) + 'x',
    '!'.repeat(4096) + 'x',
    '[![('.repeat(1024),
    '**a_'.repeat(1024),
    ' | '.repeat(1365),
    ' #'.repeat(2048) + 'x',
  ];
  let text = '';
  for (let i = 0; text.length < bytes; i++) text += pieces[i % pieces.length];
  return text.slice(0, bytes);
}

/** HTML with thousands of `<script` openings that are never closed (each used to scan to the end). */
export function regexHostileHtml(bytes: number): string {
  return '<p>hello</p>' + '<script <style <!-- '.repeat(Math.ceil(bytes / 21)).slice(0, bytes);
}

/** A small gzip file that inflates to one line of `lineBytes` bytes (no newline). */
export function gzipLineBomb(lineBytes: number): Uint8Array {
  return gzipSync(Buffer.alloc(lineBytes, 'a'), { level: 9 });
}

/** JSON nested `depth` arrays deep. */
export function deepJson(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

export interface HealthWatch {
  /** Stops watching; resolves with the slowest answer and the highest RSS seen. */
  stop(): Promise<{ slowestMs: number; answers: number; failures: string[]; rssMaxBytes: number }>;
}

/**
 * Asks `GET <url>/health` back to back (20 ms apart) until stopped, recording the slowest round
 * (request plus the pause, so a blocked event loop anywhere in between shows) and the process's
 * highest resident set size. The server runs in this process, as the API does beside docproc.
 */
export function watchHealth(url: string): HealthWatch {
  let stopped = false;
  let slowestMs = 0;
  let answers = 0;
  let rssMaxBytes = process.memoryUsage.rss();
  const failures: string[] = [];
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      try {
        const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
        if (response.status !== 200) failures.push(`status ${response.status}`);
        await response.arrayBuffer();
        answers++;
      } catch (error) {
        failures.push((error as Error).message);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
      slowestMs = Math.max(slowestMs, performance.now() - started - 20);
      rssMaxBytes = Math.max(rssMaxBytes, process.memoryUsage.rss());
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { slowestMs, answers, failures, rssMaxBytes };
    },
  };
}
