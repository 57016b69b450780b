// What a booth's screen shows, as page content both people read (and a screen reader reads): a
// procedure's kiosk panel (drawn by the kiosk's own KioskPanel, read-only here: the staff hands the
// link), a slide (a title and its lines), or the moving-house checklist (the kiosk's renderer).
// And the link the staff handed, as a button with its QR code (an <img>, so nothing in it runs).

import { bi, safeUrl } from '../kiosk/bilingual.js';
import { KioskPanel } from '../kiosk/KioskPanel.js';
import { renderChecklist } from '../kiosk/MovingHelper.js';
import { S } from './strings.js';

const asText = (t) => (t == null ? null : typeof t === 'string' ? { ja: t, en: t } : t);

/** A one-off card inside `host` that KioskPanel can fill as it fills the panels column. */
function embeddedApp(app, host) {
  return {
    ...app,
    protocol: app.protocol,
    device: app.device,
    send: () => false, // read-only on a booth screen
    panel: ({ title }) => {
      const el = document.createElement('div');
      el.className = 'counter-screen-kiosk';
      const h = document.createElement('h4');
      h.textContent = title;
      const body = document.createElement('div');
      el.append(h, body);
      host.append(el);
      return { el, body, open: true, setTitle: (t) => { h.textContent = t; }, dispose: () => el.remove() };
    },
  };
}

/** Fill `box` with the screen's content; returns a short title of it for the live region. */
export function renderScreen(app, box, screen) {
  box.replaceChildren();
  box.dataset.kind = screen?.kind ?? '';
  if (!screen) {
    box.append(bi('p', S.screenEmpty, 'counter-muted'));
    return null;
  }
  if (screen.kind === 'kiosk' && screen.panel) {
    const kp = new KioskPanel(embeddedApp(app, box), screen.ref ?? '', screen.panel, null);
    kp.card.el.dataset.kiosk = screen.ref ?? '';
    return screen.panel.title;
  }
  if (screen.kind === 'checklist') {
    const answer = screen.answer ?? screen.checklist ?? screen;
    if (Array.isArray(answer.steps)) {
      box.append(...renderChecklist({ bring: [], counters: [], ...answer }, new Set(), null));
      return { ja: S.kindChecklist.ja, en: S.kindChecklist.en };
    }
  }
  if (screen.kind === 'slide') {
    const slide = screen.slide ?? screen;
    const title = asText(slide.title);
    const lines = slide.bullets ?? slide.lines ?? slide.body ?? [];
    const el = document.createElement('div');
    el.className = 'counter-slide';
    if (title) el.append(bi('h4', title));
    const ul = document.createElement('ul');
    for (const line of Array.isArray(lines) ? lines : [lines]) ul.append(bi('li', asText(line)));
    el.append(ul);
    // a slide's picture only from this server's assets
    // a slide's picture is one of this server's assets (a sha256, as the briefing's SlideCanvas)
    const image = String(slide.image ?? '').replace(/^\/assets\//, '');
    if (/^[0-9a-f]{64}$/.test(image)) {
      el.append(Object.assign(document.createElement('img'), { src: `/assets/${image}`, alt: slide.alt ?? title?.ja ?? '' }));
    }
    box.append(el);
    return title ?? S.kindSlide;
  }
  box.append(bi('p', S.screenEmpty, 'counter-muted'));
  return null;
}

/** The handed link: a button that opens it, and its QR code. */
export function renderLink(box, link) {
  box.replaceChildren();
  box.hidden = !link;
  if (!link) return null;
  const url = safeUrl(link.url);
  box.append(bi('h4', S.link));
  const label = asText(link.label) ?? { ja: link.channel ?? '', en: link.channel ?? '' };
  if (url) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'primary counter-link';
    b.dataset.url = url;
    b.append(bi('span', { ja: `${S.openLink.ja}: ${label.ja}`, en: `${S.openLink.en}: ${label.en}` }));
    b.addEventListener('click', () => window.open(url, '_blank', 'noopener'));
    box.append(b);
  } else {
    box.append(bi('p', S.error));
  }
  if (link.qr_svg && url) {
    // As an <img>, the SVG is a picture: nothing in it can run.
    const img = document.createElement('img');
    img.className = 'kiosk-qr counter-qr';
    img.alt = `QR: ${url}`;
    img.width = 160;
    img.height = 160;
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(link.qr_svg)}`;
    box.append(img, bi('p', S.scan, 'counter-muted'));
  }
  return label;
}
