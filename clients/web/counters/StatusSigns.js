// A status board on each counter in the 3D hall: open / closed / busy in a colour, the staff on
// duty and the queue with its wait, Japanese first and English beside. One small canvas texture
// per counter, redrawn only when what it says changes (a few times a minute at most), on the
// front of the desk.

import { S, both, fmt, look, minutes } from './strings.js';

const FONT = '"Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", sans-serif';
const W = 1024;
const H = 256;
const COLORS = { open: '#1f8a4c', busy: '#c46a00', closed: '#5b6670', absent: '#6a4c93' };

export class StatusSigns {
  /** @param {object} app the client's feature API (App.js) */
  constructor(app) {
    this.app = app;
    const THREE = app.THREE;
    this.THREE = THREE;
    this.group = new THREE.Group();
    this.group.name = 'counter-status';
    this.boards = new Map(); // counter id -> {canvas, tex, mat, mesh, key}
    this.geometries = [];
    for (const c of app.world.counters) {
      const width = Math.min((c.width ?? 3) - 0.2, 2.4);
      const canvas = document.createElement('canvas');
      canvas.width = W;
      canvas.height = H;
      const tex = new THREE.CanvasTexture(canvas);
      tex.colorSpace = THREE.SRGBColorSpace;
      tex.anisotropy = 4;
      const mat = new THREE.MeshBasicMaterial({ map: tex, side: THREE.DoubleSide });
      const geo = new THREE.PlaneGeometry(width, width * (H / W));
      this.geometries.push(geo);
      const mesh = new THREE.Mesh(geo, mat);
      mesh.name = `status-${c.id}`;
      // on the desk's front (HallView.buildCounter: a desk 1 m high and 0.7 m deep), facing the
      // lobby: read as one walks up, never behind the name tags of the staff standing behind it
      const yaw = c.yaw ?? 0;
      const y = app.world.heightAt(c.floor, c.x, c.z) + 0.55;
      mesh.position.set(c.x + Math.sin(yaw) * 0.36, y, c.z + Math.cos(yaw) * 0.36);
      mesh.rotation.y = yaw;
      this.group.add(mesh);
      const board = { canvas, tex, mat, mesh, key: '' };
      this.boards.set(c.id, board);
      this.draw(board, null);
    }
    app.view.add(this.group);
  }

  /** COUNTER_STATE's counters: redraw the boards whose words changed. */
  update(counters) {
    const byId = new Map((counters ?? []).map((c) => [c.id, c]));
    for (const [id, board] of this.boards) this.draw(board, byId.get(id) ?? null);
  }

  draw(board, c) {
    const status = look(c);
    const lines = [
      both(S.status[status]),
      c?.staff?.length ? `${both(S.staff, '/')}: ${c.staff.join('、')}` : both(S.noStaff),
      status === 'absent' ? both(S.absentHint)
        : status === 'closed' ? (c?.hours ? `${both(S.hours, '/')} ${c.hours}` : '')
        : c?.waiting ? `${both(fmt(S.waiting, { n: c.waiting }))}${minutes(c.wait_s) ? ` · ${both(fmt(S.waitAbout, { m: minutes(c.wait_s) }))}` : ''}`
          : both(S.waitNone),
    ];
    const key = JSON.stringify([status, lines]);
    if (key === board.key) return;
    board.key = key;
    board.mesh.userData.status = status;
    board.mesh.userData.lines = lines;
    const g = board.canvas.getContext('2d');
    g.clearRect(0, 0, W, H);
    g.fillStyle = '#ffffff';
    g.beginPath();
    g.roundRect(0, 0, W, H, 28);
    g.fill();
    g.fillStyle = COLORS[status] ?? COLORS.closed;
    g.beginPath();
    g.roundRect(0, 0, W, 100, [28, 28, 0, 0]);
    g.fill();
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillStyle = '#ffffff';
    g.font = `700 64px ${FONT}`;
    g.fillText(lines[0], W / 2, 52, W - 48);
    g.fillStyle = '#1d2a38';
    g.font = `600 46px ${FONT}`;
    g.fillText(lines[1], W / 2, 142, W - 48);
    g.fillStyle = '#34495e';
    g.font = `500 42px ${FONT}`;
    g.fillText(lines[2], W / 2, 208, W - 48);
    board.tex.needsUpdate = true;
  }

  /** What a board says now (tests, and the text alternative if it wants it). */
  said(id) {
    const b = this.boards.get(id);
    return b ? { status: b.mesh.userData.status, lines: b.mesh.userData.lines } : null;
  }

  dispose() {
    this.group.removeFromParent();
    for (const b of this.boards.values()) {
      b.tex.dispose();
      b.mat.dispose();
    }
    for (const g of this.geometries) g.dispose();
    this.boards.clear();
  }
}
