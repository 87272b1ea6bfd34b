/**
 * Who may read the audit log (the auditor API and the AuditEvent view): a token with the `auditor` role (RFC 9068
 * §2.2.3.1 `roles` claim, an array of strings, or a space-separated string) or one that grants reading and
 * searching AuditEvent to a backend service (`system/AuditEvent.rs`, `.read`, `system/*.rs`, …). Pure.
 */
import type { Principal } from './principal.ts';
import { grants } from './scopes.ts';

export const AUDITOR_ROLE = 'auditor';

export function hasRole(principal: Pick<Principal, 'claims'>, role: string): boolean {
  const roles = principal.claims.roles;
  if (Array.isArray(roles)) return roles.includes(role);
  if (typeof roles === 'string') return roles.split(' ').includes(role);
  return false;
}

export function mayAudit(principal: Pick<Principal, 'claims' | 'scopes'>): boolean {
  return hasRole(principal, AUDITOR_ROLE) || grants(principal.scopes, 'AuditEvent', 'rs');
}
