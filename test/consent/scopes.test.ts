/** The minimal SMART scope reading (v1 and v2) and the auditor decision, table-driven. */
import t from 'tap';
import { mayAudit } from '../../src/consent/auditor.ts';
import { grants, parseResourceScope } from '../../src/consent/scopes.ts';

t.test('parseResourceScope reads v1 and v2 forms', async (t) => {
  const table: Array<[string, unknown]> = [
    ['system/AuditEvent.rs', { context: 'system', resourceType: 'AuditEvent', letters: 'rs', granular: false }],
    ['system/AuditEvent.read', { context: 'system', resourceType: 'AuditEvent', letters: 'rs', granular: false }],
    ['system/*.cruds', { context: 'system', resourceType: '*', letters: 'cruds', granular: false }],
    ['user/*.*', { context: 'user', resourceType: '*', letters: 'cruds', granular: false }],
    ['patient/Observation.write', { context: 'patient', resourceType: 'Observation', letters: 'cud', granular: false }],
    ['patient/Observation.rs?category=laboratory', { context: 'patient', resourceType: 'Observation', letters: 'rs', granular: true }],
    ['system/AuditEvent.sr', undefined],
    ['system/AuditEvent.rr', undefined],
    ['system/AuditEvent.', undefined],
    ['openid', undefined],
    ['launch/patient', undefined],
    ['admin/AuditEvent.rs', undefined],
  ];
  for (const [token, expected] of table) t.same(parseResourceScope(token), expected, token);
});

t.test('grants: every letter asked, by one context, whole type only', async (t) => {
  const table: Array<[string[], string, string, boolean]> = [
    [['system/AuditEvent.rs'], 'AuditEvent', 'rs', true],
    [['system/AuditEvent.read'], 'AuditEvent', 'rs', true],
    [['system/*.rs'], 'AuditEvent', 'rs', true],
    [['system/*.read'], 'AuditEvent', 'rs', true],
    [['system/*.cruds'], 'AuditEvent', 'rs', true],
    [['system/AuditEvent.r', 'system/AuditEvent.s'], 'AuditEvent', 'rs', true],
    [['system/AuditEvent.r'], 'AuditEvent', 'rs', false],
    [['system/Patient.rs'], 'AuditEvent', 'rs', false],
    [['user/AuditEvent.rs'], 'AuditEvent', 'rs', false],
    [['patient/*.cruds'], 'AuditEvent', 'rs', false],
    [['system/AuditEvent.rs?agent=x'], 'AuditEvent', 'rs', false],
    [['system/AuditEvent.cud'], 'AuditEvent', 'rs', false],
    [[], 'AuditEvent', 'rs', false],
  ];
  for (const [scopes, type, letters, expected] of table) t.equal(grants(scopes, type, letters), expected, `${scopes.join(' ')} → ${type}.${letters}`);
  t.ok(grants(['user/AuditEvent.rs'], 'AuditEvent', 'rs', ['user', 'system']), 'contexts can be widened by the caller');
});

t.test('mayAudit: the auditor role or an AuditEvent read scope', async (t) => {
  t.ok(mayAudit({ scopes: [], claims: { roles: ['auditor'] } }));
  t.ok(mayAudit({ scopes: [], claims: { roles: 'clerk auditor' } }));
  t.notOk(mayAudit({ scopes: [], claims: { roles: ['clerk'] } }));
  t.notOk(mayAudit({ scopes: ['system/Patient.rs'], claims: {} }));
  t.ok(mayAudit({ scopes: ['system/AuditEvent.read'], claims: {} }));
});
