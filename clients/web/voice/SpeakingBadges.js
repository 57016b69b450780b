// Who is speaking, shown twice: a sound badge over each speaking avatar's name tag, and a line in
// the text alternative ("さくらさんが話しています"), changed only when the set of speakers does.

const BADGE_Y = 2.45;

function badgeTexture(THREE) {
  const c = document.createElement('canvas');
  c.width = c.height = 64;
  const g = c.getContext('2d');
  g.fillStyle = 'rgba(47, 158, 106, 0.95)';
  g.beginPath();
  g.arc(32, 32, 30, 0, Math.PI * 2);
  g.fill();
  g.fillStyle = '#fff';
  g.beginPath(); // a loudspeaker
  g.moveTo(14, 26); g.lineTo(22, 26); g.lineTo(32, 17); g.lineTo(32, 47); g.lineTo(22, 38); g.lineTo(14, 38);
  g.closePath();
  g.fill();
  g.strokeStyle = '#fff';
  g.lineWidth = 4;
  g.lineCap = 'round';
  for (const r of [8, 15]) {
    g.beginPath();
    g.arc(34, 32, r, -Math.PI / 4, Math.PI / 4);
    g.stroke();
  }
  const tex = new THREE.CanvasTexture(c);
  tex.colorSpace = THREE.SRGBColorSpace;
  return tex;
}

export class SpeakingBadges {
  /**
   * @param {{THREE: object, live: HTMLElement, t: Function, groupOf: (id: number) => object|null,
   *   nameOf: (id: number) => string}} opts
   */
  constructor({ THREE, live, t, groupOf, nameOf }) {
    this.THREE = THREE;
    this.live = live;
    this.t = t;
    this.groupOf = groupOf;
    this.nameOf = nameOf;
    this.texture = badgeTexture(THREE);
    this.material = new THREE.SpriteMaterial({ map: this.texture, depthTest: false, transparent: true });
    this.sprites = new Map(); // id -> {sprite, group}
    this.key = '';
    this.text = '';
  }

  /** The ids speaking now (the local person's own id included when they talk). */
  update(ids) {
    const now = new Set(ids);
    for (const [id, s] of this.sprites) {
      const group = this.groupOf(id);
      if (!now.has(id) || group !== s.group) {
        s.sprite.removeFromParent();
        this.sprites.delete(id);
      }
    }
    for (const id of now) {
      if (this.sprites.has(id)) continue;
      const group = this.groupOf(id);
      if (!group) continue;
      const sprite = new this.THREE.Sprite(this.material);
      sprite.scale.set(0.32, 0.32, 1);
      sprite.position.y = BADGE_Y;
      sprite.renderOrder = 11;
      sprite.name = 'speaking';
      group.add(sprite);
      this.sprites.set(id, { sprite, group });
    }
    const names = [...now].map((id) => this.nameOf(id)).filter(Boolean).sort();
    const key = names.join('\n');
    if (key === this.key) return;
    this.key = key;
    this.relabel(names);
  }

  relabel(names = this.key ? this.key.split('\n') : []) {
    const t = this.t;
    this.text = names.length
      ? t(names.length === 1 ? 'voice.speaking.one' : 'voice.speaking.many', { names: names.map((n) => t('voice.name', { name: n })).join(t('voice.sep')) })
      : '';
    this.live.textContent = this.text;
    this.live.hidden = !this.text;
  }

  dispose() {
    for (const s of this.sprites.values()) s.sprite.removeFromParent();
    this.sprites.clear();
    this.material.dispose();
    this.texture.dispose();
    this.live.textContent = '';
  }
}
