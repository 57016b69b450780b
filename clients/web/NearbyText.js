// The text alternative to the 3D view ("周りの様子" / around you): where the person is, who is
// near and what is close, in an aria-live region, plus a button for each thing close by so a
// keyboard or screen-reader user can open it. Distances are words that change only at a few
// steps, and the region is rewritten only when its text changes, so it does not chatter.

const NEAR_PEOPLE_M = 10;
const NEAR_THINGS_M = 8;
const MAX_THINGS = 5;

export class NearbyText {
  /**
   * @param {HTMLElement} root #nearby (the actions list is added to it)
   * @param {HTMLElement} live #nearby-live (aria-live)
   * @param {{world: object, i18n: object, onChoose: (hit: object) => void}} options
   */
  constructor(root, live, { world, i18n, onChoose }) {
    this.root = root;
    this.live = live;
    this.world = world;
    this.i18n = i18n;
    this.onChoose = onChoose;
    this.text = '';
    this.key = '';
    this.actions = null;
  }

  /** Rewrite everything on the next update (after a change of language). */
  reset() {
    this.text = '';
    this.key = '';
  }

  /**
   * Describe the surroundings of `me` ({floor, x, z}) among `others` ([{name, floor, x, z}]).
   * @returns {{things: object[], people: object[]}} what was described, nearest first
   */
  update(me, others) {
    const t = (k, v) => this.i18n.t(k, v);
    const text = (x) => this.i18n.text(x);
    const people = others
      .filter((o) => o.floor === me.floor)
      .map((o) => ({ ...o, distance: Math.hypot(o.x - me.x, o.z - me.z) }))
      .filter((o) => o.distance <= NEAR_PEOPLE_M)
      .sort((a, b) => a.distance - b.distance);
    const things = this.world.near(me.floor, me.x, me.z, NEAR_THINGS_M).slice(0, MAX_THINGS);
    const floorName = text(this.world.floors[me.floor]?.name);
    const zone = this.world.zoneAt(me.floor, me.x, me.z);
    const zoneName = zone && !floorName.includes(text(zone.name)) ? text(zone.name) : '';
    const m = (d) => t(d < 2 ? 'near.here' : d < 5 ? 'near.close' : 'near.ahead');
    const label = (o) => text(o.label) || t(`kind.${o.kind}`);
    const lines = [
      t('near.where', { place: [floorName, zoneName].filter(Boolean).join(' · ') }),
      people.length ? t('near.people', { list: people.map((o) => `${o.name} (${m(o.distance)})`).join('、') }) : t('near.nobody'),
    ];
    if (things.length) {
      lines.push(t('near.things', { list: things.map((o) => `${label(o)} (${m(o.distance)})`).join('、') }));
    }
    const joined = lines.join('\n');
    if (joined !== this.text) {
      this.text = joined;
      this.live.replaceChildren(...lines.map((l) => Object.assign(document.createElement('p'), { textContent: l })));
    }
    const key = things.map((o) => o.id).join(',') + this.i18n.lang;
    if (key !== this.key) {
      this.key = key;
      this.renderActions(things, label);
    }
    return { things, people };
  }

  renderActions(things, label) {
    if (!this.actions) {
      this.actions = document.createElement('div');
      this.actions.id = 'nearby-actions';
      this.root.append(this.actions);
    }
    this.actions.replaceChildren(...things.filter((o) => o.kind !== 'stairs').map((o) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label(o);
      b.addEventListener('click', () => this.onChoose({
        kind: o.kind, id: o.id, label: o.label, procedure: o.object.procedure, section: o.object.section,
      }));
      return b;
    }));
  }

  dispose() {
    this.actions?.remove();
    this.actions = null;
    this.live.replaceChildren();
  }
}
