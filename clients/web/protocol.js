// The wire, client side: mirrors server/protocol/codes.py (tests/unit/test_protocol_mirror.py checks
// the two tables agree) and docs/architecture.md ("Wire format"). Every frame is one MessagePack
// array [type, ...fields]. decodeMessage() turns a frame into a named object and throws on an
// unknown type; the builders below make the client → server arrays.

import { decode, encode } from './msgpack.js';

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 64 * 1024;

export const MsgType = Object.freeze({
  // client -> server
  HELLO: 1,
  INPUT: 2,
  ACK: 3,
  CHAT: 4,
  PING: 5,
  KIOSK_OPEN: 6,
  KIOSK_CHOOSE: 7,
  HELPER_ASK: 8,
  QUESTION: 9,
  BRIEFING_JOIN: 10,
  VOICE: 11,
  HOST: 12,
  MODERATE: 13,
  COUNTER: 14,
  // server -> client
  WELCOME: 32,
  SNAPSHOT: 33,
  CHAT_MSG: 34,
  PONG: 35,
  ERROR: 36,
  NOTICE: 37,
  KIOSK_PANEL: 38,
  KIOSK_LINK: 39,
  HELPER_ANSWER: 40,
  BRIEFING: 41,
  QUESTIONS: 42,
  VOICE_FRAME: 43,
  AUDIO_SUBS: 44,
  VOICE_HEARD: 45,
  EVENT: 46,
  REDIRECT: 47,
  COUNTER_STATE: 48,
});

export const CloseCode = Object.freeze({
  UNSUPPORTED_VERSION: 4000,
  BAD_FRAME: 4001,
  FRAME_TOO_BIG: 4002,
  UNKNOWN_TYPE: 4003,
  FLOOD: 4004,
  WORLD_FULL: 4005,
  TOO_SLOW: 4006,
  HANDSHAKE: 4007,
  DRAINING: 4008,
  REPLACED: 4009,
  REMOVED: 4010,
  UNAUTHORIZED: 4011,
  TOO_MANY_CONNECTIONS: 4012,
  INVITE_INVALID: 4013,
  INVITE_EXPIRED: 4014,
  INVITE_REVOKED: 4015,
  INVITE_OTHER_EVENT: 4016,
  INVITE_USED: 4017,
  EVENT_FULL: 4018,
  EVENT_NOT_STARTED: 4019,
  EVENT_OVER: 4020,
  EVENT_LOCKED: 4021,
  BANNED: 4022,
  MOVED: 4023,
  SILENT: 4024,
});

/** Field names of each server → client message, in wire order. */
const SERVER_FIELDS = Object.freeze({
  [MsgType.WELCOME]: ['avatar_id', 'instance', 'world_id', 'world_hash', 'server_time', 'resume',
    'tick_rate', 'snapshot_rate'],
  [MsgType.SNAPSHOT]: ['tick', 'base_tick', 'last_seq', 'server_time', 'full', 'move', 'turn_move',
    'turn', 'left', 'info', 'crowd'],
  [MsgType.CHAT_MSG]: ['from_id', 'name', 'scope', 'text', 'server_time'],
  [MsgType.PONG]: ['client_time', 'server_time'],
  [MsgType.ERROR]: ['code', 'reason'],
  [MsgType.NOTICE]: ['kind', 'data'],
  [MsgType.KIOSK_PANEL]: ['kiosk_id', 'panel'],
  [MsgType.KIOSK_LINK]: ['kiosk_id', 'channel', 'url', 'qr_svg'],
  [MsgType.HELPER_ANSWER]: ['helper', 'answer'],
  [MsgType.BRIEFING]: ['state'],
  [MsgType.QUESTIONS]: ['briefing_id', 'questions'],
  [MsgType.VOICE_FRAME]: ['frames'], // [[from_id, seq, data], ...] for one listener, every 20 ms
  // add: [[id, gain]], remove: [id]; stage: the briefing narration's gain for this listener when
  // it changed, else null (a stage source each page plays from its asset: docs/voice.md)
  [MsgType.AUDIO_SUBS]: ['add', 'remove', 'stage'],
  [MsgType.VOICE_HEARD]: ['count', 'ids'], // to a speaker: how many hear them, and (some of) whom
  [MsgType.EVENT]: ['state'], // an event's agenda, timer, tables, roster (server/events/wire.py)
  // instead of WELCOME: this avatar's instance is served at `url` (a ws:// or wss:// address); say
  // hello there with opts.seat = `seat` (a signed seat reservation, valid for a few seconds)
  [MsgType.REDIRECT]: ['url', 'seat', 'instance'],
  // the service counters: statuses for everyone, one's own ticket and booth, the desk for staff
  // (docs/counters.md)
  [MsgType.COUNTER_STATE]: ['state'],
});

const TYPE_NAMES = Object.freeze(Object.fromEntries(Object.entries(MsgType).map(([k, v]) => [v, k])));

/** The name of a message type code ("SNAPSHOT"), or null. */
export function typeName(code) {
  return TYPE_NAMES[code] ?? null;
}

/**
 * Decode one binary frame into `{type, name, ...fields}`.
 * Throws on a frame that is not an array or whose type this client does not know.
 */
export function decodeMessage(data) {
  const arr = decode(data);
  if (!Array.isArray(arr) || arr.length === 0 || typeof arr[0] !== 'number') {
    throw new TypeError('protocol: a frame must be a MessagePack array [type, ...fields]');
  }
  const type = arr[0];
  let names;
  switch (type) {
    case MsgType.WELCOME:
    case MsgType.SNAPSHOT:
    case MsgType.CHAT_MSG:
    case MsgType.PONG:
    case MsgType.ERROR:
    case MsgType.NOTICE:
    case MsgType.KIOSK_PANEL:
    case MsgType.KIOSK_LINK:
    case MsgType.HELPER_ANSWER:
    case MsgType.BRIEFING:
    case MsgType.QUESTIONS:
    case MsgType.VOICE_FRAME:
    case MsgType.AUDIO_SUBS:
    case MsgType.VOICE_HEARD:
    case MsgType.EVENT:
    case MsgType.REDIRECT:
    case MsgType.COUNTER_STATE:
      names = SERVER_FIELDS[type];
      break;
    default:
      throw new TypeError(`protocol: unknown message type ${type}`);
  }
  const msg = { type, name: TYPE_NAMES[type], fields: arr.slice(1) };
  names.forEach((n, i) => { msg[n] = arr[i + 1]; });
  return msg;
}

/** Encode a client → server message array as a binary frame. */
export function encodeMessage(arr) {
  if (!Array.isArray(arr) || typeof arr[0] !== 'number' || !TYPE_NAMES[arr[0]]) {
    throw new TypeError('protocol: a message is [type, ...fields] with a known type');
  }
  const bytes = encode(arr);
  if (bytes.length > MAX_FRAME_BYTES) throw new RangeError('protocol: frame larger than 64 KiB');
  return bytes;
}

// ---- builders for client → server messages (docs/architecture.md) ----

export const hello = (name, resume, opts = {}) => [MsgType.HELLO, PROTOCOL_VERSION, name, resume ?? null, opts];
export const input = (seq, ackTick, mx, mz, yaw) => [MsgType.INPUT, seq, ackTick, mx, mz, yaw];
export const ack = (tick) => [MsgType.ACK, tick];
export const chat = (scope, text) => [MsgType.CHAT, scope, text];
export const ping = (clientTime) => [MsgType.PING, clientTime];
export const kioskOpen = (kioskId, lang) => [MsgType.KIOSK_OPEN, kioskId, lang];
export const kioskChoose = (kioskId, channel, device) => [MsgType.KIOSK_CHOOSE, kioskId, channel, device];
export const helperAsk = (helper, query) => [MsgType.HELPER_ASK, helper, query];
export const question = (briefingId, text) => [MsgType.QUESTION, briefingId, text];
export const briefingJoin = (briefingId) => [MsgType.BRIEFING_JOIN, briefingId];
/** One Opus packet (Uint8Array) of 20 ms; talking false: stopped; megaphone: staff only. */
/** An event action (host tools; raise_hand, lower_hand, leave for guests), args a map. */
export const hostAction = (action, args = {}) => [MsgType.HOST, action, args];
/** Block, unblock or report another avatar (reason: '' or a few words for the staff). */
export const moderate = (action, target, reason = '') => [MsgType.MODERATE, action, target, reason];
/** A service counter action (docs/counters.md): ticket, leave, accept, enter; staff duty, call, ... */
export const counterAction = (action, args = {}) => [MsgType.COUNTER, action, args];
export const voice = (seq, talking, megaphone, data) => [MsgType.VOICE, seq, talking, megaphone, data];

// ---- yaw and positions on the wire ----

const TAU = Math.PI * 2;
/** Yaw (radians) to the wire byte: round(yaw / 2π · 256) mod 256. */
export const yawToByte = (yaw) => ((Math.round((yaw / TAU) * 256) % 256) + 256) % 256;
/** The wire byte to yaw in radians, in [0, 2π). */
export const byteToYaw = (b) => (b / 256) * TAU;

// ---- snapshot sections (little-endian records, sorted by id) ----

function view(bin) {
  const b = bin instanceof Uint8Array ? bin : new Uint8Array(bin ?? 0);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function records(bin, size, read) {
  const dv = view(bin);
  if (dv.byteLength % size !== 0) {
    throw new RangeError(`protocol: snapshot section of ${dv.byteLength} bytes is not records of ${size}`);
  }
  const out = [];
  for (let o = 0; o < dv.byteLength; o += size) out.push(read(dv, o));
  return out;
}

/** `full`: id u16, floor u8, yaw u8, x i32 cm, z i32 cm. */
export const readFull = (bin) => records(bin, 12, (dv, o) => ({
  id: dv.getUint16(o, true), floor: dv.getUint8(o + 2), yaw: dv.getUint8(o + 3),
  x: dv.getInt32(o + 4, true), z: dv.getInt32(o + 8, true),
}));
/** `move`: id u16, dx i8, dz i8. */
export const readMove = (bin) => records(bin, 4, (dv, o) => ({
  id: dv.getUint16(o, true), dx: dv.getInt8(o + 2), dz: dv.getInt8(o + 3),
}));
/** `turn_move`: id u16, dx i8, dz i8, yaw u8. */
export const readTurnMove = (bin) => records(bin, 5, (dv, o) => ({
  id: dv.getUint16(o, true), dx: dv.getInt8(o + 2), dz: dv.getInt8(o + 3), yaw: dv.getUint8(o + 4),
}));
/** `turn`: id u16, yaw u8. */
export const readTurn = (bin) => records(bin, 3, (dv, o) => ({ id: dv.getUint16(o, true), yaw: dv.getUint8(o + 2) }));
/** `left`: id u16. */
export const readLeft = (bin) => records(bin, 2, (dv, o) => dv.getUint16(o, true));

/** The close reasons of codes.py (English; the UI shows its own Japanese-first text), by code. */
export const CLOSE_REASONS = Object.freeze({
  [CloseCode.UNSUPPORTED_VERSION]: 'protocol version not supported; reload the page',
  [CloseCode.BAD_FRAME]: 'frame is not a valid MessagePack message',
  [CloseCode.FRAME_TOO_BIG]: 'frame larger than 64 KiB',
  [CloseCode.UNKNOWN_TYPE]: 'unknown message type',
  [CloseCode.FLOOD]: 'too many messages; slow down',
  [CloseCode.WORLD_FULL]: 'every instance of this world is full; try again later',
  [CloseCode.TOO_SLOW]: 'connection fell too far behind (5 s, or 512 KiB not taken)',
  [CloseCode.HANDSHAKE]: 'expected hello as the first message',
  [CloseCode.DRAINING]: 'server restarting; reconnect with your resume token',
  [CloseCode.REPLACED]: 'this avatar was resumed on another connection',
  [CloseCode.REMOVED]: 'removed by the host',
  [CloseCode.UNAUTHORIZED]: 'token missing, invalid or expired',
  [CloseCode.TOO_MANY_CONNECTIONS]: 'too many connections from your network address; close another tab or try again later',
  [CloseCode.INVITE_INVALID]: 'this invitation link is not valid; ask the organiser for a new one',
  [CloseCode.INVITE_EXPIRED]: 'this invitation has expired; ask the organiser for a new one',
  [CloseCode.INVITE_REVOKED]: 'this invitation was withdrawn by the organiser',
  [CloseCode.INVITE_OTHER_EVENT]: 'this invitation is for another event',
  [CloseCode.INVITE_USED]: 'this invitation was for one person and has been used already',
  [CloseCode.EVENT_FULL]: 'the event is full',
  [CloseCode.EVENT_NOT_STARTED]: 'the event has not started yet; come back a little before it begins',
  [CloseCode.EVENT_OVER]: 'the event is over or was cancelled',
  [CloseCode.EVENT_LOCKED]: 'the host has closed the doors of this event',
  [CloseCode.BANNED]: 'you may not enter for a while (a moderator decided so)',
  [CloseCode.MOVED]: 'this part of the hall is now served by another process; reconnect with your resume token',
  [CloseCode.SILENT]: 'nothing heard from your connection for 30 s (not even a pong); reconnect',
});
