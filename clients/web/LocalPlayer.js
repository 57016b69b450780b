// Your own avatar: predicted from your inputs at the server's tick rate, reconciled with the
// server's state and `last_seq`. Each client tick that moves (or changes the intent) sends one
// INPUT and keeps it; when a snapshot says the server has processed inputs up to `last_seq`, the
// server's position is taken and the inputs after it are replayed. What is left between the shown
// position and the replayed one is an error that fades out over ~0.1 s (no snap, no rubber band);
// only an error past SNAP_DISTANCE (a teleport, a wall the prediction missed) jumps.

import { byteToYaw } from './protocol.js';

const SNAP_DISTANCE = 2.5;
const ERROR_FADE_S = 0.1;
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
    this.yaw = 0;
    this.errX = 0;
    this.errZ = 0;
    this.seq = 0;
    this.pending = []; // {seq, mx, mz, yaw}
    this.known = false;
    this.intentX = 0;
    this.intentZ = 0;
  }

  /** Advance one tick with an intent in world axes; returns the input to send. */
  step(mx, mz, yaw) {
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
   * @param {{floor: number, x: number, z: number, yaw: number}} rec x, z in cm, yaw as the wire byte
   */
  reconcile(rec, lastSeq) {
    const shownX = this.x + this.errX;
    const shownZ = this.z + this.errZ;
    this.floor = rec.floor;
    this.x = rec.x / 100;
    this.z = rec.z / 100;
    if (!this.known) {
      this.known = true;
      this.yaw = byteToYaw(rec.yaw);
      this.pending = this.pending.filter((p) => p.seq > lastSeq);
      this.errX = 0;
      this.errZ = 0;
      return;
    }
    this.pending = this.pending.filter((p) => p.seq > lastSeq);
    const yaw = this.yaw;
    for (const p of this.pending) this.apply(p);
    this.yaw = yaw;
    const ex = shownX - this.x;
    const ez = shownZ - this.z;
    if (Math.hypot(ex, ez) > SNAP_DISTANCE) {
      this.errX = 0;
      this.errZ = 0;
    } else {
      this.errX = ex;
      this.errZ = ez;
    }
  }

  /**
   * A new connection: forget the pending inputs. `seq` keeps counting up, so a resumed avatar whose
   * server remembers our last seq never sees a new input as stale.
   */
  resetPending() {
    this.pending = [];
  }

  /** Fade the correction error; call every frame. */
  fade(dt) {
    const k = Math.exp(-dt / ERROR_FADE_S);
    this.errX *= k;
    this.errZ *= k;
  }

  /** Where to draw: the predicted position plus the fading error. */
  shown() {
    const x = this.x + this.errX;
    const z = this.z + this.errZ;
    return { floor: this.floor, x, z, y: this.world.heightAt(this.floor, x, z), yaw: this.yaw };
  }

  dispose() {
    this.pending = [];
  }
}
