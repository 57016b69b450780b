// "Take me to": walks the own avatar along a Wayfinder path with ordinary movement intents (the
// server checks every step as it checks keys and the joystick), draws the path on the floor (dots
// every metre, a beacon at the end), turns the camera gently the way of the walk, and says where it
// goes and when it has arrived in a polite live region. Any key or the stick takes over at once.

import * as THREE from 'three';

const REACHED = 0.55; // m from a waypoint that counts as there
const ARRIVED = 0.45; // m from the destination (a kiosk's offer is within 2 m of it)
const STUCK_TICKS = 80; // input ticks (4 s at 20 Hz) without 0.3 m of progress: give up, say so
// (counted in ticks, not seconds: a page starved of CPU for a while is not stuck)
const DOT_EVERY = 1.0; // m between the dots of the drawn path
const INTENT = 1.0; // × max speed: the way is known, so at a run

export class Guide {
  /**
   * @param {{view: object, world: object, wayfinder: import('./Wayfinder.js').Wayfinder,
   *   i18n: object, live: HTMLElement, onArrive?: (dest: object) => void}} options
   */
  constructor({ view, world, wayfinder, i18n, live, onArrive }) {
    this.view = view;
    this.world = world;
    this.wayfinder = wayfinder;
    this.i18n = i18n;
    this.live = live;
    this.onArrive = onArrive ?? (() => {});
    this.dest = null;
    this.points = [];
    this.index = 0;
    this.group = new THREE.Group();
    this.group.name = 'route';
    view.add(this.group);
    this.dotGeometry = new THREE.CircleGeometry(0.16, 16);
    this.dotGeometry.rotateX(-Math.PI / 2);
    this.material = new THREE.MeshBasicMaterial({ color: 0xf08c00, transparent: true, opacity: 0.9, depthWrite: false });
    this.beaconGeometry = new THREE.CylinderGeometry(0.35, 0.35, 3.2, 20, 1, true);
    this.beaconMaterial = new THREE.MeshBasicMaterial({ color: 0xf08c00, transparent: true, opacity: 0.28, side: THREE.DoubleSide, depthWrite: false });
  }

  get active() {
    return this.dest !== null;
  }

  /** Start walking from `me` ({floor, x, z}) to a destination of the Wayfinder; false: no way. */
  start(me, dest) {
    const t = (k, v) => this.i18n.t(k, v);
    const label = this.i18n.text(dest.label);
    const route = this.wayfinder.route(me, dest);
    if (!route) {
      this.say(t('guide.noway', { place: label }));
      return false;
    }
    this.dest = dest;
    this.points = route.points;
    this.index = 1;
    this.idleTicks = 0;
    this.bestLeft = Infinity;
    this.draw();
    this.say(t('guide.start', { place: label, m: Math.round(route.length) }));
    return true;
  }

  /** Stop guiding (a key was pressed, the panel closed); `quiet` says nothing. */
  cancel(quiet = false) {
    if (!this.dest) return;
    if (!quiet) this.say(this.i18n.t('guide.stopped'));
    this.dest = null;
    this.points = [];
    this.clearDrawing();
  }

  say(text) {
    this.live.textContent = text;
  }

  /**
   * The movement intent this tick for the avatar at `me`, in world axes ({mx, mz}), or null when
   * not guiding. Advances along the path and finishes on arrival.
   */
  intent(me) {
    if (!this.dest) return null;
    const last = this.points[this.points.length - 1];
    const left = Math.hypot(last.x - me.x, last.z - me.z);
    if (me.floor === this.dest.floor && left < ARRIVED) {
      const dest = this.dest;
      this.say(this.i18n.t('guide.arrived', { place: this.i18n.text(dest.label) }));
      this.dest = null;
      this.points = [];
      this.clearDrawing();
      this.onArrive(dest);
      return { mx: 0, mz: 0, yaw: dest.face, arrived: true };
    }
    let p = this.points[this.index];
    while (p && this.index < this.points.length - 1 && Math.hypot(p.x - me.x, p.z - me.z) < REACHED) {
      this.index += 1;
      p = this.points[this.index];
      this.draw();
    }
    const togo = left + this.points.length - this.index;
    if (togo < this.bestLeft - 0.3) {
      this.bestLeft = togo;
      this.idleTicks = 0;
    } else if (++this.idleTicks > STUCK_TICKS) {
      this.say(this.i18n.t('guide.stuck', { place: this.i18n.text(this.dest.label) }));
      this.dest = null;
      this.clearDrawing();
      return null;
    }
    const dx = p.x - me.x, dz = p.z - me.z;
    const d = Math.hypot(dx, dz) || 1;
    const k = Math.min(INTENT, Math.max(0.35, d / 2));
    return { mx: (dx / d) * k, mz: (dz / d) * k, yaw: Math.atan2(dx, dz) };
  }

  clearDrawing() {
    this.group.clear();
  }

  /** Dots along what is left of the path, and a beacon at its end. */
  draw() {
    this.clearDrawing();
    const pts = this.points.slice(Math.max(0, this.index - 1));
    for (let i = 1; i < pts.length; i++) {
      const a = pts[i - 1], b = pts[i];
      const len = Math.hypot(b.x - a.x, b.z - a.z);
      for (let s = i === 1 ? 0.5 : 0; s < len; s += DOT_EVERY) {
        const x = a.x + ((b.x - a.x) * s) / len, z = a.z + ((b.z - a.z) * s) / len;
        const floor = s < len / 2 ? a.floor : b.floor;
        const dot = new THREE.Mesh(this.dotGeometry, this.material);
        dot.position.set(x, this.world.heightAt(floor, x, z) + 0.04, z);
        dot.renderOrder = 3;
        this.group.add(dot);
      }
    }
    const end = this.points[this.points.length - 1];
    if (end) {
      const beacon = new THREE.Mesh(this.beaconGeometry, this.beaconMaterial);
      beacon.position.set(end.x, this.world.heightAt(end.floor, end.x, end.z) + 1.6, end.z);
      this.group.add(beacon);
    }
  }

  /** The path as drawn, for tests: [{floor, x, z}]. */
  path() {
    return this.points.map((p) => ({ ...p }));
  }

  dispose() {
    this.group.removeFromParent();
    this.clearDrawing();
    this.dotGeometry.dispose();
    this.material.dispose();
    this.beaconGeometry.dispose();
    this.beaconMaterial.dispose();
  }
}
