// Roles, weakest first: viewer (reads, exports) < editor (writes, imports) < admin (everything).
export const ROLES = ['viewer', 'editor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(v: string): v is Role {
  return (ROLES as readonly string[]).includes(v);
}

export function atLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** The weaker of two roles: a token never carries more than its user has now. */
export function weaker(a: Role, b: Role): Role {
  return ROLES.indexOf(a) <= ROLES.indexOf(b) ? a : b;
}

/** "90d", "12h", "30m", "1w" -> milliseconds; undefined when it is not a duration. */
export function parseDuration(value: string): number | undefined {
  const m = /^(\d+)([mhdw])$/.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
}
