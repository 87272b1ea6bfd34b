/**
 * Content negotiation (http://hl7.org/fhir/R4/http.html#mime-type): `_format` wins over Accept. This server
 * speaks JSON only; asking for XML (or anything else it cannot produce) is answered 406.
 */
import { errors } from '../../errors.ts';

export type ResponseType = 'application/fhir+json' | 'application/json';

const FORMAT_ALIASES: Record<string, ResponseType | 'xml'> = {
  json: 'application/fhir+json',
  'application/json': 'application/json',
  'application/fhir+json': 'application/fhir+json',
  'application/json+fhir': 'application/fhir+json',
  xml: 'xml',
  'text/xml': 'xml',
  'application/xml': 'xml',
  'application/fhir+xml': 'xml',
  'application/xml+fhir': 'xml',
};

export function negotiate(format: string | undefined, accept: string | undefined): ResponseType {
  if (format !== undefined) {
    // An unencoded '+' in the query string arrives as a space (application/fhir json).
    const wanted = FORMAT_ALIASES[format.split(';')[0]!.trim().toLowerCase().replace(/ /g, '+')];
    if (wanted === 'xml') throw errors.notAcceptable('XML is not supported by this server: use _format=json (application/fhir+json)');
    if (!wanted) throw errors.notAcceptable(`_format '${format.slice(0, 60)}' is not supported: use json`);
    return wanted;
  }
  if (!accept) return 'application/fhir+json';
  const ranges = mediaRanges(accept);
  if (ranges.includes('application/fhir+json') || ranges.includes('application/json+fhir')) return 'application/fhir+json';
  if (ranges.includes('application/json')) return 'application/json';
  if (ranges.some((r) => r === '*/*' || r === 'application/*')) return 'application/fhir+json';
  if (ranges.some((r) => r.includes('xml'))) {
    throw errors.notAcceptable('XML is not supported by this server: ask for application/fhir+json');
  }
  throw errors.notAcceptable(`None of the accepted types (${accept.slice(0, 100)}) can be produced: this server answers application/fhir+json`);
}

/** A bulk export file is NDJSON whatever the client asks, unless it asks for something else only (406). */
export function negotiateNdjson(accept: string | undefined): void {
  if (!accept) return;
  const ranges = mediaRanges(accept);
  if (ranges.some((r) => ['application/fhir+ndjson', 'application/ndjson', 'application/*', '*/*'].includes(r))) return;
  throw errors.notAcceptable(`A bulk export file is application/fhir+ndjson; the accepted types (${accept.slice(0, 100)}) do not include it`);
}

/** The media types an Accept header lists, parameters (q, charset, fhirVersion) dropped, lowercased. */
function mediaRanges(accept: string): string[] {
  return accept.split(',').map((part) => part.split(';')[0]!.trim().toLowerCase());
}

export function isPretty(pretty: string | undefined): boolean {
  return pretty === 'true';
}
