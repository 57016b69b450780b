// Everyone else: one Avatar per id in view, placed by snapshot interpolation. Each snapshot adds a
// sample (server time, x, z, yaw) per avatar; a frame draws each avatar at INTERP_DELAY_MS behind
// the newest server time, between the two samples around it (extrapolating at most a little when
// a packet is late). An avatar that leaves the view is removed.

import { Avatar } from './Avatar.js';
import { byteToYaw } from './protocol.js';

export const INTERP_DELAY_MS = 100;
const MAX_EXTRAPOLATE_MS = 150;
const KEEP_SAMPLES = 30;
// name tags: full up to TAG_FULL_M from the camera, gone by TAG_GONE_M, and only the nearest
// MAX_TAGS shown at once, so that a crowd of 150 reads as people, not as a wall of labels
const TAG_FULL_M = 9;
const TAG_GONE_M = 16;
const MAX_TAGS = 12;

function lerpAngle(a, b, t) {
  let d = (b - a) % (Math.PI * 2);
  if (d > Math.PI) d -= Math.PI * 2;
  if (d < -Math.PI) d += Math.PI * 2;
  return a + d * t;
}

export class RemoteCrowd {
  /**
   * @param {import('three').Object3D} layer where avatars are added
   * @param {import('./World.js').World} world
   */
  constructor(layer, world) {
    this.layer = layer;
    this.world = world;
    this.avatars = new Map(); // id -> {avatar, samples: [{t, floor, x, z, yaw}], shown}
    this.selfId = null;
  }

  /** Take a decoded snapshot state (Map id → record in cm/bytes) stamped with its server time. */
  push(serverTime, state, people) {
    for (const [id, r] of state) {
      if (id === this.selfId) continue;
      let entry = this.avatars.get(id);
      const who = people.get(id) ?? { name: `#${id}`, color: 0x8899aa };
      if (!entry) {
        const avatar = new Avatar(id, who.name, who.color);
        this.layer.add(avatar.group);
        entry = { avatar, samples: [], shown: null };
        this.avatars.set(id, entry);
      } else if (entry.avatar.name !== who.name) {
        entry.avatar.setName(who.name);
        entry.avatar.setColor(who.color);
      }
      const s = entry.samples;
      if (s.length && s[s.length - 1].t >= serverTime) continue;
      s.push({ t: serverTime, floor: r.floor, x: r.x / 100, z: r.z / 100, yaw: byteToYaw(r.yaw) });
      if (s.length > KEEP_SAMPLES) s.shift();
    }
    for (const [id, entry] of this.avatars) {
      if (!state.has(id) || id === this.selfId) {
        entry.avatar.dispose();
        this.avatars.delete(id);
      }
    }
  }

  /**
   * Place every avatar for the render time (server ms) and animate the walk; with the camera's
   * position, fade the name tags with distance and keep only the nearest few.
   */
  update(renderTime, dt, camera = null) {
    const shown = [];
    for (const entry of this.avatars.values()) {
      const p = this.sample(entry.samples, renderTime);
      if (!p) continue;
      entry.shown = p;
      const y = this.world.heightAt(p.floor, p.x, p.z);
      entry.avatar.place(p.x, y, p.z, p.yaw);
      entry.avatar.animate(dt);
      if (camera) shown.push({ entry, d: Math.hypot(p.x - camera.x, y + 1.6 - camera.y, p.z - camera.z) });
    }
    if (!camera) return;
    shown.sort((a, b) => a.d - b.d);
    const crowded = shown.filter((s) => s.d < TAG_GONE_M).length > MAX_TAGS;
    shown.forEach(({ entry, d }, i) => {
      const fade = Math.max(0, Math.min(1, (TAG_GONE_M - d) / (TAG_GONE_M - TAG_FULL_M)));
      entry.avatar.setTag(i < MAX_TAGS ? fade : 0, crowded ? 0.85 : 1);
    });
  }

  sample(s, t) {
    if (s.length === 0) return null;
    if (t <= s[0].t || s.length === 1) return s[0];
    for (let i = s.length - 1; i > 0; i--) {
      const a = s[i - 1];
      const b = s[i];
      if (t >= a.t && t <= b.t) {
        const k = (t - a.t) / (b.t - a.t || 1);
        if (a.floor !== b.floor) return k < 0.5 ? a : b;
        return { floor: b.floor, x: a.x + (b.x - a.x) * k, z: a.z + (b.z - a.z) * k, yaw: lerpAngle(a.yaw, b.yaw, k) };
      }
    }
    // newer than the newest sample: extrapolate a little along the last step
    const b = s[s.length - 1];
    const a = s[s.length - 2];
    const over = Math.min(t - b.t, MAX_EXTRAPOLATE_MS);
    const span = b.t - a.t || 1;
    if (a.floor !== b.floor || span > 500) return b;
    const k = over / span;
    return { floor: b.floor, x: b.x + (b.x - a.x) * k, z: b.z + (b.z - a.z) * k, yaw: b.yaw };
  }

  /** [{id, name, floor, x, z, yaw}] as drawn now. */
  positions() {
    const out = [];
    for (const [id, e] of this.avatars) {
      if (e.shown) out.push({ id, name: e.avatar.name, floor: e.shown.floor, x: e.shown.x, z: e.shown.z, yaw: e.shown.yaw });
    }
    return out;
  }

  /** The three.js objects of the avatars, for picking. */
  objects() {
    return [...this.avatars.values()].map((e) => e.avatar.group);
  }

  clear() {
    for (const e of this.avatars.values()) e.avatar.dispose();
    this.avatars.clear();
  }

  dispose() {
    this.clear();
  }
}
