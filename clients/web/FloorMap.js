// The information kiosk's panel (総合案内): the floor plan drawn from /api/world with "you are here"
// and the path being walked, a floor switch, and every destination as a "take me to" button with
// its direction and distance, grouped (窓口, キオスク, 部屋, イベント) and filtered by a search field,
// so a keyboard or screen-reader user reaches any counter or kiosk in a few keys.

import { bearing, roundMetres } from './Wayfinder.js';

const GROUPS = ['counter', 'kiosk', 'room', 'event'];
const ZONE_FILL = { open: '#e4eef7', isolated: '#f7e6c8', stage: '#f3d0cf', auditorium: '#e6dbf2', quiet: '#d8efdf' };

export class FloorMap {
  /**
   * @param {object} app the App (panel(), world, i18n, self(), view, takeMeTo(id), guide)
   */
  constructor(app) {
    this.app = app;
    const t = (k, v) => app.i18n.t(k, v);
    const me = app.self();
    this.floor = me?.floor ?? 0;
    this.panel = app.panel({ title: t('map.title'), onClose: () => this.dispose() });
    this.panel.el.classList.add('map-panel');
    const body = this.panel.body;
    this.floors = document.createElement('div');
    this.floors.className = 'map-floors';
    this.floors.setAttribute('role', 'group');
    this.floors.setAttribute('aria-label', t('map.floors'));
    for (const f of app.world.floors) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = app.i18n.text(f.name).split(/\s/)[0];
      b.addEventListener('click', () => { this.floor = f.index; this.draw(); });
      this.floors.append(b);
    }
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'map-canvas';
    this.canvas.setAttribute('role', 'img');
    this.search = document.createElement('input');
    this.search.type = 'search';
    this.search.className = 'map-search';
    this.search.setAttribute('aria-label', t('map.search'));
    this.search.placeholder = t('map.search');
    this.search.addEventListener('input', () => this.list());
    this.listEl = document.createElement('div');
    this.listEl.className = 'map-list';
    body.append(this.floors, this.canvas, this.search, this.listEl);
    this.draw();
    this.list();
    this.timer = setInterval(() => this.draw(), 500);
  }

  /** The canvas: zones, walls, things, the path and "you are here", for the floor shown. */
  draw() {
    const app = this.app;
    const w = app.world;
    const f = w.floors[this.floor];
    if (!f) return;
    for (const [i, b] of [...this.floors.children].entries()) b.setAttribute('aria-pressed', String(i === this.floor));
    const xs = f.outline.map((p) => p[0]), zs = f.outline.map((p) => p[1]);
    const x0 = Math.min(...xs), z0 = Math.min(...zs), x1 = Math.max(...xs), z1 = Math.max(...zs);
    const cssW = Math.max(200, this.panel.body.clientWidth || 340);
    const scale = cssW / (x1 - x0);
    const cssH = Math.round((z1 - z0) * scale);
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    const c = this.canvas;
    if (c.width !== Math.round(cssW * dpr)) {
      c.width = Math.round(cssW * dpr);
      c.height = Math.round(cssH * dpr);
      c.style.width = `${cssW}px`;
      c.style.height = `${cssH}px`;
    }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const X = (x) => (x - x0) * scale, Z = (z) => (z - z0) * scale;
    const poly = (pts, close = true) => {
      ctx.beginPath();
      pts.forEach(([x, z], i) => (i ? ctx.lineTo(X(x), Z(z)) : ctx.moveTo(X(x), Z(z))));
      if (close) ctx.closePath();
    };
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.fillStyle = '#faf8f3';
    poly(f.outline);
    ctx.fill();
    const zones = w.zones.filter((z) => z.floor === f.index).sort((a, b) => b.area - a.area);
    for (const z of zones) {
      if (z.area > 1500) continue;
      ctx.fillStyle = ZONE_FILL[z.audio] ?? '#eee';
      poly(z.polygon);
      ctx.fill();
    }
    ctx.strokeStyle = '#34495e';
    ctx.lineWidth = 2;
    poly(f.outline);
    ctx.stroke();
    for (const wall of w.walls) {
      if (wall.floor !== f.index) continue;
      ctx.lineWidth = wall.height < 2 ? 1 : 2;
      poly(wall.points, false);
      ctx.stroke();
    }
    ctx.fillStyle = '#b9a78c';
    for (const s of w.stairs) {
      if (s.lower !== f.index && s.upper !== f.index) continue;
      poly(s.corners);
      ctx.fill();
    }
    const dot = (x, z, r, color) => {
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(X(x), Z(z), r, 0, Math.PI * 2);
      ctx.fill();
    };
    for (const k of w.kiosks) if (k.floor === f.index) dot(k.x, k.z, 3, k.kind === 'helper' ? '#d9821e' : '#1f6fb8');
    for (const t of w.tables) if (t.floor === f.index) dot(t.x, t.z, t.radius * scale, '#c9b98f');
    ctx.fillStyle = '#7a5230';
    for (const cn of w.counters) {
      if (cn.floor !== f.index) continue;
      const half = (cn.width ?? 3) / 2;
      ctx.fillRect(X(cn.x - half), Z(cn.z) - 2, half * 2 * scale, 4);
    }
    // names of rooms and counters, small but dark
    ctx.fillStyle = '#1d2a38';
    ctx.font = '600 10px "Noto Sans CJK JP", "Noto Sans JP", sans-serif';
    ctx.textAlign = 'center';
    for (const d of app.wayfinder.destinations) {
      if (d.floor !== f.index || (d.group !== 'room' && d.group !== 'counter' && d.group !== 'event')) continue;
      const label = app.i18n.text(d.label);
      const room = d.object?.polygon;
      const span = room ? (Math.max(...room.map((p) => p[0])) - Math.min(...room.map((p) => p[0]))) * scale : (d.object?.width ?? 4) * scale;
      if (ctx.measureText(label).width > span + 4) continue; // no label piled on its neighbours
      ctx.fillText(label, X(d.x), Z(d.z) + (d.group === 'counter' ? 10 : 3));
    }
    // the path being walked
    const path = app.guide?.active ? app.guide.path().filter((p) => p.floor === f.index) : [];
    if (path.length > 1) {
      ctx.strokeStyle = '#f08c00';
      ctx.lineWidth = 3;
      ctx.setLineDash([6, 4]);
      poly(path.map((p) => [p.x, p.z]), false);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    const me = app.self();
    if (me && me.floor === f.index) {
      dot(me.x, me.z, 7, '#d62828');
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(X(me.x), Z(me.z), 7, 0, Math.PI * 2);
      ctx.stroke();
      const yaw = app.view.cameraYaw;
      ctx.strokeStyle = '#d62828';
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.moveTo(X(me.x), Z(me.z));
      ctx.lineTo(X(me.x + Math.sin(yaw) * 3), Z(me.z + Math.cos(yaw) * 3));
      ctx.stroke();
      ctx.fillStyle = '#d62828';
      ctx.font = '700 12px "Noto Sans CJK JP", "Noto Sans JP", sans-serif';
      ctx.fillText(app.i18n.t('map.here'), X(me.x), Z(me.z) - 11);
    }
    const t = (k, v) => app.i18n.t(k, v);
    c.setAttribute('aria-label', t('map.alt', { floor: app.i18n.text(f.name) }));
  }

  /** The destinations as buttons, grouped, nearest first in each group, filtered by the search. */
  list() {
    const app = this.app;
    const t = (k, v) => app.i18n.t(k, v);
    const me = app.self();
    const q = this.search.value.trim().toLowerCase();
    const match = (d) => !q || ['ja', 'en'].some((l) => String(d.label?.[l] ?? d.label ?? '').toLowerCase().includes(q));
    const sections = [];
    for (const group of GROUPS) {
      const items = app.wayfinder.destinations.filter((d) => d.group === group && match(d));
      if (!items.length) continue;
      const where = (d) => {
        if (!me) return { text: '', d: 0 };
        if (d.floor !== me.floor) return { text: app.i18n.text(app.world.floors[d.floor]?.name).split(/\s/)[0], d: 1e6 };
        const b = bearing(me, app.view.cameraYaw, d.x, d.z);
        return { text: t('dir.short', { dir: t(`dir.${b.key}`), m: roundMetres(b.distance) }), d: b.distance };
      };
      const rows = items.map((d) => ({ d, w: where(d) })).sort((a, b) => a.w.d - b.w.d);
      const h = document.createElement('h3');
      h.textContent = t(`map.group.${group}`);
      const ul = document.createElement('ul');
      for (const { d, w } of rows) {
        const li = document.createElement('li');
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'map-go';
        b.dataset.dest = d.id;
        const name = document.createElement('span');
        name.textContent = app.i18n.text(d.label);
        const small = document.createElement('small');
        small.textContent = w.text;
        b.append(name, small);
        // a feature's words about it (a counter's status and queue, from the counters feature)
        const note = app.nearby?.note?.(d.id)?.short ?? '';
        if (note) {
          const n = document.createElement('small');
          n.className = 'map-note';
          n.textContent = note;
          b.append(n);
        }
        b.setAttribute('aria-label', t('map.go', { place: app.i18n.text(d.label), where: note ? `${w.text}、${note}` : w.text }));
        b.addEventListener('click', () => {
          if (app.takeMeTo(d.id)) this.panel.dispose();
        });
        li.append(b);
        ul.append(li);
      }
      sections.push(h, ul);
    }
    if (!sections.length) {
      const p = document.createElement('p');
      p.textContent = t('map.none');
      sections.push(p);
    }
    this.listEl.replaceChildren(...sections);
  }

  get open() {
    return this.panel.open;
  }

  focusSearch() {
    this.search.focus();
  }

  dispose() {
    clearInterval(this.timer);
    this.panel.dispose();
    if (this.app.floorMap === this) this.app.floorMap = null;
  }
}
