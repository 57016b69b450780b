// The world as the client sees it: the JSON of GET /api/world (world.to_client(), format in
// docs/world-format.md), with floor references resolved to indices, heights on stairs, the walls
// each floor's movement is kept off, and what is near a point. No three.js here: HallView draws it.

const DEFAULT_WALL_HEIGHT = 3.0;
const DEFAULT_WALL_THICKNESS = 0.2;
const SKIN = 0.05;

function segIntersect(ax, az, bx, bz, cx, cz, dx, dz) {
  // does segment a→b cross segment c→d? returns t along a→b or -1
  const rx = bx - ax, rz = bz - az, sx = dx - cx, sz = dz - cz;
  const den = rx * sz - rz * sx;
  if (Math.abs(den) < 1e-12) return -1;
  const t = ((cx - ax) * sz - (cz - az) * sx) / den;
  const u = ((cx - ax) * rz - (cz - az) * rx) / den;
  return t >= 0 && t <= 1 && u >= 0 && u <= 1 ? t : -1;
}

function distToSegment(px, pz, ax, az, bx, bz) {
  const vx = bx - ax, vz = bz - az;
  const len2 = vx * vx + vz * vz;
  let t = len2 > 0 ? ((px - ax) * vx + (pz - az) * vz) / len2 : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(px - (ax + t * vx), pz - (az + t * vz));
}

export function pointInPolygon(x, z, poly) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, zi] = poly[i];
    const [xj, zj] = poly[j];
    if ((zi > z) !== (zj > z) && x < ((xj - xi) * (z - zi)) / (zj - zi) + xi) inside = !inside;
  }
  return inside;
}

function polygonArea(poly) {
  let a = 0;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) a += poly[j][0] * poly[i][1] - poly[i][0] * poly[j][1];
  return Math.abs(a) / 2;
}

export class World {
  /** @param {object} doc the JSON of /api/world */
  constructor(doc) {
    this.doc = doc;
    this.id = doc.id ?? doc.world_id ?? 'world';
    this.hash = doc.content_hash ?? doc.hash ?? '';
    this.name = doc.name ?? { ja: this.id, en: this.id };
    this.floors = (doc.floors ?? []).map((f, i) => ({ ...f, index: i, elevation: Number(f.elevation ?? 0) }));
    this.floorIndex = new Map(this.floors.map((f) => [f.id, f.index]));
    const list = (key) => (doc[key] ?? []).map((o) => ({ ...o, floor: this.floorOf(o.floor) }));
    this.walls = list('walls').map((w) => ({
      ...w, height: w.height ?? DEFAULT_WALL_HEIGHT, thickness: w.thickness ?? DEFAULT_WALL_THICKNESS,
    }));
    this.stairs = (doc.stairs ?? []).map((s) => this.makeStair(s));
    this.zones = list('zones').map((z) => ({ ...z, area: polygonArea(z.polygon) }));
    this.spawns = list('spawns');
    this.kiosks = list('kiosks');
    this.counters = list('counters');
    this.stages = list('stages');
    // a table is known by its number (the recruiting hall's tables are "テーブル3", not "テーブル")
    this.tables = list('tables').map((t) => {
      const n = String(t.id).match(/(\d+)$/)?.[1];
      return t.label || !n ? t : { ...t, label: { ja: `テーブル${n}`, en: `Table ${n}` } };
    });
    this.booths = list('booths');
    this.decor = list('decor');
    this.speed = Number(doc.movement?.max_speed ?? doc.max_speed ?? 3.0); // world/crowd.py Crowd.max_speed
    this.blockers = this.floors.map((f) => this.buildBlockers(f.index));
  }

  dispose() {
    this.blockers = [];
  }

  /** A floor reference (id or index) as an index. */
  floorOf(ref) {
    if (typeof ref === 'number') return ref;
    const i = this.floorIndex.get(ref);
    return i === undefined ? 0 : i;
  }

  makeStair(s) {
    const lower = this.floorOf(s.lower);
    const upper = this.floorOf(s.upper);
    const [sx, sz] = s.start;
    const [ex, ez] = s.end;
    const len = Math.hypot(ex - sx, ez - sz);
    const ux = (ex - sx) / len, uz = (ez - sz) / len;
    const hw = s.width / 2;
    const nx = -uz * hw, nz = ux * hw;
    const corners = [[sx + nx, sz + nz], [ex + nx, ez + nz], [ex - nx, ez - nz], [sx - nx, sz - nz]];
    return { ...s, lower, upper, len, ux, uz, corners };
  }

  /** t along a stair (0 bottom, 1 top) and whether (x, z) is on its ramp. */
  stairT(s, x, z) {
    const [sx, sz] = s.start;
    const along = (x - sx) * s.ux + (z - sz) * s.uz;
    const across = -(x - sx) * s.uz + (z - sz) * s.ux;
    const t = along / s.len;
    return { t, on: t >= 0 && t <= 1 && Math.abs(across) <= s.width / 2 };
  }

  /** y of a point: the floor's elevation, or the ramp's height on a stair of that (lower) floor. */
  heightAt(floor, x, z) {
    const f = this.floors[floor];
    const base = f ? f.elevation : 0;
    for (const s of this.stairs) {
      if (s.lower !== floor) continue;
      const { t, on } = this.stairT(s, x, z);
      if (on) return base + (this.floors[s.upper].elevation - base) * t;
    }
    return base;
  }

  /** Segments that stop movement on a floor: outline, walls, solid decor, stair sides. */
  buildBlockers(floor) {
    const segs = [];
    const addPoly = (pts, closed) => {
      for (let i = 0; i + 1 < pts.length; i++) segs.push([...pts[i], ...pts[i + 1]]);
      if (closed && pts.length > 2) segs.push([...pts[pts.length - 1], ...pts[0]]);
    };
    const f = this.floors[floor];
    if (f?.outline) addPoly(f.outline, true);
    for (const w of this.walls) if (w.floor === floor) addPoly(w.points, false);
    for (const d of this.decor) {
      if (d.floor !== floor || !d.solid) continue;
      addPoly(this.footprint(d), true);
    }
    for (const s of this.stairs) {
      const [a, b, c, d] = s.corners;
      if (s.lower === floor || s.upper === floor) { segs.push([...a, ...b]); segs.push([...c, ...d]); }
      if (s.upper === floor) segs.push([...d, ...a]);
    }
    return segs;
  }

  /** The rectangle of a decor item turned by its yaw, as four [x, z] corners. */
  footprint(d) {
    const [w, dep] = d.size ?? [1, 1, 1];
    const c = Math.cos(d.yaw ?? 0), s = Math.sin(d.yaw ?? 0);
    return [[-w / 2, -dep / 2], [w / 2, -dep / 2], [w / 2, dep / 2], [-w / 2, dep / 2]].map(
      ([lx, lz]) => [d.x + lx * c + lz * s, d.z - lx * s + lz * c],
    );
  }

  /**
   * Move a point from (x, z) towards (nx, nz) on a floor without crossing a blocker; a blocked
   * move slides along one axis. Prediction only: the server is the authority, this keeps the
   * local avatar from visibly walking through walls before the correction arrives.
   */
  move(floor, x, z, nx, nz) {
    const blocked = (bx, bz) => {
      for (const [ax, az, cx, cz] of this.blockers[floor] ?? []) {
        if (segIntersect(x, z, bx, bz, ax, az, cx, cz) >= 0) return true;
        if (distToSegment(bx, bz, ax, az, cx, cz) < SKIN && distToSegment(x, z, ax, az, cx, cz) >= SKIN) return true;
      }
      return false;
    };
    if (!blocked(nx, nz)) return [nx, nz];
    if (!blocked(nx, z)) return [nx, z];
    if (!blocked(x, nz)) return [x, nz];
    return [x, z];
  }

  /** The first crossing (0..1 along a→b) of a segment with a floor's blockers, or 1. */
  firstHit(floor, ax, az, bx, bz) {
    let best = 1;
    for (const [cx, cz, dx, dz] of this.blockers[floor] ?? []) {
      const t = segIntersect(ax, az, bx, bz, cx, cz, dx, dz);
      if (t >= 0 && t < best) best = t;
    }
    return best;
  }

  /** Floor transitions at stair ends: leaving the top of a ramp puts you on the upper floor. */
  floorAfterMove(floor, x, z) {
    for (const s of this.stairs) {
      if (s.lower === floor) {
        const { t } = this.stairT(s, x, z);
        const across = Math.abs(-(x - s.start[0]) * s.uz + (z - s.start[1]) * s.ux);
        if (t > 1 && across <= s.width / 2) return s.upper;
      } else if (s.upper === floor) {
        const { t, on } = this.stairT(s, x, z);
        if (on && t < 1) return s.lower;
      }
    }
    return floor;
  }

  /** The smallest zone containing a point, or null. */
  zoneAt(floor, x, z) {
    let best = null;
    for (const zone of this.zones) {
      if (zone.floor === floor && pointInPolygon(x, z, zone.polygon) && (!best || zone.area < best.area)) best = zone;
    }
    return best;
  }

  /** Things near a point on a floor, nearest first: kiosks, counters, tables, stages, booths. */
  near(floor, x, z, radius = 8) {
    const out = [];
    const add = (kind, o, ox, oz) => {
      const d = Math.hypot(ox - x, oz - z);
      if (d <= radius) out.push({ kind, id: o.id, label: o.label ?? o.name ?? null, object: o, distance: d });
    };
    for (const k of this.kiosks) if (k.floor === floor) add(k.kind ?? 'kiosk', k, k.x, k.z);
    for (const c of this.counters) if (c.floor === floor) add('counter', c, c.x, c.z);
    for (const t of this.tables) if (t.floor === floor) add('table', t, t.x, t.z);
    for (const s of this.stages) if (s.floor === floor && s.screen) add('stage', s, s.screen.x, s.screen.z);
    for (const s of this.stairs) if (s.lower === floor || s.upper === floor) add('stairs', s, s.start[0], s.start[1]);
    out.sort((a, b) => a.distance - b.distance);
    return out;
  }
}
