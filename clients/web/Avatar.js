// A person in the hall: a friendly capsule body in the person's colour, a head with eyes that show
// which way they face, a name tag that always faces the camera, and a small bob while walking.

import * as THREE from 'three';

const BODY_RADIUS = 0.28;
const BODY_LENGTH = 0.75;
const HEAD_RADIUS = 0.22;
const TAG_HEIGHT = 2.05;

const sharedGeometry = {
  body: null,
  head: null,
  eye: null,
  ring: null,
};

function geometry() {
  if (!sharedGeometry.body) {
    sharedGeometry.body = new THREE.CapsuleGeometry(BODY_RADIUS, BODY_LENGTH, 4, 12);
    sharedGeometry.head = new THREE.SphereGeometry(HEAD_RADIUS, 16, 12);
    sharedGeometry.eye = new THREE.SphereGeometry(0.035, 8, 6);
    sharedGeometry.ring = new THREE.RingGeometry(0.36, 0.46, 24);
  }
  return sharedGeometry;
}

const eyeMaterial = new THREE.MeshBasicMaterial({ color: 0x222222 });

function nameTagTexture(name, isSelf) {
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d');
  const font = '600 36px "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", sans-serif';
  ctx.font = font;
  const w = Math.ceil(Math.min(ctx.measureText(name).width, 460)) + 36;
  canvas.width = w;
  canvas.height = 56;
  ctx.font = font;
  ctx.fillStyle = isSelf ? 'rgba(20, 90, 60, 0.85)' : 'rgba(30, 30, 40, 0.72)';
  const r = 18;
  ctx.beginPath();
  ctx.roundRect(0, 0, w, 56, r);
  ctx.fill();
  ctx.fillStyle = '#ffffff';
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'center';
  ctx.fillText(name, w / 2, 29, w - 24);
  const tex = new THREE.CanvasTexture(canvas);
  tex.colorSpace = THREE.SRGBColorSpace;
  return { tex, aspect: w / 56 };
}

/** A green downward arrow, always on top: "this one is you". */
function markerSprite() {
  const canvas = document.createElement('canvas');
  canvas.width = 64;
  canvas.height = 64;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#19c37d';
  ctx.strokeStyle = '#ffffff';
  ctx.lineWidth = 6;
  ctx.beginPath();
  ctx.moveTo(6, 8);
  ctx.lineTo(58, 8);
  ctx.lineTo(32, 56);
  ctx.closePath();
  ctx.stroke();
  ctx.fill();
  const tex = new THREE.CanvasTexture(canvas);
  tex.colorSpace = THREE.SRGBColorSpace;
  const sprite = new THREE.Sprite(new THREE.SpriteMaterial({ map: tex, depthTest: false, transparent: true }));
  sprite.scale.set(0.34, 0.34, 1);
  sprite.renderOrder = 11;
  return sprite;
}

export class Avatar {
  /**
   * @param {number} id avatar id
   * @param {string} name display name
   * @param {number} color 0xRRGGBB
   * @param {boolean} isSelf the local person (tag in green, a ring at the feet)
   */
  constructor(id, name, color, isSelf = false) {
    this.id = id;
    this.name = name;
    this.color = color;
    this.isSelf = isSelf;
    this.walkPhase = 0;
    this.speed = 0;
    const g = geometry();
    this.group = new THREE.Group();
    this.group.name = `avatar-${id}`;
    this.group.userData = { pick: { kind: 'person', id, name } };
    this.bodyMaterial = new THREE.MeshLambertMaterial({ color });
    this.headMaterial = new THREE.MeshLambertMaterial({ color: 0xf6d7b8 });
    this.inner = new THREE.Group();
    const body = new THREE.Mesh(g.body, this.bodyMaterial);
    body.position.y = BODY_RADIUS + BODY_LENGTH / 2;
    const head = new THREE.Mesh(g.head, this.headMaterial);
    head.position.y = BODY_RADIUS * 2 + BODY_LENGTH + HEAD_RADIUS * 0.8;
    const eyeL = new THREE.Mesh(g.eye, eyeMaterial);
    const eyeR = new THREE.Mesh(g.eye, eyeMaterial);
    eyeL.position.set(-0.08, head.position.y + 0.04, HEAD_RADIUS * 0.92);
    eyeR.position.set(0.08, head.position.y + 0.04, HEAD_RADIUS * 0.92);
    this.inner.add(body, head, eyeL, eyeR);
    for (const m of [body, head, eyeL, eyeR]) m.userData = this.group.userData;
    this.group.add(this.inner);
    if (isSelf) {
      // one's own avatar stands out in any crowd: a bright ring that breathes, and a marker above
      // the head drawn over everyone else
      this.ringMaterial = new THREE.MeshBasicMaterial({ color: 0x19c37d, transparent: true, opacity: 0.9, side: THREE.DoubleSide, depthTest: false });
      this.ring = new THREE.Mesh(g.ring, this.ringMaterial);
      this.ring.rotation.x = -Math.PI / 2;
      this.ring.position.y = 0.03;
      this.ring.scale.setScalar(1.5);
      this.ring.renderOrder = 9;
      this.group.add(this.ring);
      this.marker = markerSprite();
      this.marker.position.y = TAG_HEIGHT + 0.42;
      this.group.add(this.marker);
    }
    this.setName(name);
  }

  setName(name) {
    this.name = name;
    if (this.tag) {
      this.group.remove(this.tag);
      this.tag.material.map.dispose();
      this.tag.material.dispose();
    }
    const { tex, aspect } = nameTagTexture(name || '…', this.isSelf);
    const mat = new THREE.SpriteMaterial({ map: tex, depthTest: false, transparent: true });
    this.tag = new THREE.Sprite(mat);
    this.tagAspect = aspect;
    this.tag.scale.set(0.26 * aspect, 0.26, 1);
    this.tag.position.y = TAG_HEIGHT;
    this.tag.renderOrder = 10;
    this.group.add(this.tag);
  }

  /**
   * How the name tag shows: `opacity` 0 hides it (far away, or too many people in view); a tag
   * in a crowd is drawn a little smaller.
   */
  setTag(opacity, scale = 1) {
    if (!this.tag) return;
    this.tag.visible = opacity > 0.02;
    this.tag.material.opacity = opacity;
    this.tag.scale.set(0.26 * scale * this.tagAspect, 0.26 * scale, 1);
  }

  setColor(color) {
    this.color = color;
    this.bodyMaterial.color.setHex(color);
  }

  /** Place the avatar: (x, y, z) in metres, yaw in radians (0 faces +z). */
  place(x, y, z, yaw) {
    const p = this.group.position;
    this.lastX ??= x;
    this.lastZ ??= z;
    p.set(x, y, z);
    this.group.rotation.y = yaw;
    this.inner.rotation.y = 0;
  }

  /** Animate the walk from how far the avatar moved since the last frame. */
  animate(dt) {
    const p = this.group.position;
    const moved = Math.hypot(p.x - this.lastX, p.z - this.lastZ);
    this.lastX = p.x;
    this.lastZ = p.z;
    const speed = dt > 0 ? moved / dt : 0;
    this.speed += (speed - this.speed) * Math.min(1, dt * 10);
    if (this.speed > 0.2) this.walkPhase += dt * 10;
    const amp = Math.min(1, this.speed / 1.5);
    this.inner.position.y = Math.abs(Math.sin(this.walkPhase)) * 0.06 * amp;
    this.inner.rotation.z = Math.sin(this.walkPhase) * 0.06 * amp;
    if (this.ring) {
      this.pulse = ((this.pulse ?? 0) + dt * 2.5) % (Math.PI * 2);
      this.ring.scale.setScalar(1.45 + Math.sin(this.pulse) * 0.15);
      this.marker.position.y = TAG_HEIGHT + 0.42 + Math.sin(this.pulse) * 0.05;
    }
  }

  dispose() {
    this.group.removeFromParent();
    this.bodyMaterial.dispose();
    this.headMaterial.dispose();
    this.ringMaterial?.dispose();
    if (this.marker) {
      this.marker.material.map.dispose();
      this.marker.material.dispose();
    }
    if (this.tag) {
      this.tag.material.map.dispose();
      this.tag.material.dispose();
    }
  }
}
