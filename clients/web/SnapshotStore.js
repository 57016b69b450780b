// Snapshot delta decoding (docs/architecture.md, "Snapshots"): the states of recent ticks, each a
// Map id → {id, floor, yaw (byte), x (cm), z (cm)}, rebuilt from the delta against `base_tick`.
// Names and colours come in `info` when an avatar enters the view and are kept here.

import { readFull, readLeft, readMove, readTurn, readTurnMove } from './protocol.js';

const KEEP_TICKS = 128;

export class SnapshotStore {
  constructor() {
    this.states = new Map(); // tick -> Map(id -> record)
    this.people = new Map(); // id -> {name, color}
    this.latestTick = 0;
  }

  /**
   * Apply one SNAPSHOT message; returns the new state (Map) or null when its base is unknown
   * (too old: the server sends a full snapshot once our ACK moves on).
   */
  apply(msg) {
    let state;
    if (msg.base_tick === 0) {
      state = new Map();
    } else {
      const base = this.states.get(msg.base_tick);
      if (!base) return null;
      state = new Map();
      for (const [id, r] of base) state.set(id, { ...r });
    }
    for (const id of readLeft(msg.left)) state.delete(id);
    for (const r of readFull(msg.full)) state.set(r.id, r);
    for (const r of readMove(msg.move)) {
      const s = state.get(r.id);
      if (s) { s.x += r.dx; s.z += r.dz; }
    }
    for (const r of readTurnMove(msg.turn_move)) {
      const s = state.get(r.id);
      if (s) { s.x += r.dx; s.z += r.dz; s.yaw = r.yaw; }
    }
    for (const r of readTurn(msg.turn)) {
      const s = state.get(r.id);
      if (s) s.yaw = r.yaw;
    }
    for (const item of msg.info ?? []) {
      const [id, name, color] = item;
      this.people.set(id, { name, color });
    }
    this.states.set(msg.tick, state);
    if (msg.tick > this.latestTick) this.latestTick = msg.tick;
    for (const t of this.states.keys()) {
      if (t < this.latestTick - KEEP_TICKS) this.states.delete(t);
    }
    return state;
  }

  /** Forget everything (a new connection that is not a resume starts from a full snapshot). */
  reset() {
    this.states.clear();
    this.latestTick = 0;
  }

  dispose() {
    this.states.clear();
    this.people.clear();
  }
}
