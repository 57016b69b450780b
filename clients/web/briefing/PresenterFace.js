// The speaking avatar's face, drawn on a canvas: its mouth takes the viseme shape and opens as
// wide as the voice is loud. Used on the watch-only page and as the face texture of the stage
// presenter in the hall.

const SHAPES = {
  // [width, height] of the mouth as fractions of the face, at full loudness
  X: [0.34, 0.02],
  M: [0.32, 0.015],
  S: [0.36, 0.06],
  A: [0.34, 0.26],
  I: [0.42, 0.1],
  U: [0.16, 0.14],
  E: [0.38, 0.16],
  O: [0.22, 0.22],
};

export class PresenterFace {
  constructor(canvas = document.createElement('canvas'), { color = '#f2c9a0' } = {}) {
    this.canvas = canvas;
    canvas.width = 256;
    canvas.height = 256;
    this.ctx = canvas.getContext('2d');
    this.color = color;
    this.last = '';
    this.draw({ shape: 'X', open: 0 });
  }

  /** Draw the mouth; returns true when the picture changed. */
  draw(mouth) {
    const shape = mouth?.shape ?? 'X';
    const open = Math.max(0.25, Math.min(1, (mouth?.open ?? 0) * 1.4));
    const key = `${shape}:${open.toFixed(2)}`;
    if (key === this.last) return false;
    this.last = key;
    this.canvas.dataset.shape = shape;
    const c = this.ctx;
    const S = 256;
    c.clearRect(0, 0, S, S);
    c.fillStyle = this.color;
    c.beginPath();
    c.arc(S / 2, S / 2, S * 0.46, 0, Math.PI * 2);
    c.fill();
    c.fillStyle = '#1d2a38';
    for (const x of [0.36, 0.64]) {
      c.beginPath();
      c.ellipse(S * x, S * 0.42, S * 0.04, S * 0.055, 0, 0, Math.PI * 2);
      c.fill();
    }
    const [w, h] = SHAPES[shape] ?? SHAPES.X;
    const mh = shape === 'X' || shape === 'M' ? h : h * open;
    c.fillStyle = '#7a2531';
    c.beginPath();
    c.ellipse(S / 2, S * 0.7, (S * w) / 2, Math.max(2, (S * mh) / 2), 0, 0, Math.PI * 2);
    c.fill();
    return true;
  }

  dispose() {}
}
