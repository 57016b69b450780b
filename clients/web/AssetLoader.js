// Assets through the manifest (GET /api/manifest): a world file names an asset by its file name
// under worlds/<world>/assets/ ("textures/floor.webp") or by its SHA-256; the loader turns either
// into the content-addressed URL /assets/<sha256> (cached forever by the browser: the URL changes
// when the bytes do). Level of detail: when the manifest has "textures/floor@phone.webp" (lod
// "phone") and "textures/floor@pc.webp" (lod "pc"), url("textures/floor.webp") picks the one for
// this device, else the plain file.

const SHA256 = /^[0-9a-f]{64}$/;

export class AssetLoader {
  /** @param {'phone'|'pc'} device */
  constructor(device) {
    this.device = device;
    this.loaded = null;
    this.byName = new Map();
    this.bySha = new Map();
    this.textures = new Map();
  }

  /** The manifest, fetched once. */
  manifest() {
    this.loaded ??= fetch('/api/manifest')
      .then((r) => {
        if (!r.ok) throw new Error(`GET /api/manifest: ${r.status}`);
        return r.json();
      })
      .then((doc) => {
        for (const [sha, e] of Object.entries(doc.assets ?? {})) {
          const entry = { sha256: sha, ...e };
          this.bySha.set(sha, entry);
          if (e.file) this.byName.set(e.file, entry);
        }
        return doc;
      });
    return this.loaded;
  }

  /** The manifest entry of a file name or hash, with this device's level of detail; or null. */
  async entry(ref) {
    await this.manifest();
    if (SHA256.test(ref)) return this.bySha.get(ref) ?? null;
    const name = ref.replace(/^assets\//, '');
    const dot = name.lastIndexOf('.');
    const variant = dot > 0 ? `${name.slice(0, dot)}@${this.device}${name.slice(dot)}` : `${name}@${this.device}`;
    return this.byName.get(variant) ?? this.byName.get(name) ?? null;
  }

  /** The URL of an asset, or null when the manifest does not know it. */
  async url(ref) {
    const e = await this.entry(ref);
    return e ? e.url ?? `/assets/${e.sha256}` : null;
  }

  /** A three.js texture for an image asset (one per asset, shared). */
  async texture(THREE, ref) {
    const url = await this.url(ref);
    if (!url) throw new Error(`asset ${ref} is not in the manifest`);
    if (!this.textures.has(url)) {
      const tex = await new THREE.TextureLoader().loadAsync(url);
      tex.colorSpace = THREE.SRGBColorSpace;
      this.textures.set(url, tex);
    }
    return this.textures.get(url);
  }

  dispose() {
    for (const t of this.textures.values()) t.dispose();
    this.textures.clear();
  }
}
