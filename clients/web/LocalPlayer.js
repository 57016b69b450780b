// Your own avatar: predicted from your inputs at the server's tick rate, reconciled with the
// server's state and `last_seq`. Each client tick that moves (or changes the intent) sends one
// INPUT and keeps it; when a snapshot says the server has processed inputs up to `last_seq`, the
// server's position is taken and the inputs after it are replayed. What is left between the shown
// position and the replayed one is an error that fades out over ~0.1 s (no snap, no rubber band);
// only an error past SNAP_DISTANCE (a teleport, a wall the prediction missed) jumps.

import { byteToYaw } from './protocol.js';

const SNAP_DISTANCE = 2.5;
const ERROR_FADE_S = 0.1;
const ERROR_FADE_MOVING_S = 0.3;
const MAX_PENDING = 120;

export class LocalPlayer {
  /**
   * @param {import('./World.js').World} world
   * @param {number} tickRate server ticks per second (WELCOME.tick_rate)
   */
  constructor(world, tickRate = 20) {
    this.world = world;
    this.dt = 1 / tickRate;
    this.speed = world.speed;
    this.floor = 0;
    this.x = 0;
    this.z = 0;
    this.prevX = 0;
    this.prevZ = 0;
    this.yaw = 0;
    this.errX = 0;
    this.errZ = 0;
    this.seq = 0;
    this.pending = []; // {seq, mx, mz, yaw}
    this.known = false;
    this.intentX = 0;
    this.intentZ = 0;
    this.lastCorrection = 0;
    this.corrections = [];
  }

  /** Advance one tick with an intent in world axes; returns the input to send. */
  step(mx, mz, yaw) {
    this.prevX = this.x;
    this.prevZ = this.z;
    this.seq += 1;
    const input = { seq: this.seq, mx, mz, yaw };
    this.pending.push(input);
    if (this.pending.length > MAX_PENDING) this.pending.shift();
    this.apply(input);
    this.intentX = mx;
    this.intentZ = mz;
    return input;
  }

  apply(input) {
    this.yaw = input.yaw;
    if (input.mx === 0 && input.mz === 0) return;
    const d = this.speed * this.dt;
    const [nx, nz] = this.world.move(this.floor, this.x, this.z, this.x + input.mx * d, this.z + input.mz * d);
    this.x = nx;
    this.z = nz;
    this.floor = this.world.floorAfterMove(this.floor, nx, nz);
  }

  /**
   * Take the server's record of our avatar (from a snapshot) and the last input it processed.
   * The prediction is re-based on it and the inputs after `last_seq` are replayed; what moved is
   * moved into the fading error, so the avatar on screen does not jump.
   * @param {{floor: number, x: number, z: number, yaw: number}} rec x, z in cm, yaw as the wire byte
   */
  reconcile(rec, lastSeq) {
    const oldX = this.x;
    const oldZ = this.z;
    this.floor = rec.floor;
    this.x = rec.x / 100;
    this.z = rec.z / 100;
    this.pending = this.pending.filter((p) => p.seq > lastSeq);
    if (!this.known) {
      this.known = true;
      this.yaw = byteToYaw(rec.yaw);
      for (const p of this.pending) this.apply(p);
      this.prevX = this.x;
      this.prevZ = this.z;
      this.errX = 0;
      this.errZ = 0;
      return;
    }
    const yaw = this.yaw;
    for (const p of this.pending) this.apply(p);
    this.yaw = yaw;
    const dx = this.x - oldX;
    const dz = this.z - oldZ;
    // how far the server disagreed with the prediction: the size of a correction
    this.lastCorrection = Math.hypot(dx, dz);
    this.corrections.push(this.lastCorrection);
    if (this.corrections.length > 200) this.corrections.shift();
    this.prevX += dx;
    this.prevZ += dz;
    this.errX -= dx;
    this.errZ -= dz;
    if (Math.hypot(this.errX, this.errZ) > SNAP_DISTANCE) {
      this.errX = 0;
      this.errZ = 0;
    }
  }

  /**
   * A new connection: forget the pending inputs. `seq` keeps counting up, so a resumed avatar whose
   * server remembers our last seq never sees a new input as stale.
   */
  resetPending() {
    this.pending = [];
  }

  /** Fade the correction error; call every frame. Slower while walking: a gentle catch-up. */
  fade(dt) {
    const moving = this.intentX !== 0 || this.intentZ !== 0;
    const k = Math.exp(-dt / (moving ? ERROR_FADE_MOVING_S : ERROR_FADE_S));
    this.errX *= k;
    this.errZ *= k;
  }

  /**
   * Where to draw: the prediction between the last two ticks (alpha 0..1 of the tick in progress,
   * so a 60 Hz screen shows smooth motion from 20 Hz ticks) plus the fading error.
   */
  shown(alpha = 1) {
    const x = this.prevX + (this.x - this.prevX) * alpha + this.errX;
    const z = this.prevZ + (this.z - this.prevZ) * alpha + this.errZ;
    return { floor: this.floor, x, z, y: this.world.heightAt(this.floor, x, z), yaw: this.yaw };
  }

  dispose() {
    this.pending = [];
  }
}
