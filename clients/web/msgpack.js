// A compact MessagePack codec: the subset emachi's wire uses (nil, bool, int, float, str, bin,
// array, map), written here rather than vendored so the client loads one small file.
// Integers that fit are packed as integers, other numbers as float64; Uint8Array is bin, and bin
// decodes to a Uint8Array view of the frame (no copy). Extension types are refused.

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v) { this.ensure(1); this.view.setUint8(this.pos, v); this.pos += 1; }
  u16(v) { this.ensure(2); this.view.setUint16(this.pos, v); this.pos += 2; }
  u32(v) { this.ensure(4); this.view.setUint32(this.pos, v); this.pos += 4; }
  bytes(b) { this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; }

  value(v) {
    if (v === null || v === undefined) this.u8(0xc0);
    else if (v === false) this.u8(0xc2);
    else if (v === true) this.u8(0xc3);
    else if (typeof v === 'number') this.number(v);
    else if (typeof v === 'string') this.string(v);
    else if (v instanceof Uint8Array) this.bin(v);
    else if (v instanceof ArrayBuffer) this.bin(new Uint8Array(v));
    else if (Array.isArray(v)) {
      this.header(v.length, 0x90, 0xdc, 0xdd, 16);
      for (const item of v) this.value(item);
    } else if (v instanceof Map) {
      this.header(v.size, 0x80, 0xde, 0xdf, 16);
      for (const [k, item] of v) { this.value(k); this.value(item); }
    } else if (typeof v === 'object') {
      const keys = Object.keys(v).filter((k) => v[k] !== undefined);
      this.header(keys.length, 0x80, 0xde, 0xdf, 16);
      for (const k of keys) { this.string(k); this.value(v[k]); }
    } else {
      throw new TypeError(`msgpack: cannot encode ${typeof v}`);
    }
  }

  header(n, fix, c16, c32, fixMax) {
    if (n < fixMax) this.u8(fix | n);
    else if (n < 0x10000) { this.u8(c16); this.u16(n); }
    else { this.u8(c32); this.u32(n); }
  }

  number(v) {
    if (Number.isSafeInteger(v)) {
      if (v >= 0) {
        if (v < 0x80) this.u8(v);
        else if (v < 0x100) { this.u8(0xcc); this.u8(v); }
        else if (v < 0x10000) { this.u8(0xcd); this.u16(v); }
        else if (v < 0x100000000) { this.u8(0xce); this.u32(v); }
        else { this.u8(0xcf); this.ensure(8); this.view.setBigUint64(this.pos, BigInt(v)); this.pos += 8; }
      } else if (v >= -32) this.u8(v & 0xff);
      else if (v >= -0x80) { this.u8(0xd0); this.ensure(1); this.view.setInt8(this.pos, v); this.pos += 1; }
      else if (v >= -0x8000) { this.u8(0xd1); this.ensure(2); this.view.setInt16(this.pos, v); this.pos += 2; }
      else if (v >= -0x80000000) { this.u8(0xd2); this.ensure(4); this.view.setInt32(this.pos, v); this.pos += 4; }
      else { this.u8(0xd3); this.ensure(8); this.view.setBigInt64(this.pos, BigInt(v)); this.pos += 8; }
    } else {
      this.u8(0xcb);
      this.ensure(8);
      this.view.setFloat64(this.pos, v);
      this.pos += 8;
    }
  }

  string(s) {
    const b = textEncoder.encode(s);
    if (b.length < 32) this.u8(0xa0 | b.length);
    else if (b.length < 0x100) { this.u8(0xd9); this.u8(b.length); }
    else if (b.length < 0x10000) { this.u8(0xda); this.u16(b.length); }
    else { this.u8(0xdb); this.u32(b.length); }
    this.bytes(b);
  }

  bin(b) {
    if (b.length < 0x100) { this.u8(0xc4); this.u8(b.length); }
    else if (b.length < 0x10000) { this.u8(0xc5); this.u16(b.length); }
    else { this.u8(0xc6); this.u32(b.length); }
    this.bytes(b);
  }
}

/** Encode a value as MessagePack bytes. */
export function encode(value) {
  const w = new Writer();
  w.value(value);
  return w.buf.slice(0, w.pos);
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  need(n) {
    if (this.pos + n > this.bytes.length) throw new RangeError('msgpack: truncated');
  }

  u8() { this.need(1); return this.view.getUint8(this.pos++); }
  u16() { this.need(2); const v = this.view.getUint16(this.pos); this.pos += 2; return v; }
  u32() { this.need(4); const v = this.view.getUint32(this.pos); this.pos += 4; return v; }

  take(n) {
    this.need(n);
    const b = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  str(n) { return textDecoder.decode(this.take(n)); }

  array(n) {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.value();
    return out;
  }

  map(n) {
    const out = {};
    for (let i = 0; i < n; i++) {
      const k = this.value();
      out[k] = this.value();
    }
    return out;
  }

  value() {
    const t = this.u8();
    if (t < 0x80) return t;
    if (t < 0x90) return this.map(t & 0x0f);
    if (t < 0xa0) return this.array(t & 0x0f);
    if (t < 0xc0) return this.str(t & 0x1f);
    if (t >= 0xe0) return t - 0x100;
    let v;
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.take(this.u8());
      case 0xc5: return this.take(this.u16());
      case 0xc6: return this.take(this.u32());
      case 0xca: this.need(4); v = this.view.getFloat32(this.pos); this.pos += 4; return v;
      case 0xcb: this.need(8); v = this.view.getFloat64(this.pos); this.pos += 8; return v;
      case 0xcc: return this.u8();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: this.need(8); v = Number(this.view.getBigUint64(this.pos)); this.pos += 8; return v;
      case 0xd0: this.need(1); v = this.view.getInt8(this.pos); this.pos += 1; return v;
      case 0xd1: this.need(2); v = this.view.getInt16(this.pos); this.pos += 2; return v;
      case 0xd2: this.need(4); v = this.view.getInt32(this.pos); this.pos += 4; return v;
      case 0xd3: this.need(8); v = Number(this.view.getBigInt64(this.pos)); this.pos += 8; return v;
      case 0xd9: return this.str(this.u8());
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      case 0xdc: return this.array(this.u16());
      case 0xdd: return this.array(this.u32());
      case 0xde: return this.map(this.u16());
      case 0xdf: return this.map(this.u32());
      default: throw new TypeError(`msgpack: unsupported type byte 0x${t.toString(16)}`);
    }
  }
}

/** Decode one MessagePack value from bytes (Uint8Array or ArrayBuffer); trailing bytes are an error. */
export function decode(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const r = new Reader(bytes);
  const v = r.value();
  if (r.pos !== bytes.length) throw new RangeError('msgpack: trailing bytes');
  return v;
}
