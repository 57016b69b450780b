// Kiosks in the hall: walking within a kiosk's radius offers it ("近くに: 住民票の写し — 開く");
// tapping it (or the offer) asks the server for its panel; the panel's channel buttons ask for the
// link (the client never sends a URL). Installed by App.js (features.js); window.emachiKiosk
// exposes the state for tests.

import { L, bi } from './bilingual.js';
import { KioskPanel } from './KioskPanel.js';

const KINDS = new Set(['kiosk', 'helper', 'thumbnail']);
const OUR_ERRORS = /^(kiosk_|channel_|helper_)/;

export function install(app) {
  const css = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: '/client/kiosk/kiosk.css' });
  document.head.append(css);

  let current = null; // KioskPanel
  let asked = null; // kiosk id whose panel was asked for
  let notice = null; // a small panel for a refusal
  let offered = null; // kiosk id on offer

  const offer = document.createElement('div');
  offer.className = 'kiosk-offer';
  offer.hidden = true;
  offer.setAttribute('role', 'status');
  const offerText = document.createElement('span');
  const offerButton = document.createElement('button');
  offerButton.type = 'button';
  offerButton.className = 'primary';
  offerButton.append(bi('span', L.open));
  offerButton.addEventListener('click', () => offered && open(offered));
  offer.append(offerText, offerButton);
  // in the panels column: it never covers the joystick or another panel (the column is laid out)
  (document.querySelector('#panels') ?? document.body).append(offer);

  function open(id) {
    asked = id;
    notice?.dispose();
    notice = null;
    app.send(app.protocol.kioskOpen(id, app.lang));
  }

  function updateOffer({ things }) {
    const k = things.find((o) => KINDS.has(o.kind) && o.distance <= (o.object.radius ?? 2));
    const id = k?.id ?? null;
    // the offer steps aside while that kiosk's panel is open
    offer.hidden = !k || (current?.open && current.kioskId === id);
    if (id === offered) return;
    offered = id;
    offer.dataset.kiosk = id ?? '';
    if (k) {
      const label = k.label ?? { ja: id, en: id };
      offerText.replaceChildren(bi('span', { ja: `${L.nearby.ja}: ${label.ja} —`, en: `${L.nearby.en}: ${label.en}` }));
    }
  }

  const undo = [
    app.on('near', updateOffer),
    app.on('pick', (hit) => {
      if (!KINDS.has(hit.kind)) return false;
      open(hit.id);
      return true;
    }),
    app.on('KIOSK_PANEL', (msg) => {
      if (msg.kiosk_id !== asked) return;
      asked = null;
      current?.dispose();
      const p = new KioskPanel(app, msg.kiosk_id, msg.panel, () => {
        if (current === p) current = null;
        offer.hidden = !offered;
      });
      current = p;
      offer.hidden = offered === msg.kiosk_id || !offered;
    }),
    app.on('KIOSK_LINK', (msg) => {
      if (current && current.kioskId === msg.kiosk_id) current.link(msg);
    }),
    app.on('HELPER_ANSWER', (msg) => {
      if (current?.helper && current.data.helper === msg.helper) current.helper.answer(msg.answer);
    }),
    app.on('ERROR', (msg) => {
      if (!OUR_ERRORS.test(msg.code)) return;
      if (asked && msg.code.startsWith('kiosk_') && !current?.pending) {
        asked = null;
        notice?.dispose();
        notice = app.panel({ title: `${L.error.ja} / ${L.error.en}` });
        notice.el.classList.add('kiosk-notice');
        notice.body.append(bi('p', msg.code === 'kiosk_too_far' ? L.tooFar : { ja: msg.reason, en: msg.reason }));
      } else if (current) {
        current.error(msg);
      }
    }),
  ];

  window.emachiKiosk = {
    open,
    offered: () => offered,
    panel: () => (current?.open ? current.data : null),
    lastLink: () => current?.lastLink ?? null,
  };

  return () => {
    undo.forEach((f) => f());
    current?.dispose();
    notice?.dispose();
    offer.remove();
    css.remove();
    delete window.emachiKiosk;
  };
}
