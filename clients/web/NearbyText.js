// The text alternative to the 3D view ("周りの様子" / around you): where the person is, how many are
// about (in words), the nearest few people and the nearest things with their direction as well as
// their distance ("右手 5 m に住民票の写し"), plus buttons: the floor map / "take me to", and the
// nearest things to open. The aria-live region is rewritten only when what is described changes
// (another place, other people or things nearest), never just because someone moved a metre, so a
// screen reader is told politely and not every second. Directions are relative to the camera.

import { bearing, roundMetres } from './Wayfinder.js';

const NEAR_PEOPLE_M = 10;
const NEAR_THINGS_M = 30;
const MAX_PEOPLE = 5;
const MAX_THINGS = 3;

export class NearbyText {
  /**
   * @param {HTMLElement} root #nearby (the count line and the actions are added to it)
   * @param {HTMLElement} live #nearby-live (aria-live)
   * @param {{world: object, i18n: object, onChoose: (hit: object) => void, onMap: () => void,
   *   compact?: boolean}} options compact: fewer buttons (a phone)
   */
  constructor(root, live, { world, i18n, onChoose, onMap, compact = false }) {
    this.root = root;
    this.live = live;
    this.world = world;
    this.i18n = i18n;
    this.onChoose = onChoose;
    this.onMap = onMap;
    this.compact = compact;
    this.text = '';
    this.key = '';
    this.actionsKey = '';
    /** Features' words about a thing, by id (a counter's status): {live, short}. */
    this.notes = new Map();
    this.count = document.createElement('p');
    this.count.id = 'nearby-count';
    this.root.insertBefore(this.count, live);
    this.actions = document.createElement('div');
    this.actions.id = 'nearby-actions';
    this.mapButton = document.createElement('button');
    this.mapButton.type = 'button';
    this.mapButton.id = 'nearby-map';
    this.mapButton.addEventListener('click', () => this.onMap?.());
    // the buttons first, under the heading: on a small screen they are never scrolled away
    const heading = this.root.querySelector('h2');
    this.root.insertBefore(this.actions, heading ? heading.nextSibling : this.root.firstChild);
  }

  /**
   * A feature's words about a thing (a counter: open, closed or busy; its queue): `live` is said
   * with the thing in the live region (keep it coarse: the region is rewritten when it changes),
   * `short` is shown quietly on its button. null removes the note.
   */
  setNote(id, note) {
    if (note) this.notes.set(id, note);
    else this.notes.delete(id);
  }

  /** The note of a thing, or null (FloorMap shows it too). */
  note(id) {
    return this.notes.get(id) ?? null;
  }

  /** Rewrite everything on the next update (after a change of language). */
  reset() {
    this.text = '';
    this.key = '';
    this.actionsKey = '';
  }

  /**
   * Describe the surroundings of `me` ({floor, x, z}) among `others` ([{id, name, floor, x, z}]).
   * @param {{yaw?: number, inView?: number, beyond?: number}} view the camera's yaw; how many
   *   others are in view and how many more are on the floor (the snapshot's crowd)
   * @returns {{things: object[], people: object[]}} what was described, nearest first
   */
  update(me, others, { yaw = 0, inView = null, beyond = 0 } = {}) {
    const t = (k, v) => this.i18n.t(k, v);
    const text = (x) => this.i18n.text(x);
    const people = others
      .filter((o) => o.floor === me.floor)
      .map((o) => ({ ...o, distance: Math.hypot(o.x - me.x, o.z - me.z) }))
      .filter((o) => o.distance <= NEAR_PEOPLE_M)
      .sort((a, b) => a.distance - b.distance)
      .slice(0, MAX_PEOPLE);
    const things = this.world.near(me.floor, me.x, me.z, NEAR_THINGS_M).slice(0, MAX_THINGS);
    const floorName = text(this.world.floors[me.floor]?.name);
    const zone = this.world.zoneAt(me.floor, me.x, me.z);
    const zoneName = zone && !floorName.includes(text(zone.name)) ? text(zone.name) : '';
    const label = (o) => text(o.label) || t(`kind.${o.kind}`);
    const spoken = (o) => {
      const live = this.notes.get(o.id)?.live;
      return live ? `${label(o)}（${live}）` : label(o);
    };
    const where = (x, z) => {
      const b = bearing(me, yaw, x, z);
      return { dir: t(`dir.${b.key}`), m: roundMetres(b.distance) };
    };
    const thingXZ = (o) => (o.kind === 'stage' ? [o.object.screen.x, o.object.screen.z] : o.kind === 'stairs' ? o.object.start : [o.object.x, o.object.z]);
    // the count, in words; not live (it changes all the time), read with the box
    const n = inView ?? others.length;
    const count = n === 0 && !beyond ? t('count.none') : beyond ? t('count.beyond', { n, m: beyond }) : t('count.near', { n });
    if (this.count.textContent !== count) this.count.textContent = count;
    // the live part: only when what is nearest changes
    // (a thing's distance counts only by coarse steps: arriving at it is news, each metre is not)
    const step = (d) => (d < 3 ? 0 : d < 10 ? 1 : 2);
    const key = [me.floor, zone?.id ?? '', people.map((o) => o.id).join(','), things.map((o) => `${o.id}:${step(o.distance)}`).join(','),
      // and where the nearest thing lies, so that turning round to face it is said
      things[0] ? bearing(me, yaw, ...thingXZ(things[0])).key : '', this.i18n.lang,
      things.map((o) => this.notes.get(o.id)?.live ?? '').join(',')].join('|');
    if (key !== this.key) {
      this.key = key;
      const lines = [
        t('near.where', { place: [floorName, zoneName].filter(Boolean).join(' · ') }),
        people.length
          ? t('near.people', { list: people.map((o) => t('dir.person', { name: o.name, ...where(o.x, o.z) })).join('、') })
          : t('near.nobody'),
      ];
      if (things.length) {
        lines.push(t('near.things', { list: things.map((o) => t('dir.thing', { place: spoken(o), ...where(...thingXZ(o)) })).join(t('list.sep')) }));
      }
      const joined = lines.join('\n');
      if (joined !== this.text) {
        this.text = joined;
        this.live.replaceChildren(...lines.map((l) => Object.assign(document.createElement('p'), { textContent: l })));
      }
    }
    this.renderActions(things.filter((o) => o.kind !== 'stairs').slice(0, this.compact ? 2 : 3), label, where, thingXZ);
    return { things, people };
  }

  renderActions(things, label, where, thingXZ) {
    const t = (k, v) => this.i18n.t(k, v);
    const key = things.map((o) => o.id).join(',') + this.i18n.lang;
    if (key !== this.actionsKey) {
      this.actionsKey = key;
      this.mapButton.textContent = t('map.open');
      this.buttons = things.map((o) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'nearby-thing';
        const name = document.createElement('span');
        name.textContent = label(o);
        const small = document.createElement('small');
        b.append(name, small);
        b.addEventListener('click', () => this.onChoose({
          kind: o.kind, id: o.id, label: o.label, procedure: o.object.procedure, section: o.object.section,
        }));
        return { b, small, o };
      });
      this.actions.replaceChildren(this.mapButton, ...this.buttons.map((x) => x.b));
    }
    // direction and distance on the buttons: outside the live region, so updating them is quiet
    for (const { small, o } of this.buttons ?? []) {
      const w = where(...thingXZ(o));
      const note = this.notes.get(o.id)?.short;
      const s = note ? `${t('dir.short', w)} · ${note}` : t('dir.short', w);
      if (small.textContent !== s) small.textContent = s;
    }
  }

  dispose() {
    this.actions.remove();
    this.count.remove();
    this.live.replaceChildren();
  }
}
