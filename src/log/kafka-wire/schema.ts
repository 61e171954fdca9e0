import { TributaryError } from '../../core/index.js';

/**
 * The shape of Apache Kafka's JSON message definitions (clients/src/main/resources/common/message),
 * which `messages.ts` holds for every API. One interpreter (`compileMessage`) reads and writes any
 * message at any version from them, so no API has hand-written byte juggling.
 */
export interface FieldSchema {
  name: string;
  type: string;
  versions: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number | string;
  default?: string | number | boolean;
  fields?: FieldSchema[];
  /** Overrides the message's flexible versions for this field (only RequestHeader.ClientId). */
  flexibleVersions?: string;
  mapKey?: boolean;
  ignorable?: boolean;
  zeroCopy?: boolean;
}

export interface MessageSchema {
  apiKey?: number;
  type: string;
  name: string;
  validVersions: string;
  flexibleVersions: string;
  fields: FieldSchema[];
  commonStructs?: { name: string; versions: string; fields: FieldSchema[] }[];
}

/** A decoded message: fields by camelCase name (`ThrottleTimeMs` → `throttleTimeMs`). */
export type Message = Record<string, unknown>;

/** `"3+"`, `"0-7"`, `"5"`, `"none"` → an inclusive range (empty for none). */
export function parseVersions(text: string | undefined): [number, number] {
  if (text === undefined || text === 'none' || text === '') return [1, 0];
  const plus = /^(\d+)\+$/.exec(text);
  if (plus) return [Number(plus[1]), Number.MAX_SAFE_INTEGER];
  const range = /^(\d+)-(\d+)$/.exec(text);
  if (range) return [Number(range[1]), Number(range[2])];
  if (/^\d+$/.test(text)) return [Number(text), Number(text)];
  throw new TributaryError('INTERNAL', `bad Kafka version range ${JSON.stringify(text)}`);
}

function inRange(text: string | undefined, version: number): boolean {
  const [lo, hi] = parseVersions(text);
  return version >= lo && version <= hi;
}

function camel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

// ---------------------------------------------------------------------------------------------
// Primitive reader and writer (big-endian, Kafka's varints are zig-zag; "unsigned varint" plain).

export class KafkaReader {
  readonly buffer: Buffer;
  offset: number;
  constructor(buffer: Buffer, offset = 0) {
    this.buffer = buffer;
    this.offset = offset;
  }
  #need(bytes: number, what: string): void {
    if (this.offset + bytes > this.buffer.length) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `Kafka message truncated: ${what} needs ${bytes} bytes at byte ${this.offset} of ${this.buffer.length}`,
      );
    }
  }
  int8(): number {
    this.#need(1, 'int8');
    return this.buffer.readInt8(this.offset++);
  }
  int16(): number {
    this.#need(2, 'int16');
    const v = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  uint16(): number {
    this.#need(2, 'uint16');
    const v = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  int32(): number {
    this.#need(4, 'int32');
    const v = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  uint32(): number {
    this.#need(4, 'uint32');
    const v = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  /** int64 as a number: offsets, timestamps and producer ids stay far below 2^53. */
  int64(): number {
    this.#need(8, 'int64');
    const hi = this.buffer.readInt32BE(this.offset);
    const lo = this.buffer.readUInt32BE(this.offset + 4);
    this.offset += 8;
    return hi * 0x1_0000_0000 + lo;
  }
  float64(): number {
    this.#need(8, 'float64');
    const v = this.buffer.readDoubleBE(this.offset);
    this.offset += 8;
    return v;
  }
  uvarint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      this.#need(1, 'varint');
      const byte = this.buffer[this.offset++];
      if (shift < 28) result |= (byte & 0x7f) << shift;
      else result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35)
        throw new TributaryError('INVALID_ARGUMENT', `Kafka varint too long at byte ${this.offset}`);
    }
  }
  varint(): number {
    const raw = this.uvarint();
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }
  varlong(): number {
    let result = 0;
    let multiplier = 1;
    for (let i = 0; i < 10; i++) {
      this.#need(1, 'varlong');
      const byte = this.buffer[this.offset++];
      result += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
      multiplier *= 128;
    }
    throw new TributaryError('INVALID_ARGUMENT', `Kafka varlong too long at byte ${this.offset}`);
  }
  bytes(length: number): Buffer {
    this.#need(length, 'bytes');
    const v = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return v;
  }
  uuid(): string {
    return this.bytes(16).toString('hex');
  }
}

/** Big buffers (record batches) are kept as their own chunks instead of being copied. */
const zeroCopyBytesMin = 4096;

export class KafkaWriter {
  #chunks: Buffer[] = [];
  #buffer: Buffer;
  #used = 0;
  #flushedBytes = 0;
  constructor(initialBytes = 512) {
    this.#buffer = Buffer.allocUnsafe(initialBytes);
  }
  get length(): number {
    return this.#flushedBytes + this.#used;
  }
  #ensure(bytes: number): void {
    if (this.#used + bytes <= this.#buffer.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#used + bytes));
    this.#buffer.copy(next, 0, 0, this.#used);
    this.#buffer = next;
  }
  int8(v: number): this {
    this.#ensure(1);
    this.#buffer.writeInt8(v, this.#used++);
    return this;
  }
  int16(v: number): this {
    this.#ensure(2);
    this.#buffer.writeInt16BE(v, this.#used);
    this.#used += 2;
    return this;
  }
  uint16(v: number): this {
    this.#ensure(2);
    this.#buffer.writeUInt16BE(v, this.#used);
    this.#used += 2;
    return this;
  }
  int32(v: number): this {
    this.#ensure(4);
    this.#buffer.writeInt32BE(v, this.#used);
    this.#used += 4;
    return this;
  }
  uint32(v: number): this {
    this.#ensure(4);
    this.#buffer.writeUInt32BE(v >>> 0, this.#used);
    this.#used += 4;
    return this;
  }
  int64(v: number): this {
    this.#ensure(8);
    this.#buffer.writeBigInt64BE(BigInt(v), this.#used);
    this.#used += 8;
    return this;
  }
  float64(v: number): this {
    this.#ensure(8);
    this.#buffer.writeDoubleBE(v, this.#used);
    this.#used += 8;
    return this;
  }
  uvarint(v: number): this {
    this.#ensure(10);
    while (v >= 0x80) {
      this.#buffer[this.#used++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.#buffer[this.#used++] = v;
    return this;
  }
  varint(v: number): this {
    return this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }
  bytes(v: Uint8Array): this {
    if (v.length >= zeroCopyBytesMin) {
      this.#chunks.push(this.#buffer.subarray(0, this.#used));
      this.#flushedBytes += this.#used;
      this.#buffer = this.#buffer.subarray(this.#used);
      this.#used = 0;
      const chunk = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      this.#chunks.push(chunk);
      this.#flushedBytes += chunk.length;
      return this;
    }
    this.#ensure(v.length);
    this.#buffer.set(v, this.#used);
    this.#used += v.length;
    return this;
  }
  uuid(hex: string): this {
    const raw = Buffer.from(hex.padStart(32, '0').slice(0, 32), 'hex');
    return this.bytes(raw);
  }
  /** The written bytes as chunks (for `socket.write` one by one, or `Buffer.concat`). */
  chunks(): Buffer[] {
    return this.#used === 0 ? this.#chunks : [...this.#chunks, this.#buffer.subarray(0, this.#used)];
  }
  toBuffer(): Buffer {
    const chunks = this.chunks();
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  }
}

// ---------------------------------------------------------------------------------------------
// The interpreter: a schema and a version compile to a reader and a writer of plain objects.

interface CompiledField {
  key: string;
  read: (r: KafkaReader) => unknown;
  write: (w: KafkaWriter, value: unknown) => void;
  defaultValue: () => unknown;
  isDefault: (value: unknown) => boolean;
  tag: number | undefined;
}

export interface CompiledMessage {
  read(r: KafkaReader): Message;
  write(w: KafkaWriter, message: Message): void;
  /** A message with every field at its default (arrays empty, strings "", numbers 0 or as given). */
  defaults(): Message;
}

type StructTable = Map<string, FieldSchema[]>;

const primitiveDefaults: Record<string, unknown> = {
  bool: false,
  int8: 0,
  int16: 0,
  uint16: 0,
  int32: 0,
  int64: 0,
  float64: 0,
  uuid: '00000000000000000000000000000000',
  string: '',
  bytes: Buffer.alloc(0),
  records: null,
};

function parseDefault(field: FieldSchema, nullable: boolean): unknown {
  const d = field.default;
  if (field.type === 'bool') return d === true || d === 'true';
  if (field.type === 'string') return d === 'null' ? null : d === undefined ? '' : String(d);
  if (['int8', 'int16', 'uint16', 'int32', 'int64', 'float64'].includes(field.type)) {
    if (d === undefined) return 0;
    return typeof d === 'number' ? d : Number(d);
  }
  if (field.type === 'bytes' || field.type === 'records') return nullable ? null : Buffer.alloc(0);
  if (field.type === 'uuid') return primitiveDefaults.uuid;
  return undefined;
}

function compileFields(
  fields: FieldSchema[],
  version: number,
  flexible: boolean,
  structs: StructTable,
  where: string,
): { regular: CompiledField[]; tagged: CompiledField[] } {
  const regular: CompiledField[] = [];
  const tagged: CompiledField[] = [];
  for (const field of fields) {
    if (!inRange(field.versions, version)) continue;
    const isTagged = flexible && inRange(field.taggedVersions, version);
    const fieldFlexible =
      field.flexibleVersions === undefined ? flexible : inRange(field.flexibleVersions, version);
    const compiled = compileField(field, version, fieldFlexible, structs, `${where}.${field.name}`);
    if (isTagged) tagged.push({ ...compiled, tag: Number(field.tag) });
    else regular.push(compiled);
  }
  return { regular, tagged };
}

function compileStruct(
  fields: FieldSchema[],
  version: number,
  flexible: boolean,
  structs: StructTable,
  where: string,
): CompiledMessage {
  const { regular, tagged } = compileFields(fields, version, flexible, structs, where);
  const byTag = new Map(tagged.map((f) => [f.tag!, f]));
  const all = [...regular, ...tagged];
  return {
    defaults: () => {
      const out: Message = {};
      for (const f of all) out[f.key] = f.defaultValue();
      return out;
    },
    read: (r) => {
      const out: Message = {};
      for (const f of regular) out[f.key] = f.read(r);
      for (const f of tagged) out[f.key] = f.defaultValue();
      if (flexible) {
        const count = r.uvarint();
        for (let i = 0; i < count; i++) {
          const tag = r.uvarint();
          const size = r.uvarint();
          const f = byTag.get(tag);
          if (f === undefined) {
            r.offset += size; // unknown tags are skipped, as the spec asks
            continue;
          }
          const sub = new KafkaReader(r.bytes(size));
          out[f.key] = f.read(sub);
        }
      }
      return out;
    },
    write: (w, message) => {
      for (const f of regular) {
        const value = message[f.key];
        f.write(w, value === undefined ? f.defaultValue() : value);
      }
      if (flexible) {
        const present = tagged.filter((f) => {
          const value = message[f.key];
          return value !== undefined && !f.isDefault(value);
        });
        w.uvarint(present.length);
        for (const f of present.sort((a, b) => a.tag! - b.tag!)) {
          const sub = new KafkaWriter(64);
          f.write(sub, message[f.key]);
          const bytes = sub.toBuffer();
          w.uvarint(f.tag!).uvarint(bytes.length).bytes(bytes);
        }
      }
    },
  };
}

function compileField(
  field: FieldSchema,
  version: number,
  flexible: boolean,
  structs: StructTable,
  where: string,
): CompiledField {
  const key = camel(field.name);
  const nullable = inRange(field.nullableVersions, version);
  if (field.type.startsWith('[]')) {
    const inner = field.type.slice(2);
    const element = compileElement(inner, field, version, flexible, structs, where);
    const readLength = flexible ? (r: KafkaReader) => r.uvarint() - 1 : (r: KafkaReader) => r.int32();
    return {
      key,
      tag: undefined,
      defaultValue: () => (nullable && field.default === 'null' ? null : []),
      isDefault: (v) => v === null || (Array.isArray(v) && v.length === 0),
      read: (r) => {
        const length = readLength(r);
        if (length < 0) {
          if (!nullable)
            throw new TributaryError('INVALID_ARGUMENT', `Kafka field ${where} is null but not nullable`);
          return null;
        }
        if (length > r.buffer.length - r.offset) {
          throw new TributaryError(
            'INVALID_ARGUMENT',
            `Kafka field ${where}: array length ${length} exceeds the message`,
          );
        }
        const out = new Array<unknown>(length);
        for (let i = 0; i < length; i++) out[i] = element.read(r);
        return out;
      },
      write: (w, value) => {
        if (value === null || value === undefined) {
          if (flexible) w.uvarint(0);
          else w.int32(-1);
          return;
        }
        const list = value as unknown[];
        if (flexible) w.uvarint(list.length + 1);
        else w.int32(list.length);
        for (const item of list) element.write(w, item);
      },
    };
  }
  if (field.fields !== undefined || structs.has(field.type)) {
    const struct = compileStruct(field.fields ?? structs.get(field.type)!, version, flexible, structs, where);
    return {
      key,
      tag: undefined,
      defaultValue: () => (nullable ? null : struct.defaults()),
      isDefault: (v) => v === null,
      read: (r) => {
        if (nullable && r.int8() < 0) return null;
        return struct.read(r);
      },
      write: (w, value) => {
        if (nullable) {
          if (value === null || value === undefined) {
            w.int8(-1);
            return;
          }
          w.int8(1);
        }
        struct.write(w, (value ?? struct.defaults()) as Message);
      },
    };
  }
  const primitive = compilePrimitive(field.type, nullable, flexible, where);
  const defaultValue = parseDefault(field, nullable);
  return {
    key,
    tag: undefined,
    defaultValue: () => defaultValue,
    isDefault: (v) =>
      v === defaultValue || (Buffer.isBuffer(v) && v.length === 0 && Buffer.isBuffer(defaultValue)),
    ...primitive,
  };
}

function compileElement(
  type: string,
  field: FieldSchema,
  version: number,
  flexible: boolean,
  structs: StructTable,
  where: string,
): { read: (r: KafkaReader) => unknown; write: (w: KafkaWriter, v: unknown) => void } {
  if (field.fields !== undefined || structs.has(type)) {
    const struct = compileStruct(field.fields ?? structs.get(type)!, version, flexible, structs, where);
    return { read: (r) => struct.read(r), write: (w, v) => struct.write(w, v as Message) };
  }
  return compilePrimitive(type, false, flexible, where);
}

function compilePrimitive(
  type: string,
  nullable: boolean,
  flexible: boolean,
  where: string,
): { read: (r: KafkaReader) => unknown; write: (w: KafkaWriter, v: unknown) => void } {
  switch (type) {
    case 'bool':
      return { read: (r) => r.int8() !== 0, write: (w, v) => w.int8(v ? 1 : 0) };
    case 'int8':
      return { read: (r) => r.int8(), write: (w, v) => w.int8(v as number) };
    case 'int16':
      return { read: (r) => r.int16(), write: (w, v) => w.int16(v as number) };
    case 'uint16':
      return { read: (r) => r.uint16(), write: (w, v) => w.uint16(v as number) };
    case 'int32':
      return { read: (r) => r.int32(), write: (w, v) => w.int32(v as number) };
    case 'int64':
      return { read: (r) => r.int64(), write: (w, v) => w.int64(v as number) };
    case 'float64':
      return { read: (r) => r.float64(), write: (w, v) => w.float64(v as number) };
    case 'uuid':
      return { read: (r) => r.uuid(), write: (w, v) => w.uuid(v as string) };
    case 'string':
      return {
        read: (r) => {
          const length = flexible ? r.uvarint() - 1 : r.int16();
          if (length < 0) {
            if (!nullable)
              throw new TributaryError('INVALID_ARGUMENT', `Kafka field ${where} is null but not nullable`);
            return null;
          }
          return r.bytes(length).toString('utf8');
        },
        write: (w, v) => {
          if (v === null || v === undefined) {
            // A null for a field not nullable in this version is written as "" (older versions).
            if (!nullable) v = '';
            else {
              if (flexible) w.uvarint(0);
              else w.int16(-1);
              return;
            }
          }
          const bytes = Buffer.from(v as string, 'utf8');
          if (flexible) w.uvarint(bytes.length + 1);
          else w.int16(bytes.length);
          w.bytes(bytes);
        },
      };
    case 'bytes':
    case 'records':
      return {
        read: (r) => {
          const length = flexible ? r.uvarint() - 1 : r.int32();
          if (length < 0) return nullable || type === 'records' ? null : Buffer.alloc(0);
          return r.bytes(length);
        },
        write: (w, v) => {
          if (v === null || v === undefined) {
            if (flexible) w.uvarint(0);
            else w.int32(-1);
            return;
          }
          const bytes = v as Uint8Array;
          if (flexible) w.uvarint(bytes.length + 1);
          else w.int32(bytes.length);
          w.bytes(bytes);
        },
      };
    default:
      throw new TributaryError('INTERNAL', `Kafka field ${where} has unknown type ${type}`);
  }
}

/** Compiles `schema` at `version` (cache the result: compiling walks the whole definition). */
export function compileMessage(schema: MessageSchema, version: number): CompiledMessage {
  const structs: StructTable = new Map();
  const collect = (fields: FieldSchema[]) => {
    for (const f of fields) {
      if (f.fields !== undefined) {
        const type = f.type.startsWith('[]') ? f.type.slice(2) : f.type;
        if (!structs.has(type)) structs.set(type, f.fields);
        collect(f.fields);
      }
    }
  };
  for (const s of schema.commonStructs ?? []) {
    structs.set(s.name, s.fields);
    collect(s.fields);
  }
  collect(schema.fields);
  return compileStruct(
    schema.fields,
    version,
    inRange(schema.flexibleVersions, version),
    structs,
    schema.name,
  );
}

export function isFlexible(schema: MessageSchema, version: number): boolean {
  return inRange(schema.flexibleVersions, version);
}

export function isValidVersion(schema: MessageSchema, version: number): boolean {
  return inRange(schema.validVersions, version);
}
