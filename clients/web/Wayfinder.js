// Wayfinding on the client: the destinations of the hall (counters, kiosks, rooms, events) with the
// point a person stands at for each, a walkable grid per floor drawn from the world (outline,
// walls, solid decor, stair sides; the ramps themselves are reached only through their ends), and
// paths on it (A* with 8 neighbours, then shortened where the straight line is clear), across floors
// by the stairs. The avatar walks a path with ordinary inputs (App.js): the server stays the
// authority, the path is only a guide. Directions ("右手 5 m") are relative to the camera, which is
// what the person sees. No three.js here.

import { pointInPolygon } from './World.js';

const CELL = 0.5; // m
const CLEAR = 0.45; // m from a wall that the path keeps
const STAIR_OFF = 1.2; // m before a stair's foot / past its head where the path meets it

function distToSegment(px, pz, ax, az, bx, bz) {
  const vx = bx - ax, vz = bz - az;
  const len2 = vx * vx + vz * vz;
  let t = len2 > 0 ? ((px - ax) * vx + (pz - az) * vz) / len2 : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(px - (ax + t * vx), pz - (az + t * vz));
}

function centroid(poly) {
  let x = 0, z = 0;
  for (const [px, pz] of poly) { x += px; z += pz; }
  return [x / poly.length, z / poly.length];
}

/** A binary heap of [priority, value]. */
class Heap {
  constructor() { this.a = []; }
  get size() { return this.a.length; }
  push(p, v) {
    const a = this.a;
    a.push([p, v]);
    let i = a.length - 1;
    while (i > 0) {
      const j = (i - 1) >> 1;
      if (a[j][0] <= a[i][0]) break;
      [a[i], a[j]] = [a[j], a[i]];
      i = j;
    }
  }
  pop() {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && a[l][0] < a[m][0]) m = l;
        if (r < a.length && a[r][0] < a[m][0]) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top[1];
  }
}

/**
 * Where a thing is relative to someone facing `yaw` (the camera's): {key, angle, distance}, key one
 * of ahead, ahead-right, right, behind-right, behind, behind-left, left, ahead-left.
 */
export function bearing(me, yaw, x, z) {
  const dx = x - me.x, dz = z - me.z;
  const fwd = dx * Math.sin(yaw) + dz * Math.cos(yaw);
  const right = -dx * Math.cos(yaw) + dz * Math.sin(yaw);
  const angle = Math.atan2(right, fwd) * 180 / Math.PI;
  const a = Math.abs(angle);
  const side = angle >= 0 ? 'right' : 'left';
  const key = a <= 30 ? 'ahead' : a <= 65 ? `ahead-${side}` : a <= 115 ? side : a <= 150 ? `behind-${side}` : 'behind';
  return { key, angle, distance: Math.hypot(dx, dz) };
}

/** A distance as people say it: whole metres up to 10, then fives. */
export function roundMetres(d) {
  return d < 10 ? Math.max(1, Math.round(d)) : Math.round(d / 5) * 5;
}

export class Wayfinder {
  /** @param {import('./World.js').World} world */
  constructor(world) {
    this.world = world;
    this.grids = world.floors.map((f) => this.buildGrid(f));
    this.destinations = this.buildDestinations();
  }

  // ---- destinations ----

  /**
   * Everything one can be taken to: [{id, kind, group, label, floor, x, z, face?}], where (x, z) is
   * where a person stands (in front of a kiosk or a counter, inside a room) and face the yaw to
   * look at it. group: counter | kiosk | room | event.
   */
  buildDestinations() {
    const w = this.world;
    const out = [];
    const front = (o, d) => [o.x + Math.sin(o.yaw ?? 0) * d, o.z + Math.cos(o.yaw ?? 0) * d];
    const faceBack = (o) => (o.yaw ?? 0) + Math.PI;
    for (const c of w.counters) {
      const [x, z] = front(c, 1.4);
      out.push({ id: c.id, kind: 'counter', group: 'counter', label: c.label, floor: c.floor, x, z, face: faceBack(c), object: c });
    }
    for (const k of w.kiosks) {
      const [x, z] = front(k, k.kind === 'thumbnail' ? 1.4 : 1.0);
      out.push({ id: k.id, kind: k.kind ?? 'kiosk', group: 'kiosk', label: k.label, floor: k.floor, x, z, face: faceBack(k), object: k });
    }
    for (const d of w.decor) {
      // a labelled desk (総合案内, the information desk) is somewhere to go too
      if (!d.label || d.kind === 'sign') continue;
      const [x, z] = front(d, (d.size?.[1] ?? 1) / 2 + 0.9);
      out.push({ id: d.id, kind: 'desk', group: 'kiosk', label: d.label, floor: d.floor, x, z, face: faceBack(d), object: d });
    }
    for (const s of w.stages) {
      const zone = w.zones.find((z) => z.id === s.auditorium) ?? w.zones.find((z) => z.id === s.zone);
      const [x, z] = zone ? centroid(zone.polygon) : [s.screen.x, s.screen.z + 6];
      const face = s.screen ? Math.atan2(s.screen.x - x, s.screen.z - z) : undefined;
      out.push({ id: s.id, kind: 'stage', group: 'event', label: zone?.name ?? { ja: 'ステージ', en: 'Stage' }, floor: s.floor, x, z, face, object: s });
    }
    for (const t of w.tables) {
      const n = String(t.id).match(/(\d+)$/)?.[1] ?? '';
      out.push({
        id: t.id, kind: 'table', group: 'event', label: { ja: `テーブル${n}`, en: `Table ${n}` },
        floor: t.floor, x: t.x, z: t.z + t.radius + 0.8, face: Math.PI, object: t,
      });
    }
    const named = new Set(out.map((o) => o.id));
    for (const z of w.zones) {
      if (!z.name || named.has(z.id) || /^zone-table-/.test(z.id) || z.area > 1500) continue;
      if (w.stages.some((s) => s.zone === z.id || s.auditorium === z.id)) continue;
      const [x, zz] = centroid(z.polygon);
      out.push({ id: z.id, kind: 'room', group: 'room', label: z.name, floor: z.floor, x, z: zz, object: z });
    }
    return out;
  }

  destination(id) {
    return this.destinations.find((d) => d.id === id) ?? null;
  }

  // ---- the walkable grid ----

  buildGrid(f) {
    const xs = f.outline.map((p) => p[0]);
    const zs = f.outline.map((p) => p[1]);
    const x0 = Math.min(...xs), z0 = Math.min(...zs);
    const nx = Math.ceil((Math.max(...xs) - x0) / CELL), nz = Math.ceil((Math.max(...zs) - z0) / CELL);
    const free = new Uint8Array(nx * nz);
    for (let j = 0; j < nz; j++) {
      for (let i = 0; i < nx; i++) {
        free[j * nx + i] = pointInPolygon(x0 + (i + 0.5) * CELL, z0 + (j + 0.5) * CELL, f.outline) ? 1 : 0;
      }
    }
    const g = { floor: f.index, x0, z0, nx, nz, free };
    const block = (ax, az, bx, bz) => {
      const i0 = Math.max(0, Math.floor((Math.min(ax, bx) - CLEAR - x0) / CELL));
      const i1 = Math.min(nx - 1, Math.floor((Math.max(ax, bx) + CLEAR - x0) / CELL));
      const j0 = Math.max(0, Math.floor((Math.min(az, bz) - CLEAR - z0) / CELL));
      const j1 = Math.min(nz - 1, Math.floor((Math.max(az, bz) + CLEAR - z0) / CELL));
      for (let j = j0; j <= j1; j++) {
        for (let i = i0; i <= i1; i++) {
          if (distToSegment(x0 + (i + 0.5) * CELL, z0 + (j + 0.5) * CELL, ax, az, bx, bz) < CLEAR) free[j * nx + i] = 0;
        }
      }
    };
    for (const [ax, az, bx, bz] of this.world.blockers[f.index] ?? []) block(ax, az, bx, bz);
    // a ramp is a way between floors, not a corridor of either: only its ends are used
    for (const s of this.world.stairs) {
      if (s.lower !== f.index && s.upper !== f.index) continue;
      const [a, b, c, d] = s.corners;
      block(...a, ...b); block(...b, ...c); block(...c, ...d); block(...d, ...a);
      for (let j = 0; j < nz; j++) {
        for (let i = 0; i < nx; i++) {
          if (pointInPolygon(x0 + (i + 0.5) * CELL, z0 + (j + 0.5) * CELL, s.corners)) free[j * nx + i] = 0;
        }
      }
    }
    return g;
  }

  cellOf(g, x, z) {
    const i = Math.floor((x - g.x0) / CELL), j = Math.floor((z - g.z0) / CELL);
    return i >= 0 && j >= 0 && i < g.nx && j < g.nz ? j * g.nx + i : -1;
  }

  /** The free cell nearest a point (a kiosk's front may touch a wall's margin). */
  nearestFree(g, x, z) {
    const c = this.cellOf(g, x, z);
    if (c >= 0 && g.free[c]) return c;
    const ci = Math.floor((x - g.x0) / CELL), cj = Math.floor((z - g.z0) / CELL);
    for (let r = 1; r < 12; r++) {
      let best = -1, bestD = Infinity;
      for (let j = cj - r; j <= cj + r; j++) {
        for (let i = ci - r; i <= ci + r; i++) {
          if (i < 0 || j < 0 || i >= g.nx || j >= g.nz || !g.free[j * g.nx + i]) continue;
          const d = (i - ci) ** 2 + (j - cj) ** 2;
          if (d < bestD) { bestD = d; best = j * g.nx + i; }
        }
      }
      if (best >= 0) return best;
    }
    return -1;
  }

  centre(g, c) {
    return [g.x0 + ((c % g.nx) + 0.5) * CELL, g.z0 + (Math.floor(c / g.nx) + 0.5) * CELL];
  }

  /** Whether the straight line between two points of a grid stays on free cells. */
  clear(g, ax, az, bx, bz) {
    const n = Math.ceil(Math.hypot(bx - ax, bz - az) / (CELL / 3));
    for (let k = 0; k <= n; k++) {
      const t = n ? k / n : 0;
      const c = this.cellOf(g, ax + (bx - ax) * t, az + (bz - az) * t);
      if (c < 0 || !g.free[c]) return false;
    }
    return true;
  }

  /** Path on one floor: [[x, z], ...] from a to b (both snapped to free cells), or null. */
  floorPath(floor, ax, az, bx, bz) {
    const g = this.grids[floor];
    if (!g) return null;
    const start = this.nearestFree(g, ax, az), goal = this.nearestFree(g, bx, bz);
    if (start < 0 || goal < 0) return null;
    const { nx, nz, free } = g;
    const gScore = new Float32Array(nx * nz).fill(Infinity);
    const from = new Int32Array(nx * nz).fill(-1);
    const gi = goal % nx, gj = Math.floor(goal / nx);
    const h = (c) => Math.hypot((c % nx) - gi, Math.floor(c / nx) - gj);
    const heap = new Heap();
    gScore[start] = 0;
    heap.push(h(start), start);
    const steps = [[1, 0, 1], [-1, 0, 1], [0, 1, 1], [0, -1, 1], [1, 1, Math.SQRT2], [1, -1, Math.SQRT2], [-1, 1, Math.SQRT2], [-1, -1, Math.SQRT2]];
    let found = false;
    while (heap.size) {
      const c = heap.pop();
      if (c === goal) { found = true; break; }
      const ci = c % nx, cj = Math.floor(c / nx);
      for (const [di, dj, cost] of steps) {
        const i = ci + di, j = cj + dj;
        if (i < 0 || j < 0 || i >= nx || j >= nz) continue;
        const n = j * nx + i;
        if (!free[n]) continue;
        if (di && dj && (!free[cj * nx + i] || !free[j * nx + ci])) continue; // no corner cutting
        const s = gScore[c] + cost;
        if (s < gScore[n]) {
          gScore[n] = s;
          from[n] = c;
          heap.push(s + h(n), n);
        }
      }
    }
    if (!found) return null;
    const cells = [];
    for (let c = goal; c >= 0; c = from[c]) cells.push(c);
    cells.reverse();
    const pts = [[ax, az], ...cells.slice(1, -1).map((c) => this.centre(g, c)), [bx, bz]];
    // shorten: from each kept point, jump to the furthest point still in a clear line
    const out = [pts[0]];
    let k = 0;
    while (k < pts.length - 1) {
      let next = k + 1;
      for (let m = pts.length - 1; m > k + 1; m--) {
        if (this.clear(g, ...pts[k], ...pts[m])) { next = m; break; }
      }
      out.push(pts[next]);
      k = next;
    }
    return out;
  }

  static length(points) {
    let d = 0;
    for (let i = 1; i < points.length; i++) d += Math.hypot(points[i][0] - points[i - 1][0], points[i][1] - points[i - 1][1]);
    return d;
  }

  /**
   * A path from `me` ({floor, x, z}) to a destination: {points: [{floor, x, z}], length} or null.
   * Between floors it goes by the stair that makes the whole way shortest.
   */
  route(me, dest) {
    const tag = (floor, pts) => pts.map(([x, z]) => ({ floor, x, z }));
    if (me.floor === dest.floor) {
      const p = this.floorPath(me.floor, me.x, me.z, dest.x, dest.z);
      return p && { points: tag(me.floor, p), length: Wayfinder.length(p) };
    }
    let best = null;
    for (const s of this.world.stairs) {
      const up = s.lower === me.floor && s.upper === dest.floor;
      const down = s.upper === me.floor && s.lower === dest.floor;
      if (!up && !down) continue;
      const foot = [s.start[0] - s.ux * STAIR_OFF, s.start[1] - s.uz * STAIR_OFF];
      const head = [s.start[0] + s.ux * (s.len + STAIR_OFF), s.start[1] + s.uz * (s.len + STAIR_OFF)];
      const [a, b] = up ? [foot, head] : [head, foot];
      const first = this.floorPath(me.floor, me.x, me.z, ...a);
      const second = this.floorPath(dest.floor, ...b, dest.x, dest.z);
      if (!first || !second) continue;
      const length = Wayfinder.length(first) + s.len + 2 * STAIR_OFF + Wayfinder.length(second);
      if (!best || length < best.length) {
        // on the ramp: its foot and its head, so the walk goes straight up or down it
        const onRamp = up
          ? [{ floor: me.floor, x: s.start[0] + s.ux * 0.3, z: s.start[1] + s.uz * 0.3 }]
          : [{ floor: me.floor, x: s.start[0] + s.ux * (s.len - 0.3), z: s.start[1] + s.uz * (s.len - 0.3) }];
        best = { points: [...tag(me.floor, first), ...onRamp, ...tag(dest.floor, second)], length };
      }
    }
    return best;
  }
}
