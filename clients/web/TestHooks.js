// What the browser tests (tests/browser) read and do through `window.emachi`. Installed only when
// the page is opened for a test, `?test=1` in its address or `localStorage['emachi.test'] === '1'`
// (tests/browser/conftest.py sets it), so that visitors do not carry it.

import * as THREE from 'three';

const FLAG = 'emachi.test';

export class TestHooks {
  /** Whether this page was opened by a test. */
  static enabled(win = window) {
    if (new URLSearchParams(win.location.search).get('test') === '1') return true;
    try { return win.localStorage.getItem(FLAG) === '1'; } catch { return false; }
  }

  /** @param {import('./App.js').App} app */
  constructor(app, win = window) {
    this.win = win;
    this.hooks = {
      app,
      /** {state, avatarId, instance, people, crowd, frames, firstFrameMs} */
      state: () => ({
        state: app.state, avatarId: app.avatarId, instance: app.instance, people: app.people,
        crowd: app.crowd, frames: app.frames, firstFrameMs: app.firstFrameMs,
      }),
      self: () => app.self(),
      others: () => app.others(),
      /** The last 200 corrections of the own avatar (m): how far prediction was off, per snapshot. */
      corrections: () => (app.player ? [...app.player.corrections] : []),
      /** Where a world point (x, y, z in metres) is on the page, in CSS pixels, or null if behind. */
      screenOf: (x, y, z) => {
        const v = new THREE.Vector3(x, y, z).project(app.view.camera);
        if (v.z > 1) return null;
        const r = app.view.renderer.domElement.getBoundingClientRect();
        return { x: r.left + ((v.x + 1) / 2) * r.width, y: r.top + ((1 - v.y) / 2) * r.height };
      },
      /**
       * Render a frame and sample it on a 64×64 grid (in the same task, so the drawing buffer is
       * still there): {colours: distinct colours at 4 bits a channel, top: share of the commonest}.
       */
      sampleColours: () => {
        app.view.render();
        const c = document.createElement('canvas');
        c.width = c.height = 64;
        const ctx = c.getContext('2d');
        ctx.drawImage(app.view.renderer.domElement, 0, 0, 64, 64);
        const d = ctx.getImageData(0, 0, 64, 64).data;
        const counts = new Map();
        for (let i = 0; i < d.length; i += 4) {
          const key = ((d[i] >> 4) << 8) | ((d[i + 1] >> 4) << 4) | (d[i + 2] >> 4);
          counts.set(key, (counts.get(key) || 0) + 1);
        }
        return { colours: counts.size, top: Math.max(...counts.values()) / (64 * 64) };
      },
      /** Draw calls and triangles of the last frame (three.js renderer.info). */
      renderInfo: () => ({ ...app.view.renderer.info.render }),
      /** "Take me to": {active, dest, path: [{floor, x, z}]} of the guide. */
      guide: () => ({ active: !!app.guide?.active, dest: app.guide?.dest?.id ?? null, path: app.guide?.path() ?? [] }),
      /** Every destination of the Wayfinder: [{id, group, label, floor, x, z}]. */
      destinations: () => (app.wayfinder?.destinations ?? []).map(({ id, group, label, floor, x, z }) => ({ id, group, label, floor, x, z })),
      /** Cut the WebSocket as a network failure would; the client reconnects by itself. */
      dropConnection: () => app.conn?.dropForTest(),
    };
    win.emachi = this.hooks;
  }

  dispose() {
    if (this.win.emachi === this.hooks) delete this.win.emachi;
  }
}
