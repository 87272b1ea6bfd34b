/**
 * replacePlaceholders (references.ts), the transaction's reference rewrite: what it replaces, and that it never
 * writes into its input (a failed transaction may be retried with the same entries), copying only the way to a
 * replaced value.
 */
import t from 'tap';
import { replacePlaceholders } from '../../src/fhir/references.ts';
import { createValidator } from '../../src/fhir/validate.ts';

const { model } = createValidator();

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const ids = new Map([
  ['urn:uuid:p', 'Patient/1'],
  ['urn:uuid:b', 'Binary/2'],
]);
const rewrite = <T>(resource: T) =>
  replacePlaceholders(resource, model, (reference) => ids.get(reference), (urn) => ids.get(urn));

t.test('references, uri placeholders and narrative links are replaced; strings that are data are not', async (t) => {
  const input = deepFreeze({
    resourceType: 'DocumentReference',
    status: 'current',
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><a href="urn:uuid:p">p</a></div>' },
    identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:uuid:p' }],
    subject: { reference: 'urn:uuid:p', display: 'urn:uuid:p' },
    content: [{ attachment: { url: 'urn:uuid:b', title: 'urn:uuid:b' } }],
    contained: [{ resourceType: 'Patient', id: 'c', link: [{ other: { reference: 'urn:uuid:p' }, type: 'seealso' }] }],
  });
  const out = rewrite(input);
  t.equal(out.subject.reference, 'Patient/1');
  t.equal(out.subject.display, 'urn:uuid:p', 'a display is data');
  t.equal(out.content[0]!.attachment.url, 'Binary/2', 'an attachment url (type url) names a Binary entry');
  t.equal(out.content[0]!.attachment.title, 'urn:uuid:b', 'a title is data');
  t.equal(out.identifier[0]!.value, 'urn:uuid:p', 'an identifier value is data');
  t.match(out.text.div, /href="Patient\/1"/);
  t.equal(out.contained[0]!.link[0]!.other.reference, 'Patient/1', 'inside a contained resource too');
  t.equal(input.subject.reference, 'urn:uuid:p', 'the input is untouched (it is frozen: a write would have thrown)');
  t.equal(out.identifier, input.identifier, 'what holds no replacement is shared, not copied');
  t.not(out.subject, input.subject, 'what does is a copy');
});

t.test('nothing to replace: the very same object comes back', async (t) => {
  const input = deepFreeze({
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'x' },
    subject: { reference: 'Patient/9' },
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">no links</div>' },
  });
  t.equal(rewrite(input), input);
  t.equal(rewrite('not an object'), 'not an object');
});
