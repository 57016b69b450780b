// Input: keyboard (WASD / arrows, Q/E or ←/→ to turn), mouse drag to look and wheel to zoom on a PC;
// an on-screen joystick (bottom left) and drag-to-look on a phone; a tap or click that does not drag
// picks what is under it. The result is read each frame: intent() in camera axes and look deltas.

const MOVE_KEYS = {
  KeyW: [0, 1], ArrowUp: [0, 1], KeyS: [0, -1], ArrowDown: [0, -1], KeyA: [-1, 0], KeyD: [1, 0],
};
const TURN_KEYS = { ArrowLeft: 1, KeyQ: 1, ArrowRight: -1, KeyE: -1 };
const TURN_SPEED = 2.2; // rad/s with the keys
const DRAG_LOOK = 0.006; // rad per pixel
const TAP_SLOP = 8; // pixels a press may move and still be a tap

export class Controls {
  /**
   * @param {HTMLElement} surface the element receiving pointer input (the 3D view)
   * @param {HTMLElement} joystick the joystick base element (with a .knob child)
   * @param {{onPick: (x: number, y: number) => void}} handlers
   */
  constructor(surface, joystick, { onPick }) {
    this.surface = surface;
    this.joystick = joystick;
    this.knob = joystick.querySelector('.knob');
    this.onPick = onPick;
    this.keys = new Set();
    this.stick = { x: 0, y: 0, pointer: null };
    this.drag = null;
    this.lookYaw = 0;
    this.lookPitch = 0;
    this.zoom = 0;
    this.enabled = true;
    this.listeners = [];
    const on = (el, type, fn, opts) => {
      el.addEventListener(type, fn, opts);
      this.listeners.push([el, type, fn, opts]);
    };
    on(window, 'keydown', (e) => this.keyDown(e));
    on(window, 'keyup', (e) => this.keys.delete(e.code));
    on(window, 'blur', () => this.keys.clear());
    on(surface, 'pointerdown', (e) => this.pointerDown(e));
    on(window, 'pointermove', (e) => this.pointerMove(e));
    on(window, 'pointerup', (e) => this.pointerUp(e));
    on(window, 'pointercancel', (e) => this.pointerUp(e, true));
    on(surface, 'wheel', (e) => { this.zoom += Math.sign(e.deltaY); e.preventDefault(); }, { passive: false });
    on(joystick, 'pointerdown', (e) => this.stickDown(e));
    on(surface, 'contextmenu', (e) => e.preventDefault());
  }

  typing(e) {
    const t = e.target;
    return t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
  }

  keyDown(e) {
    if (!this.enabled || this.typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.code in MOVE_KEYS || e.code in TURN_KEYS) {
      this.keys.add(e.code);
      // arrows would otherwise scroll the page
      e.preventDefault();
    }
  }

  pointerDown(e) {
    if (!this.enabled || this.drag) return;
    this.drag = { id: e.pointerId, x: e.clientX, y: e.clientY, startX: e.clientX, startY: e.clientY, moved: false };
    this.surface.setPointerCapture?.(e.pointerId);
  }

  pointerMove(e) {
    if (this.stick.pointer === e.pointerId) { this.stickMove(e); return; }
    const d = this.drag;
    if (!d || d.id !== e.pointerId) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    d.x = e.clientX;
    d.y = e.clientY;
    if (Math.hypot(e.clientX - d.startX, e.clientY - d.startY) > TAP_SLOP) d.moved = true;
    if (d.moved) {
      this.lookYaw -= dx * DRAG_LOOK;
      this.lookPitch += dy * DRAG_LOOK * 0.6;
    }
  }

  pointerUp(e, cancelled = false) {
    if (this.stick.pointer === e.pointerId) { this.stickUp(); return; }
    const d = this.drag;
    if (!d || d.id !== e.pointerId) return;
    this.drag = null;
    if (!d.moved && !cancelled) this.onPick(e.clientX, e.clientY);
  }

  stickDown(e) {
    if (!this.enabled) return;
    e.preventDefault();
    e.stopPropagation();
    this.stick.pointer = e.pointerId;
    this.joystick.setPointerCapture?.(e.pointerId);
    this.joystick.classList.add('active');
    this.stickMove(e);
  }

  stickMove(e) {
    const r = this.joystick.getBoundingClientRect();
    const radius = r.width / 2;
    let x = (e.clientX - (r.left + radius)) / radius;
    let y = (e.clientY - (r.top + radius)) / radius;
    const len = Math.hypot(x, y);
    if (len > 1) { x /= len; y /= len; }
    this.stick.x = x;
    this.stick.y = y;
    if (this.knob) this.knob.style.transform = `translate(${x * radius * 0.6}px, ${y * radius * 0.6}px)`;
  }

  stickUp() {
    this.stick = { x: 0, y: 0, pointer: null };
    this.joystick.classList.remove('active');
    if (this.knob) this.knob.style.transform = '';
  }

  /**
   * Movement intent relative to the camera: [strafe (+right), forward (+ahead)], length ≤ 1.
   * A small dead zone on the joystick keeps a resting thumb from drifting.
   */
  intent() {
    if (!this.enabled) return [0, 0];
    let sx = 0, sf = 0;
    for (const k of this.keys) {
      const m = MOVE_KEYS[k];
      if (m) { sx += m[0]; sf += m[1]; }
    }
    if (Math.hypot(this.stick.x, this.stick.y) > 0.15) {
      sx += this.stick.x;
      sf -= this.stick.y;
    }
    const len = Math.hypot(sx, sf);
    return len > 1 ? [sx / len, sf / len] : [sx, sf];
  }

  /** Turning from the keys this frame, in radians. */
  turn(dt) {
    let t = 0;
    for (const k of this.keys) t += TURN_KEYS[k] ?? 0;
    return t * TURN_SPEED * dt;
  }

  /** Look deltas accumulated since the last call (drag), then reset. */
  takeLook() {
    const out = { yaw: this.lookYaw, pitch: this.lookPitch, zoom: this.zoom };
    this.lookYaw = 0;
    this.lookPitch = 0;
    this.zoom = 0;
    return out;
  }

  dispose() {
    for (const [el, type, fn, opts] of this.listeners) el.removeEventListener(type, fn, opts);
    this.listeners = [];
  }
}
