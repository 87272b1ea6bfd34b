/**
 * matchesEntries decides a parsed search on one resource's plaintext index entries, as the engine decides it on a
 * stored, decrypted candidate: each case here is also asked of a real store in test/fhir/bundle-conditional.test.ts.
 */
import t from 'tap';
import { extractEntries } from '../../src/fhir/search/extract.ts';
import { matchesEntries } from '../../src/fhir/search/memory-match.ts';
import { parseSearch } from '../../src/fhir/search/params.ts';

const patient = {
  resourceType: 'Patient',
  id: 'p1',
  identifier: [{ system: 'http://hospital.example/mrn', value: 'MRN-7' }],
  name: [{ family: 'Nakamura', given: ['Aiko'] }],
  gender: 'female',
  birthDate: '1984-06-02',
};
const entries = extractEntries(patient);
const matches = (query: Record<string, string>) =>
  matchesEntries(parseSearch('Patient', Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]]))).filters, entries);

t.test('tokens, strings, dates, :not and :missing, as the engine reads them', async (t) => {
  const yes: Array<Record<string, string>> = [
    { identifier: 'http://hospital.example/mrn|MRN-7' },
    { identifier: 'MRN-7' },
    { identifier: 'http://hospital.example/mrn|' },
    { identifier: 'other|x,http://hospital.example/mrn|MRN-7' },
    { family: 'naka' },
    { name: 'AIKO' },
    { 'family:exact': 'Nakamura' },
    { birthdate: 'ge1984-01-01' },
    { birthdate: '1984-06' },
    { 'gender:not': 'male' },
    { 'email:missing': 'true' },
    { 'birthdate:missing': 'false' },
    { _id: 'p1' },
    { identifier: 'MRN-7', gender: 'female' },
  ];
  for (const query of yes) t.equal(matches(query), true, JSON.stringify(query));
  const no: Array<Record<string, string>> = [
    { identifier: 'http://hospital.example/mrn|MRN-8' },
    { identifier: 'http://elsewhere.example/mrn|MRN-7' },
    { family: 'mura' },
    { 'family:exact': 'nakamura' },
    { birthdate: 'lt1984-06-02' },
    { 'gender:not': 'female' },
    { 'email:missing': 'false' },
    { _id: 'p2' },
    { identifier: 'MRN-7', gender: 'male' },
  ];
  for (const query of no) t.equal(matches(query), false, JSON.stringify(query));
});

t.test('what needs other resources is undecided, unless another filter already fails', async (t) => {
  t.equal(matches({ 'general-practitioner:Practitioner.name': 'x' }), undefined, 'a chain');
  t.equal(matches({ '_has:Observation:patient:code': '1234-5' }), undefined, '_has');
  t.equal(matches({ 'general-practitioner:Practitioner.name': 'x', gender: 'male' }), false, 'AND with a failing filter');
});

t.test(':missing on a reference counts a Reference that holds only an identifier, as the engine does', async (t) => {
  const observation = (subject?: object) => {
    const resource = { resourceType: 'Observation', id: 'o1', status: 'final', code: { coding: [{ code: '8480-6' }] }, ...(subject ? { subject } : {}) };
    return extractEntries(resource);
  };
  const byIdentifier = observation({ identifier: { system: 'urn:x', value: '1' } });
  const none = observation();
  const ask = (query: Record<string, string>, entries: ReturnType<typeof extractEntries>) =>
    matchesEntries(parseSearch('Observation', Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]]))).filters, entries);
  t.equal(ask({ 'subject:identifier': 'urn:x|1' }, byIdentifier), true);
  for (const code of ['subject', 'patient']) {
    t.equal(ask({ [`${code}:missing`]: 'false' }, byIdentifier), true, `${code}:missing=false, identifier only`);
    t.equal(ask({ [`${code}:missing`]: 'true' }, byIdentifier), false, `${code}:missing=true, identifier only`);
    t.equal(ask({ [`${code}:missing`]: 'true' }, none), true, `${code}:missing=true, no subject`);
    t.equal(ask({ [`${code}:missing`]: 'false' }, none), false, `${code}:missing=false, no subject`);
  }
});
