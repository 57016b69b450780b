// Draws a briefing slide (a title and bullet lines, or an image asset) on a canvas: shown as is on
// the watch-only page, and as a CanvasTexture on the stage screen in the hall. Japanese text wraps
// by character, Latin text by word.

const W = 1280;
const H = 720;
const FONT = '"Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", sans-serif';

function wrap(ctx, text, maxWidth) {
  const lines = [];
  let line = '';
  const tokens = text.match(/[A-Za-z0-9.,%()'"\-+:/]+\s*|\s+|./gu) ?? [];
  for (const tok of tokens) {
    const next = line + tok;
    if (ctx.measureText(next).width > maxWidth && line) {
      lines.push(line.trimEnd());
      line = tok.trimStart();
    } else {
      line = next;
    }
  }
  if (line.trim()) lines.push(line.trimEnd());
  return lines;
}

export class SlideCanvas {
  constructor(canvas = document.createElement('canvas')) {
    this.canvas = canvas;
    canvas.width = W;
    canvas.height = H;
    this.ctx = canvas.getContext('2d');
    this.key = null;
    this.images = new Map();
    this.onChange = null; // called after every redraw (a texture sets needsUpdate)
  }

  /** Draw a slide; does nothing when the same slide is already shown. */
  show(slide, { index = 0, count = 1, speaker = '', title = '', question = null } = {}) {
    const key = JSON.stringify([slide, index, speaker, question?.text ?? null, slide ? '' : title]);
    if (key === this.key) return false;
    this.key = key;
    this.canvas.dataset.slideIndex = String(index);
    this.canvas.dataset.slideTitle = slide?.title ?? '';
    this.canvas.dataset.question = '';
    const c = this.ctx;
    c.fillStyle = '#0f2540';
    c.fillRect(0, 0, W, H);
    c.fillStyle = '#2a9d8f';
    c.fillRect(0, 0, W, 12);
    if (!slide) {
      this.centered(title || '開始までお待ちください / Starting soon');
      this.onChange?.();
      return true;
    }
    c.fillStyle = '#ffffff';
    c.font = `bold 46px ${FONT}`;
    let y = 80;
    for (const line of wrap(c, slide.title, W - 120).slice(0, 2)) {
      c.fillText(line, 60, y);
      y += 58;
    }
    c.fillStyle = '#2a9d8f';
    c.fillRect(60, y - 30, W - 120, 3);
    y += 30;
    if (slide.image) {
      this.drawImage(slide, y);
    } else {
      const n = slide.bullets.length;
      const size = n > 7 ? 28 : n > 5 ? 32 : 36;
      c.font = `${size}px ${FONT}`;
      c.fillStyle = '#e8f1f8';
      for (const b of slide.bullets) {
        const lines = wrap(c, b, W - 170);
        c.fillStyle = '#e9c46a';
        c.fillText('•', 70, y);
        c.fillStyle = '#e8f1f8';
        for (const line of lines) {
          if (y > H - 60) break;
          c.fillText(line, 105, y);
          y += size * 1.35;
        }
        y += size * 0.3;
      }
    }
    c.font = `22px ${FONT}`;
    c.fillStyle = '#9fb3c8';
    c.fillText(`${index + 1} / ${count}${speaker ? `   ${speaker}` : ''}`, 60, H - 28);
    if (question) this.drawQuestion(question.text);
    this.onChange?.();
    return true;
  }

  /** The question staff put on the screen, as a banner over the bottom of the slide. */
  drawQuestion(text) {
    const c = this.ctx;
    c.font = `30px ${FONT}`;
    const lines = wrap(c, `質問 / Question: ${text}`, W - 160).slice(0, 3);
    const h = 30 + lines.length * 40;
    c.fillStyle = 'rgba(233, 196, 106, 0.95)';
    c.fillRect(40, H - 60 - h, W - 80, h);
    c.fillStyle = '#1d2a38';
    lines.forEach((l, i) => c.fillText(l, 70, H - 60 - h + 45 + i * 40));
    this.canvas.dataset.question = text;
  }

  centered(text) {
    const c = this.ctx;
    c.fillStyle = '#e8f1f8';
    c.font = `40px ${FONT}`;
    const lines = text.split('\n').flatMap((part) => wrap(c, part, W - 200));
    lines.forEach((l, i) => {
      const w = c.measureText(l).width;
      c.fillText(l, (W - w) / 2, H / 2 + (i - (lines.length - 1) / 2) * 54);
    });
  }

  drawImage(slide, top) {
    const url = `/assets/${slide.image}`;
    let img = this.images.get(url);
    if (!img) {
      img = new Image();
      img.alt = slide.alt;
      img.onload = () => { this.key = null; this.onChange?.('reload'); };
      img.src = url;
      this.images.set(url, img);
    }
    if (!img.complete || !img.naturalWidth) return;
    const boxW = W - 120;
    const boxH = H - top - 60;
    const s = Math.min(boxW / img.naturalWidth, boxH / img.naturalHeight);
    const w = img.naturalWidth * s;
    const h = img.naturalHeight * s;
    this.ctx.drawImage(img, 60 + (boxW - w) / 2, top + (boxH - h) / 2, w, h);
  }

  dispose() {
    this.images.clear();
    this.onChange = null;
  }
}
