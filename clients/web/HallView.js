// The 3D view: a three.js scene built from the world (floors, walls, stairs, zones lightly tinted,
// kiosks, link thumbnails, counters, stage and screen, tables, booths, decor), a third-person
// camera following the local avatar, and picking (which object or person is under a tap/click).
// Nothing here is specific to Machida: a new world draws without client code.

import * as THREE from 'three';
import { mergeGeometries } from 'three/addons/utils/BufferGeometryUtils.js';
import { pointInPolygon } from './World.js';

const ZONE_TINT = {
  open: 0x9ec5e8,
  isolated: 0xf2c57c,
  stage: 0xe58c8a,
  auditorium: 0xc5a3e0,
  quiet: 0x9fd8b0,
};
const FLOOR_COLORS = [0xe9e4d8, 0xdfe7ea, 0xe8dfe8, 0xe0e8dc];
const LABEL_FONT = '"Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", sans-serif';

function shapeFromPoints(points) {
  // points are [x, z]; a shape in the (x, -z) plane rotated onto the floor gives +z south
  const shape = new THREE.Shape();
  points.forEach(([x, z], i) => (i === 0 ? shape.moveTo(x, -z) : shape.lineTo(x, -z)));
  shape.closePath();
  return shape;
}

function flatGeometry(points, y, holes = []) {
  const shape = shapeFromPoints(points);
  for (const hole of holes) {
    const path = new THREE.Path();
    hole.forEach(([x, z], i) => (i === 0 ? path.moveTo(x, -z) : path.lineTo(x, -z)));
    path.closePath();
    shape.holes.push(path);
  }
  const g = new THREE.ShapeGeometry(shape);
  g.rotateX(-Math.PI / 2);
  g.translate(0, y, 0);
  return g;
}

/** A canvas texture with text (one or two lines) for labels on kiosks, counters, screens. */
export function textTexture(lines, { width = 512, height = 256, bg = '#ffffff', fg = '#1d2a38', size = 56 } = {}) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = fg;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  const list = lines.filter(Boolean);
  list.forEach((line, i) => {
    const s = i === 0 ? size : Math.round(size * 0.6);
    ctx.font = `${i === 0 ? 700 : 500} ${s}px ${LABEL_FONT}`;
    const y = height / 2 + (i - (list.length - 1) / 2) * size * 1.05;
    ctx.fillText(line, width / 2, y, width - 24);
  });
  const tex = new THREE.CanvasTexture(canvas);
  tex.colorSpace = THREE.SRGBColorSpace;
  tex.anisotropy = 4;
  return tex;
}

/**
 * A sign that always faces the viewer: a high-contrast rounded board with one or two lines, `height`
 * metres tall and as wide as its text (at most `maxWidth`). Sized for reading at 3–10 m.
 */
export function signSprite(lines, { height = 0.45, maxWidth = 3.6, bg = '#12324f', fg = '#ffffff', sub = '#cfe3f5' } = {}) {
  const list = lines.filter(Boolean);
  const px = 96; // first line's font size on the canvas
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d');
  const fonts = list.map((_, i) => `${i === 0 ? 700 : 500} ${i === 0 ? px : Math.round(px * 0.55)}px ${LABEL_FONT}`);
  let textW = 0;
  list.forEach((line, i) => { ctx.font = fonts[i]; textW = Math.max(textW, ctx.measureText(line).width); });
  const h = Math.round(px * 1.35 + (list.length - 1) * px * 0.7);
  const maxPx = Math.round((maxWidth / height) * h);
  const w = Math.min(maxPx, Math.ceil(textW) + 64);
  canvas.width = w;
  canvas.height = h;
  ctx.fillStyle = bg;
  ctx.beginPath();
  ctx.roundRect(0, 0, w, h, 22);
  ctx.fill();
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  list.forEach((line, i) => {
    ctx.font = fonts[i];
    ctx.fillStyle = i === 0 ? fg : sub;
    const y = i === 0 ? (list.length > 1 ? px * 0.72 : h / 2) : px * 1.35 + (i - 0.5) * px * 0.7;
    ctx.fillText(line, w / 2, y, w - 40);
  });
  const tex = new THREE.CanvasTexture(canvas);
  tex.colorSpace = THREE.SRGBColorSpace;
  tex.anisotropy = 4;
  const mat = new THREE.SpriteMaterial({ map: tex, transparent: true, depthWrite: false });
  const sprite = new THREE.Sprite(mat);
  sprite.scale.set(height * (w / h), height, 1);
  sprite.userData.dispose = () => { tex.dispose(); mat.dispose(); };
  return sprite;
}

export class HallView {
  /**
   * @param {HTMLElement} container where the canvas goes
   * @param {import('./World.js').World} world
   * @param {{lang: () => string}} opts
   */
  constructor(container, world, opts = {}) {
    this.container = container;
    this.world = world;
    this.lang = opts.lang ?? (() => 'ja');
    this.disposables = [];
    this.pickables = [];
    // antialiasing is paid per pixel: a high-density phone screen is sharp enough without it
    const dpr = window.devicePixelRatio || 1;
    this.renderer = new THREE.WebGLRenderer({ antialias: dpr < 2 });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    this.renderer.domElement.className = 'hall-canvas';
    this.renderer.domElement.setAttribute('aria-hidden', 'true');
    container.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0xcfe3f2);
    this.scene.fog = new THREE.Fog(0xcfe3f2, 40, 110);
    this.camera = new THREE.PerspectiveCamera(60, 1, 0.1, 200);
    this.camera.position.set(30, 8, 60);
    this.cameraYaw = Math.PI;
    this.cameraPitch = 0.32;
    this.cameraDistance = 7.5;
    this.raycaster = new THREE.Raycaster();
    this.avatarLayer = new THREE.Group();
    this.scene.add(this.avatarLayer);
    /** The hall itself (rebuilt by relabel() when the language changes). */
    this.root = new THREE.Group();
    this.scene.add(this.root);
    this.screenTextures = new Map();
    this.addLights();
    this.build();
    this.resize = this.resize.bind(this);
    window.addEventListener('resize', this.resize);
    this.resize();
  }

  text(t) {
    if (t == null) return '';
    if (typeof t === 'string') return t;
    return t[this.lang()] ?? t.ja ?? t.en ?? '';
  }

  track(...things) {
    this.disposables.push(...things);
    return things[0];
  }

  addLights() {
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0xb8a98c, 1.6));
    const sun = new THREE.DirectionalLight(0xffffff, 1.6);
    sun.position.set(30, 60, 20);
    this.scene.add(sun);
  }

  build() {
    const w = this.world;
    for (const f of w.floors) this.buildFloor(f);
    this.buildWalls();
    for (const s of w.stairs) this.buildStair(s);
    for (const z of w.zones) this.buildZone(z);
    for (const k of w.kiosks) this.buildKiosk(k);
    for (const c of w.counters) this.buildCounter(c);
    for (const s of w.stages) this.buildStage(s);
    for (const t of w.tables) this.buildTable(t);
    for (const d of w.decor) this.buildDecor(d);
    this.buildSigns();
  }

  /** A sprite sign in the hall (disposed with the hall). */
  sign(lines, x, y, z, opts) {
    const s = signSprite(lines, opts);
    s.position.set(x, y, z);
    this.disposables.push({ dispose: s.userData.dispose });
    this.root.add(s);
    return s;
  }

  /**
   * Wayfinding signs: the hall's name over the counters, room and zone names hanging where one can
   * read them from across the room, and each stair's way up or down.
   */
  buildSigns() {
    const w = this.world;
    const other = (lang) => (lang === 'ja' ? 'en' : 'ja');
    const two = (t) => [this.text(t), typeof t === 'object' ? t[other(this.lang())] : ''];
    // the name of the hall, large, on the wall the entrance faces
    const f0 = w.floors[0];
    if (f0 && w.spawns[0]) {
      const sp = w.spawns[0];
      const ahead = [Math.sin(sp.yaw ?? 0), Math.cos(sp.yaw ?? 0)];
      // where the entrance's line of sight meets the floor's outline (walls and pillars aside)
      let t = 1;
      const o = f0.outline;
      for (let i = 0; i < o.length; i++) {
        const [cx, cz] = o[i], [dx, dz] = o[(i + 1) % o.length];
        const rx = ahead[0] * 200, rz = ahead[1] * 200, qx = dx - cx, qz = dz - cz;
        const den = rx * qz - rz * qx;
        if (Math.abs(den) < 1e-9) continue;
        const a = ((cx - sp.x) * qz - (cz - sp.z) * qx) / den, b = ((cx - sp.x) * rz - (cz - sp.z) * rx) / den;
        if (a > 1e-6 && a < t && b >= 0 && b <= 1) t = a;
      }
      const wx = sp.x + ahead[0] * 200 * t - ahead[0] * 0.6, wz = sp.z + ahead[1] * 200 * t - ahead[1] * 0.6;
      const ceiling = Math.min(...w.floors.map((f) => f.elevation).filter((e) => e > f0.elevation), f0.elevation + 6);
      this.sign(two(w.name), wx, Math.min(ceiling - 0.9, f0.elevation + 4.2), wz, { height: 1.3, maxWidth: 12, bg: '#1f5d8c' });
    }
    for (const z of w.zones) {
      if (!z.name || z.area > 1500) continue;
      let cx = 0, cz = 0;
      for (const [x, zz] of z.polygon) { cx += x; cz += zz; }
      cx /= z.polygon.length;
      cz /= z.polygon.length;
      this.sign(two(z.name), cx, this.elevation(z.floor) + 3.0, cz, { height: 0.55, maxWidth: 5, bg: '#2b3d4f' });
    }
    for (const s of w.stairs) {
      const up = w.floors[s.upper], down = w.floors[s.lower];
      const foot = [s.start[0] - s.ux * 1.0, s.start[1] - s.uz * 1.0];
      const head = [s.start[0] + s.ux * (s.len + 1.0), s.start[1] + s.uz * (s.len + 1.0)];
      this.sign([`↑ ${this.text(up?.name)}`], foot[0], this.elevation(s.lower) + 2.6, foot[1], { height: 0.42, maxWidth: 4, bg: '#3d5a40' });
      this.sign([`↓ ${this.text(down?.name)}`], head[0], this.elevation(s.upper) + 2.6, head[1], { height: 0.42, maxWidth: 4, bg: '#3d5a40' });
    }
  }

  elevation(floor) {
    return this.world.floors[floor]?.elevation ?? 0;
  }

  /** Floor tiles (2 m), drawn once on a small canvas: they give the eye distance and motion. */
  tileTexture() {
    if (!this.tiles) {
      const c = document.createElement('canvas');
      c.width = c.height = 64;
      const ctx = c.getContext('2d');
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, 64, 64);
      ctx.fillStyle = '#e2ddd3';
      ctx.fillRect(0, 0, 64, 2);
      ctx.fillRect(0, 0, 2, 64);
      this.tiles = this.track(new THREE.CanvasTexture(c));
      this.tiles.wrapS = this.tiles.wrapT = THREE.RepeatWrapping;
      this.tiles.repeat.set(0.5, 0.5);
      this.tiles.colorSpace = THREE.SRGBColorSpace;
      this.tiles.anisotropy = 8;
    }
    return this.tiles;
  }

  /** Stairwells: the ramps that rise to this floor, cut out of it (when wholly inside it). */
  stairwells(f) {
    return this.world.stairs
      .filter((s) => s.upper === f.index && s.corners.every(([x, z]) => pointInPolygon(x, z, f.outline)))
      .map((s) => s.corners);
  }

  buildFloor(f) {
    const holes = this.stairwells(f);
    const g = this.track(flatGeometry(f.outline, f.elevation, holes));
    const m = this.track(new THREE.MeshLambertMaterial({ color: FLOOR_COLORS[f.index % FLOOR_COLORS.length], map: this.tileTexture() }));
    const mesh = new THREE.Mesh(g, m);
    mesh.name = `floor-${f.id}`;
    mesh.userData = { floor: f.index };
    this.root.add(mesh);
    // a thin slab edge so upper floors read as floors from below
    if (f.elevation > 0) {
      const under = this.track(flatGeometry(f.outline, f.elevation - 0.25, holes));
      const um = this.track(new THREE.MeshBasicMaterial({ color: 0xe4e0d8, side: THREE.BackSide }));
      this.root.add(new THREE.Mesh(under, um));
    }
  }

  buildWalls() {
    const byKind = new Map();
    const push = (key, g) => {
      if (!byKind.has(key)) byKind.set(key, []);
      byKind.get(key).push(g);
    };
    const segment = (floor, [ax, az], [bx, bz], height, thickness, key) => {
      const len = Math.hypot(bx - ax, bz - az);
      if (len < 1e-6) return;
      const g = new THREE.BoxGeometry(len + thickness, height, thickness);
      g.rotateY(-Math.atan2(bz - az, bx - ax));
      g.translate((ax + bx) / 2, this.elevation(floor) + height / 2, (az + bz) / 2);
      push(key, g);
    };
    for (const wall of this.world.walls) {
      const key = wall.height < 2 ? 'low' : 'wall';
      for (let i = 0; i + 1 < wall.points.length; i++) {
        segment(wall.floor, wall.points[i], wall.points[i + 1], wall.height, wall.thickness, key);
      }
    }
    // outer walls of each floor, lower than the storey so the camera sees over them from inside
    for (const f of this.world.floors) {
      const pts = f.outline;
      for (let i = 0; i < pts.length; i++) {
        segment(f.index, pts[i], pts[(i + 1) % pts.length], 3.0, 0.3, 'outer');
      }
    }
    const colors = { wall: 0xf4f1ea, low: 0xd9cdb8, outer: 0xc9d3dc };
    for (const [key, list] of byKind) {
      const g = this.track(mergeGeometries(list));
      list.forEach((x) => x.dispose());
      const m = this.track(new THREE.MeshLambertMaterial({ color: colors[key] }));
      const mesh = new THREE.Mesh(g, m);
      mesh.name = `walls-${key}`;
      this.root.add(mesh);
    }
  }

  buildStair(s) {
    const lowY = this.elevation(s.lower);
    const highY = this.elevation(s.upper);
    const steps = Math.max(4, Math.round((highY - lowY) / 0.2));
    const run = s.len / steps;
    const rise = (highY - lowY) / steps;
    const list = [];
    for (let i = 0; i < steps; i++) {
      const g = new THREE.BoxGeometry(s.width, rise * (i + 1), run);
      const t = (i + 0.5) / steps;
      g.translate(0, lowY + (rise * (i + 1)) / 2, 0);
      g.rotateY(Math.atan2(s.ux, s.uz));
      const cx = s.start[0] + s.ux * s.len * t;
      const cz = s.start[1] + s.uz * s.len * t;
      g.translate(cx, 0, cz);
      list.push(g);
    }
    const g = this.track(mergeGeometries(list));
    list.forEach((x) => x.dispose());
    const m = this.track(new THREE.MeshLambertMaterial({ color: 0xb9a78c }));
    const mesh = new THREE.Mesh(g, m);
    mesh.name = `stairs-${s.id}`;
    mesh.userData = { pick: { kind: 'stairs', id: s.id } };
    this.root.add(mesh);
    // the ramp drawn a little below the step noses keeps the walkable surface readable
  }

  buildZone(z) {
    const y = this.elevation(z.floor) + 0.01 + (z.area < 100 ? 0.004 : 0);
    const g = this.track(flatGeometry(z.polygon, y));
    const m = this.track(new THREE.MeshBasicMaterial({
      color: ZONE_TINT[z.audio] ?? 0xcccccc, transparent: true, opacity: z.audio === 'open' ? 0.12 : 0.28,
      depthWrite: false,
    }));
    const mesh = new THREE.Mesh(g, m);
    mesh.name = `zone-${z.id}`;
    mesh.renderOrder = 1;
    this.root.add(mesh);
    if (z.name && z.area < 1500) this.floorLabel(z, y);
  }

  floorLabel(z, y) {
    let cx = 0, cz = 0;
    for (const [x, zz] of z.polygon) { cx += x; cz += zz; }
    cx /= z.polygon.length;
    cz /= z.polygon.length;
    const tex = this.track(textTexture([this.text(z.name)], { width: 512, height: 96, bg: 'rgba(0,0,0,0)', fg: '#3b4a5a', size: 52 }));
    const m = this.track(new THREE.MeshBasicMaterial({ map: tex, transparent: true, depthWrite: false, opacity: 0.75 }));
    const g = this.track(new THREE.PlaneGeometry(4, 0.75));
    const mesh = new THREE.Mesh(g, m);
    mesh.rotation.x = -Math.PI / 2;
    mesh.position.set(cx, y + 0.005, cz);
    mesh.renderOrder = 2;
    this.root.add(mesh);
  }

  /** A group standing on a floor at (x, z), turned so its local +z faces `yaw`. */
  placed(floor, x, z, yaw = 0) {
    const g = new THREE.Group();
    g.position.set(x, this.world.heightAt(floor, x, z), z);
    g.rotation.y = yaw;
    this.root.add(g);
    return g;
  }

  buildKiosk(k) {
    const label = this.text(k.label);
    const pick = { kind: k.kind ?? 'kiosk', id: k.id, label: k.label, procedure: k.procedure };
    const group = this.placed(k.floor, k.x, k.z, k.yaw ?? 0);
    group.name = k.id;
    if (k.kind === 'thumbnail') {
      // a link picture on the wall behind (opposite the yaw), at 1.6 m
      const tex = this.track(textTexture([label, 'オンラインで / online'], { bg: '#ffffff', fg: '#0b5cad', size: 60 }));
      const m = this.track(new THREE.MeshLambertMaterial({ map: tex }));
      const g = this.track(new THREE.PlaneGeometry(1.8, 0.9));
      const plane = new THREE.Mesh(g, m);
      plane.position.set(0, 1.6, -0.3);
      const frameG = this.track(new THREE.BoxGeometry(1.95, 1.05, 0.05));
      const frameM = this.track(new THREE.MeshLambertMaterial({ color: 0x0b5cad }));
      const frame = new THREE.Mesh(frameG, frameM);
      frame.position.set(0, 1.6, -0.33);
      group.add(frame, plane);
      for (const o of [plane, frame]) { o.userData = { pick }; this.pickables.push(o); }
      return;
    }
    const helper = k.kind === 'helper';
    const baseG = this.track(new THREE.BoxGeometry(0.7, 1.1, 0.45));
    const baseM = this.track(new THREE.MeshLambertMaterial({ color: helper ? 0xf0a640 : 0x2f7fc1 }));
    const base = new THREE.Mesh(baseG, baseM);
    base.position.y = 0.55;
    const tex = this.track(textTexture([label, helper ? 'おてつだい / helper' : 'てつづき / procedure'], {
      bg: helper ? '#fff3dc' : '#eaf4ff', fg: '#17324d', size: 54,
    }));
    const screenG = this.track(new THREE.PlaneGeometry(0.9, 0.45));
    const screenM = this.track(new THREE.MeshBasicMaterial({ map: tex }));
    const screen = new THREE.Mesh(screenG, screenM);
    screen.position.set(0, 1.45, 0.05);
    screen.rotation.x = -0.2;
    const backG = this.track(new THREE.BoxGeometry(0.96, 0.5, 0.06));
    const back = new THREE.Mesh(backG, baseM);
    back.position.set(0, 1.45, 0.01);
    back.rotation.x = -0.2;
    group.add(base, back, screen);
    for (const o of [base, back, screen]) { o.userData = { pick }; this.pickables.push(o); }
    // the title, readable from across the lobby, above the screen
    const title = this.sign([label], k.x, this.world.heightAt(k.floor, k.x, k.z) + 2.2, k.z, {
      height: 0.36, maxWidth: 3.7, bg: helper ? '#8a4b00' : '#0b4f8a',
    });
    title.userData.pick = pick;
    this.pickables.push(title);
  }

  buildCounter(c) {
    const width = c.width ?? 3;
    const group = this.placed(c.floor, c.x, c.z, c.yaw ?? 0);
    group.name = c.id;
    const g = this.track(new THREE.BoxGeometry(width, 1.0, 0.7));
    const m = this.track(new THREE.MeshLambertMaterial({ color: 0xa67c52 }));
    const desk = new THREE.Mesh(g, m);
    desk.position.y = 0.5;
    // the counter's name, big: 0.9 m letters-board, readable from 10 m
    const signW = Math.min(width, 5);
    const tex = this.track(textTexture([this.text(c.label), c.section && this.lang() !== 'ja' ? c.section : ''], {
      width: Math.round(1024 * (signW / 5)) + 256, height: 200, bg: '#12324f', fg: '#ffffff', size: 120,
    }));
    const signG = this.track(new THREE.PlaneGeometry(signW, 0.9));
    const signM = this.track(new THREE.MeshBasicMaterial({ map: tex, side: THREE.DoubleSide }));
    const sign = new THREE.Mesh(signG, signM);
    sign.position.set(0, 2.7, -0.2);
    group.add(desk, sign);
    const pick = { kind: 'counter', id: c.id, label: c.label, section: c.section };
    for (const o of [desk, sign]) { o.userData = { pick }; this.pickables.push(o); }
  }

  buildStage(s) {
    const sc = s.screen;
    if (sc) {
      const group = this.placed(s.floor, sc.x, sc.z, sc.yaw ?? 0);
      group.name = s.id;
      this.screenTexture = this.track(textTexture(['スクリーン', 'screen'], { width: 1024, height: 576, bg: '#1d2733', fg: '#dfe8f2', size: 90 }));
      this.screenMaterial = this.track(new THREE.MeshBasicMaterial({ map: this.screenTexture }));
      const g = this.track(new THREE.PlaneGeometry(sc.width, sc.height));
      const screen = new THREE.Mesh(g, this.screenMaterial);
      screen.position.y = sc.y;
      screen.name = `screen-${s.id}`;
      const frameG = this.track(new THREE.BoxGeometry(sc.width + 0.2, sc.height + 0.2, 0.08));
      const frameM = this.track(new THREE.MeshLambertMaterial({ color: 0x333a44 }));
      const frame = new THREE.Mesh(frameG, frameM);
      frame.position.set(0, sc.y, -0.06);
      group.add(frame, screen);
      const pick = { kind: 'screen', id: s.id };
      screen.userData = { pick };
      this.pickables.push(screen);
      this.screens ??= new Map();
      this.screens.set(s.id, screen);
    }
    for (const sp of s.speakers ?? []) {
      const g = this.track(new THREE.CircleGeometry(0.45, 24));
      const m = this.track(new THREE.MeshBasicMaterial({ color: 0xd05555, transparent: true, opacity: 0.35, depthWrite: false }));
      const mark = new THREE.Mesh(g, m);
      mark.rotation.x = -Math.PI / 2;
      mark.position.set(sp.x, this.elevation(s.floor) + 0.02, sp.z);
      this.root.add(mark);
    }
  }

  buildTable(t) {
    const group = this.placed(t.floor, t.x, t.z);
    group.name = t.id;
    const topG = this.track(new THREE.CylinderGeometry(t.radius, t.radius, 0.06, 32));
    const legG = this.track(new THREE.CylinderGeometry(0.08, 0.12, 0.72, 12));
    const m = this.track(new THREE.MeshLambertMaterial({ color: 0xf2efe6 }));
    const legM = this.track(new THREE.MeshLambertMaterial({ color: 0x777777 }));
    const top = new THREE.Mesh(topG, m);
    top.position.y = 0.75;
    const leg = new THREE.Mesh(legG, legM);
    leg.position.y = 0.36;
    group.add(top, leg);
    const pick = { kind: 'table', id: t.id, seats: t.seats };
    for (const o of [top, leg]) { o.userData = { pick }; this.pickables.push(o); }
  }

  buildDecor(d) {
    const [w, dep, h] = d.size ?? [1, 1, 1];
    const group = this.placed(d.floor, d.x, d.z, d.yaw ?? 0);
    group.name = d.id;
    let mesh;
    const mat = (c) => this.track(new THREE.MeshLambertMaterial({ color: c }));
    switch (d.kind) {
      case 'pillar':
        mesh = new THREE.Mesh(this.track(new THREE.CylinderGeometry(w / 2, w / 2, h, 20)), mat(0xe8e4dc));
        mesh.position.y = h / 2;
        break;
      case 'plant': {
        const pot = new THREE.Mesh(this.track(new THREE.CylinderGeometry(w * 0.3, w * 0.25, h * 0.3, 12)), mat(0x9a6b4a));
        pot.position.y = h * 0.15;
        const leaves = new THREE.Mesh(this.track(new THREE.SphereGeometry(w * 0.5, 12, 10)), mat(0x4f9a55));
        leaves.scale.set(1, (h * 0.8) / w, 1);
        leaves.position.y = h * 0.62;
        mesh = new THREE.Group();
        mesh.add(pot, leaves);
        break;
      }
      case 'sign': {
        const tex = this.track(textTexture([this.text(d.label) || '案内'], { bg: '#1f5d8c', fg: '#ffffff', size: 64 }));
        mesh = new THREE.Mesh(this.track(new THREE.BoxGeometry(w, h, Math.max(dep, 0.05))), [
          mat(0x1f5d8c), mat(0x1f5d8c), mat(0x1f5d8c), mat(0x1f5d8c),
          this.track(new THREE.MeshBasicMaterial({ map: tex })), this.track(new THREE.MeshBasicMaterial({ map: tex })),
        ]);
        mesh.position.y = h / 2;
        break;
      }
      default: {
        const color = { bench: 0x8f6a48, desk: 0xa67c52, lectern: 0x6d4c33 }[d.kind] ?? 0xbdb6aa;
        mesh = new THREE.Mesh(this.track(new THREE.BoxGeometry(w, h, dep)), mat(color));
        mesh.position.y = h / 2;
      }
    }
    group.add(mesh);
    if (d.label && d.kind !== 'sign') {
      const info = /info|案内/.test(`${d.id} ${d.label.ja ?? ''}`);
      const board = this.sign(info ? [`ⓘ ${this.text(d.label)}`, this.lang() === 'ja' ? '案内図・行き先' : 'Map · take me to'] : [this.text(d.label)],
        d.x, this.world.heightAt(d.floor, d.x, d.z) + h + 1.5, d.z, { height: info ? 0.8 : 0.45, maxWidth: 4, bg: info ? '#c0392b' : '#12324f' });
      if (info) {
        const pick = { kind: 'info', id: d.id, label: d.label };
        board.userData.pick = pick;
        mesh.userData = { pick };
        this.pickables.push(board, mesh);
      }
    }
  }

  /**
   * Draw the hall again in the current language (labels are drawn into textures). What features
   * put on the stage screens stays; avatars and objects added with add() are not touched.
   */
  relabel() {
    for (const d of this.disposables) d.dispose?.();
    this.disposables = [];
    this.pickables = [];
    this.tiles = null;
    this.screens = new Map();
    this.root.clear();
    this.build();
    for (const [stageId, texture] of this.screenTextures) this.setScreen(stageId, texture);
  }

  /** Show an image or text on a stage's screen (for the briefing feature). */
  setScreen(stageId, texture) {
    const screen = this.screens?.get(stageId);
    if (!screen) return false;
    this.screenTextures.set(stageId, texture);
    screen.material.map = texture;
    screen.material.needsUpdate = true;
    return true;
  }

  /** Add an object to the scene; it is removed and disposed with the view. */
  add(object) {
    this.scene.add(object);
    return object;
  }

  resize() {
    const w = this.container.clientWidth || window.innerWidth;
    const h = this.container.clientHeight || window.innerHeight;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    // a phone held upright sees little sideways: widen the view and step back a little
    this.camera.fov = w < h ? 75 : 60;
    this.portrait = w < h ? Math.min(1.6, h / w / 1.3) : 1;
    this.camera.updateProjectionMatrix();
  }

  /**
   * Put the camera behind a target (x, y, z) on a floor, looking the way of cameraYaw; it comes
   * closer rather than go through a wall or out of the building.
   */
  follow(x, y, z, floor = 0) {
    const p = this.cameraPitch;
    const want = this.cameraDistance * (this.portrait ?? 1);
    const bx = x - Math.sin(this.cameraYaw) * Math.cos(p) * want;
    const bz = z - Math.cos(this.cameraYaw) * Math.cos(p) * want;
    const t = this.world.firstHit(floor, x, z, bx, bz);
    const d = t < 1 ? Math.max(0.8, want * t - 0.4) : want;
    // under the floor above, stay below its slab (looking up through a stairwell is fine)
    const here = this.world.floors[floor]?.elevation ?? 0;
    const ceiling = Math.min(Infinity, ...this.world.floors.map((g) => g.elevation).filter((e) => e > here)) - 0.45;
    const cx = x - Math.sin(this.cameraYaw) * Math.cos(p) * d;
    const cz = z - Math.cos(this.cameraYaw) * Math.cos(p) * d;
    this.camera.position.set(cx, Math.min(y + 1.4 + Math.sin(p) * d, ceiling), cz);
    this.camera.lookAt(x, y + 1.3, z);
  }

  /** What is under a point of the canvas (client pixels): `{kind, id, ...}` or null. */
  pick(clientX, clientY, extra = []) {
    const rect = this.renderer.domElement.getBoundingClientRect();
    const ndc = new THREE.Vector2(((clientX - rect.left) / rect.width) * 2 - 1, -((clientY - rect.top) / rect.height) * 2 + 1);
    this.raycaster.setFromCamera(ndc, this.camera);
    const hits = this.raycaster.intersectObjects([...extra, ...this.pickables], true);
    for (const h of hits) {
      let o = h.object;
      while (o && !o.userData?.pick) o = o.parent;
      if (o) return { ...o.userData.pick, distance: h.distance };
    }
    return null;
  }

  render() {
    this.renderer.render(this.scene, this.camera);
  }

  dispose() {
    window.removeEventListener('resize', this.resize);
    for (const d of this.disposables) d.dispose?.();
    this.disposables = [];
    this.scene.clear();
    this.renderer.dispose();
    this.renderer.domElement.remove();
  }
}
