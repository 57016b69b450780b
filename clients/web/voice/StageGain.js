// The gain the server gives a voice from one place to a listener (world/audibility.py: the same
// zone rules and the same Web Audio distance formulas), for a source the server does not relay:
// the briefing's synthesized narration, which each page plays from its asset but hears like a
// live voice from the presenter's spot on the stage.
//
// Speaker in an open place, listener in an open place on the same floor: by distance. Into or out
// of an isolated zone (a booth, a table) or a quiet zone: nothing. A stage reaches its linked
// auditorium at least at the PA gain. The distance gain is the speaker's zone profile's (the
// world default outside every zone), 0 beyond its max_distance and on another floor.

export const PA_GAIN = 0.5; // world/audibility.py PA_GAIN: the auditorium hears the stage at -6 dB

const OPENISH = new Set(['open', 'auditorium', 'stage']);

/** The Web Audio distance gain of `profile` ({model, ref_distance, max_distance, rolloff}) at `d` m. */
export function distanceGain(profile, d) {
  const ref = profile.ref_distance;
  const mx = profile.max_distance;
  const r = profile.rolloff;
  if (profile.model === 'linear') return 1 - (r * (Math.min(Math.max(d, ref), mx) - ref)) / (mx - ref);
  if (profile.model === 'exponential') return (Math.max(d, ref) / ref) ** -r;
  return ref / (ref + r * (Math.max(d, ref) - ref));
}

/**
 * The gain at listener `to` of a voice at `from` (both {floor, x, z}) in `world` (World.js):
 * zone rule × distance gain, as the server computes it for a talking avatar.
 */
export function placeGain(world, from, to) {
  if (!from || !to) return 0;
  const sz = world.zoneAt(from.floor, from.x, from.z);
  const lz = world.zoneAt(to.floor, to.x, to.z);
  const sMode = sz?.audio ?? 'open';
  const lMode = lz?.audio ?? 'open';
  if (sMode === 'quiet' || lMode === 'quiet') return 0;
  const pa = sMode === 'stage' && sz.auditorium && lz?.id === sz.auditorium;
  if (!pa && from.floor !== to.floor) return 0;
  let rule = pa;
  if (!pa) {
    if (sMode === 'isolated' || lMode === 'isolated') rule = sz && lz && sz.id === lz.id;
    else rule = OPENISH.has(sMode) && OPENISH.has(lMode);
  }
  if (!rule) return 0;
  const profile = sz?.profile ?? world.doc?.default_profile;
  const d = Math.hypot(from.x - to.x, from.z - to.z);
  const g = profile && from.floor === to.floor && d <= profile.max_distance ? distanceGain(profile, d) : 0;
  return pa ? Math.max(g, PA_GAIN) : g;
}
