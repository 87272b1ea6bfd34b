/**
 * The rules of a narrative's XHTML (http://hl7.org/fhir/R4/narrative.html#xhtml), the Narrative invariants txt-1
 * and txt-2 whose FHIRPath `htmlChecks()` the fhirpath package does not implement: the div is well-formed XML
 * whose root is a `div` in the XHTML namespace; it holds only the basic HTML formatting elements and attributes
 * (no head or body, scripts, forms, frames, objects, stylesheets, event attributes); and it has some content.
 *
 * The element and attribute lists are those the HL7 Java validator enforces (its XhtmlValidator), so a narrative
 * it accepts is accepted here, with one exception: a `javascript:` URL, which it lets through and this rejects as
 * the script it is. Like it, this accepts the HTML named character references (`&nbsp;`, `&eacute;`) that
 * narratives written as XML or HTML use, although XML alone knows only five. Pure: a string in, issues out.
 */
import { characterEntities } from 'character-entities';
import { SaxesParser } from 'saxes';
import type { SaxesTagNS } from 'saxes';
import type { Issue } from '../../errors.ts';
import { quote } from './primitives.ts';

export const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** HTML 4.0 chapters 7-11 (except 9.4, ins/del), 12 (a) and 13 (img, map, area), as narrative.html allows. */
export const NARRATIVE_ELEMENTS: ReadonlySet<string> = new Set([
  'p', 'br', 'div', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'a', 'span', 'b', 'em', 'i', 'strong', 'small', 'big', 'tt',
  'dfn', 'q', 'var', 'abbr', 'acronym', 'cite', 'blockquote', 'hr', 'address', 'bdo', 'kbd', 'sub', 'sup', 'ul',
  'ol', 'li', 'dl', 'dt', 'dd', 'pre', 'table', 'caption', 'colgroup', 'col', 'thead', 'tr', 'tfoot', 'tbody', 'th',
  'td', 'code', 'samp', 'img', 'map', 'area',
]);

/** Attributes allowed on every element: the core and i18n ones, internal style, and those of table cells. */
export const NARRATIVE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'title', 'style', 'class', 'id', 'lang', 'xml:lang', 'dir', 'accesskey', 'tabindex',
  'span', 'width', 'align', 'valign', 'char', 'charoff', 'abbr', 'axis', 'headers', 'scope', 'rowspan', 'colspan',
  // xml:space="preserve" is harmless; the Java validator only hints at it.
  'xml:space',
]);

/** Attributes allowed on one element only, as `element.attribute`. */
export const NARRATIVE_ELEMENT_ATTRIBUTES: ReadonlySet<string> = new Set([
  'a.href', 'a.name', 'a.charset', 'a.type', 'a.hreflang', 'a.rel', 'a.rev', 'a.shape', 'a.coords',
  'img.src', 'img.border', 'img.alt', 'img.longdesc', 'img.height', 'img.width', 'img.usemap', 'img.ismap',
  'blockquote.cite', 'q.cite', 'map.name', 'area.shape', 'area.coords', 'area.href', 'area.nohref', 'area.alt',
  'table.summary', 'table.width', 'table.border', 'table.frame', 'table.rules', 'table.cellspacing',
  'table.cellpadding', 'pre.space', 'td.nowrap',
]);

/** Block elements, which a paragraph cannot hold (HTML 4.0 §9.3.1: P cannot contain block-level elements). */
const BLOCKS = new Set(['div', 'blockquote', 'table', 'ol', 'ul', 'p']);

/** Attributes holding a URL that a browser follows or loads. */
const URL_ATTRIBUTES = new Set(['href', 'src', 'cite', 'longdesc']);

/**
 * A `javascript:` (or `vbscript:`) URL runs a script when followed, and narratives hold no scripts. Browsers drop
 * leading control characters and spaces and tabs or newlines anywhere in the scheme, so those are ignored too.
 */
const SCRIPT_URL = /^(java|vb)script:/;
const isScriptUrl = (url: string) => SCRIPT_URL.test(url.replace(/[\u0000-\u0020]/g, '').toLowerCase());

/** The HTML named character references (`nbsp` → U+00A0), with XML's five; built once, read by every parser. */
const ENTITIES: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, characterEntities);

/** At most this many issues for one div: enough to fix it, not a page per tag of a hostile one. */
const MAX_ISSUES = 10;

/** A name as messages show it: cut short, so an outcome never echoes a whole payload. */
const cut = (name: string) => (name.length > 40 ? `${name.slice(0, 40)}…` : name);

/** Every way the XHTML `div` (found at `path`, e.g. `Patient.text.div`) breaks the narrative rules. */
export function narrativeIssues(div: string, path: string): Issue[] {
  const issues: Issue[] = [];
  const report = (code: Issue['code'], diagnostics: string) => {
    if (issues.length < MAX_ISSUES && !issues.some((i) => i.diagnostics === diagnostics)) {
      issues.push({ severity: 'error', code, diagnostics, expression: [path] });
    }
  };

  const parser = new SaxesParser({ xmlns: true, position: true });
  parser.ENTITIES = ENTITIES;
  /** The root's namespace: a descendant in another one is foreign markup (a root outside XHTML is reported once). */
  let rootUri: string | undefined;
  /** Names of the open elements, the root first, and how many of them are paragraphs. */
  const open: string[] = [];
  let paragraphs = 0;
  let content = false;

  parser.on('doctype', () => report('value', `${path}: a narrative cannot have a DOCTYPE: it is a div, not a document`));
  parser.on('processinginstruction', (pi) => {
    report('invariant', `${path}: the processing instruction <?${cut(pi.target)}?> is not allowed in a narrative (txt-1)`);
  });
  parser.on('opentag', (tag: SaxesTagNS) => {
    const name = tag.local;
    if (rootUri === undefined) {
      rootUri = tag.uri;
      if (name !== 'div' || tag.uri !== XHTML_NS) {
        const where = tag.uri ? `in the namespace ${quote(tag.uri)}` : 'in no namespace';
        report('value', `${path}: the root element must be a div in the XHTML namespace (<div xmlns="${XHTML_NS}">), not <${cut(tag.name)}> ${where}`);
      }
    } else if (tag.uri !== rootUri) {
      report('invariant', `${path}: <${cut(tag.name)}> is in the namespace ${quote(tag.uri || '(none)')}: a narrative holds only XHTML (txt-1)`);
    } else if (!NARRATIVE_ELEMENTS.has(name)) {
      report('invariant', `${path}: <${cut(name)}> is not allowed in a narrative: only the basic HTML formatting elements are (txt-1)`);
    } else if (paragraphs > 0 && BLOCKS.has(name)) {
      report('invariant', `${path}: <${name}> cannot be inside a <p>: a paragraph holds no block elements (txt-1)`);
    }
    for (const attribute of Object.values(tag.attributes)) {
      const an = attribute.name;
      if (an.startsWith('xmlns')) continue; // namespace declarations: what they bind is checked on the elements
      if (!NARRATIVE_ATTRIBUTES.has(an) && !NARRATIVE_ELEMENT_ATTRIBUTES.has(`${name}.${an}`)) {
        const what = /^on/i.test(an) ? 'the event attribute' : 'the attribute';
        report('invariant', `${path}: ${what} ${cut(an)} on <${cut(name)}> is not allowed in a narrative (txt-1)`);
      } else if (URL_ATTRIBUTES.has(an) && isScriptUrl(attribute.value)) {
        report('invariant', `${path}: the ${an} of <${name}> is a script URL (${quote(attribute.value, 40)}): a narrative holds no scripts (txt-1)`);
      }
    }
    if (name === 'img') content = true;
    if (name === 'p') paragraphs++;
    open.push(name);
  });
  parser.on('closetag', () => {
    if (open.pop() === 'p') paragraphs--;
  });
  // txt-2 as the Java validator reads it: some text that is more than whitespace and control characters.
  const text = (t: string) => {
    if (!content && /[^\u0000-\u0020]/.test(t)) content = true;
  };
  parser.on('text', text);
  parser.on('cdata', text);

  try {
    parser.write(div).close();
  } catch (e) {
    // saxes stops at the first well-formedness error and says where: "1:12: unclosed tag: p".
    let why = (e as Error).message;
    if (why.endsWith('undefined entity.')) {
      // It does not say which one; it stopped just past it.
      const entity = div.slice(div.lastIndexOf('&', parser.position), parser.position);
      if (/^&[^&;]{1,40};$/.test(entity)) why = `${why.slice(0, -1)} ${entity}: it is neither an XML nor an HTML named character reference`;
    }
    const diagnostics = `${path} is not well-formed XHTML (${why.length > 200 ? `${why.slice(0, 200)}…` : why})`;
    return [{ severity: 'error', code: 'value', diagnostics, expression: [path] }];
  }
  if (!content) report('invariant', `${path}: the narrative has no content: it needs some text or an image (txt-2)`);
  return issues;
}
