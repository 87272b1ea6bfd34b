/**
 * Content negotiation rules (http://hl7.org/fhir/R4/http.html#mime-type), pure: _format wins over Accept, JSON
 * only, XML and unknown types are 406.
 */
import t from 'tap';
import { FhirError } from '../../src/errors.ts';
import { negotiate } from '../../src/fhir/http/negotiate.ts';

const cases: Array<[string | undefined, string | undefined, string]> = [
  [undefined, undefined, 'application/fhir+json'],
  [undefined, '*/*', 'application/fhir+json'],
  [undefined, 'application/json', 'application/json'],
  [undefined, 'application/fhir+json;q=1.0, application/json+fhir;q=0.9', 'application/fhir+json'],
  [undefined, 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'application/fhir+json'],
  ['json', 'application/fhir+xml', 'application/fhir+json'],
  ['application/fhir json', undefined, 'application/fhir+json'],
  ['application/json', undefined, 'application/json'],
  [undefined, 'application/fhir+xml', '406'],
  ['xml', undefined, '406'],
  ['text/xml', 'application/fhir+json', '406'],
  ['turtle', undefined, '406'],
  [undefined, 'text/csv', '406'],
];

for (const [format, accept, expected] of cases) {
  t.test(`_format=${format} Accept: ${accept}`, async (t) => {
    if (expected === '406') {
      t.throws(() => negotiate(format, accept), FhirError);
      t.throws(() => negotiate(format, accept), { status: 406, code: 'ERR_NOT_ACCEPTABLE' });
    } else {
      t.equal(negotiate(format, accept), expected);
    }
  });
}
