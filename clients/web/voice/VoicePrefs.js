// What this person chose, remembered on this device (localStorage): push-to-talk or open mic, and
// each other person's volume and mute. People are remembered by display name: avatar ids change
// with every visit and names are what the person sees (two people of one name share a setting).

const KEY = 'emachi.voice';
const MAX_PEOPLE = 200;

export class VoicePrefs {
  constructor(storage = globalThis.localStorage) {
    this.storage = storage;
    let saved = {};
    try { saved = JSON.parse(storage?.getItem(KEY) ?? '{}') ?? {}; } catch { saved = {}; }
    this.mode = saved.mode === 'open' ? 'open' : 'ptt';
    this.people = typeof saved.people === 'object' && saved.people ? saved.people : {};
  }

  person(name) {
    const p = this.people[name];
    return { volume: typeof p?.volume === 'number' ? Math.min(2, Math.max(0, p.volume)) : 1, muted: p?.muted === true };
  }

  /** The own gain this person gave `name`: 0 when muted, else the volume (0-2). */
  gainFor(name) {
    if (!name) return 1;
    const p = this.person(name);
    return p.muted ? 0 : p.volume;
  }

  setPerson(name, change) {
    if (!name) return;
    const p = { ...this.person(name), ...change };
    delete this.people[name];
    if (p.volume !== 1 || p.muted) this.people[name] = p; // newest last; defaults not kept
    const names = Object.keys(this.people);
    for (const n of names.slice(0, Math.max(0, names.length - MAX_PEOPLE))) delete this.people[n];
    this.save();
  }

  setMode(mode) {
    this.mode = mode === 'open' ? 'open' : 'ptt';
    this.save();
  }

  save() {
    try { this.storage?.setItem(KEY, JSON.stringify({ mode: this.mode, people: this.people })); } catch { /* private mode */ }
  }

  dispose() {}
}
