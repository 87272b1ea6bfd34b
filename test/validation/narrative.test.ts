// The XHTML rules of narratives, txt-1 and txt-2 (src/fhir/validation/narrative.ts), and the walker calling them on
// every xhtml element. The official narratives are checked by test/validation/definitions.test.ts and examples.test.ts.
import t, { type Test } from 'tap';
import { createValidator } from '../../src/fhir/validate.ts';
import { NARRATIVE_ELEMENTS, narrativeIssues, XHTML_NS } from '../../src/fhir/validation/narrative.ts';

const PATH = 'Patient.text.div';
/** A div in the XHTML namespace around `inner`. */
const div = (inner: string, attributes = '') => `<div xmlns="${XHTML_NS}"${attributes}>${inner}</div>`;
const diagnostics = (xhtml: string) => narrativeIssues(xhtml, PATH).map((i) => i.diagnostics);

/** Every table row: [what, the div, undefined when valid or what its one diagnostic must match]. */
function check(t: Test, rows: [string, string, RegExp | undefined][]) {
  for (const [what, xhtml, expected] of rows) {
    const found = diagnostics(xhtml);
    if (expected) {
      t.equal(found.length, 1, `${what}: one issue (${found.join(' | ')})`);
      t.match(found[0], expected, `${what}: ${expected}`);
    } else {
      t.same(found, [], `${what} is accepted`);
    }
  }
}

t.test('every element HTML 4.0 chapters 7-13 allows is accepted, each where HTML puts it', async (t) => {
  t.equal(NARRATIVE_ELEMENTS.size, 53);
  for (const name of NARRATIVE_ELEMENTS) t.same(diagnostics(div(`text <${name}/>`)), [], `<${name}/>`);
  check(t, [
    ['a table', div('<table border="1" cellpadding="2"><caption>c</caption><colgroup><col span="2"/></colgroup><thead><tr><th scope="col">h</th></tr></thead><tbody><tr><td colspan="2" nowrap="nowrap">1</td></tr></tbody><tfoot><tr><td>f</td></tr></tfoot></table>'), undefined],
    ['lists', div('<ul><li>a</li></ul><ol><li><p>b</p></li></ol><dl><dt>t</dt><dd>d</dd></dl>'), undefined],
    ['inline text in a paragraph', div('<p><b>b</b> <i>i</i> <em>e</em> <strong>s</strong> <code>c</code> <sub>1</sub><sup>2</sup> <span style="color: red">r</span><br/>x</p>'), undefined],
    ['links and anchors', div('<a name="top">top</a> <a href="http://example.org/a?b=c#d" title="t">l</a> <a href="#top">up</a> <a href="mailto:a@example.org">m</a>'), undefined],
    ['an image', div('<img src="#photo" alt="photo" width="10" height="10"/>'), undefined],
    ['a data: image', div('<img src="data:image/png;base64,iVBORw0KGgo=" alt="x"/>'), undefined],
    ['an image map', div('<img src="#m" usemap="#map"/><map name="map"><area shape="rect" coords="0,0,1,1" href="#a" alt="a"/></map>'), undefined],
    ['quotes', div('<blockquote cite="http://example.org">q</blockquote><q cite="http://example.org">q</q>'), undefined],
    ['global attributes', div('<p id="a" class="c" title="t" lang="en" xml:lang="en" dir="ltr" style="margin: 0" accesskey="k" tabindex="1">x</p>'), undefined],
    ['xml:space on pre', div('<pre xml:space="preserve" space="preserve">  x  </pre>'), undefined],
    ['a comment', div('<!-- generated -->x'), undefined],
    ['an XML declaration', `<?xml version="1.0" encoding="UTF-8"?>${div('x')}`, undefined],
    ['whitespace around the root', `\n  ${div('x')}\n`, undefined],
    ['a CDATA section', div('<![CDATA[a < b]]>'), undefined],
  ]);
});

t.test('elements narratives may not hold', async (t) => {
  const forbidden = [
    'script', 'style', 'head', 'body', 'html', 'title', 'meta', 'link', 'base', // documents, scripts and stylesheets
    'form', 'input', 'button', 'select', 'option', 'textarea', 'label', 'fieldset', // forms
    'frame', 'frameset', 'iframe', 'noframes', 'object', 'embed', 'applet', 'param', // frames and objects
    'font', 'center', 'u', 's', 'strike', 'basefont', 'dir', 'menu', 'isindex', // deprecated
    'ins', 'del', // HTML 4.0 §9.4
    'svg', 'math', 'video', 'audio', 'canvas', 'section', 'nav', 'details', // not HTML 4.0
  ];
  for (const name of forbidden) {
    t.same(diagnostics(div(`x<${name}>y</${name}>`)), [`${PATH}: <${name}> is not allowed in a narrative: only the basic HTML formatting elements are (txt-1)`], `<${name}>`);
  }
  check(t, [
    ['XML names are case-sensitive: <P> is no XHTML element', div('<P>x</P>'), /<P> is not allowed/],
    ['a script nested deep', div('<table><tr><td><p><span><script>alert(1)</script></span></p></td></tr></table>x'), /<script> is not allowed/],
  ]);
  const issues = narrativeIssues(div('<script>alert(1)</script>'), PATH);
  t.same(issues.map((i) => [i.severity, i.code, i.expression]), [['error', 'invariant', [PATH]]], 'an error on the div');
});

t.test('attributes: the allowed ones, on the right elements; no event handlers, no script URLs', async (t) => {
  check(t, [
    ['onclick', div('<p onclick="x()">hi</p>'), /^Patient\.text\.div: the event attribute onclick on <p> is not allowed in a narrative \(txt-1\)$/],
    ['onload on the root', div('x', ' onload="x()"'), /event attribute onload on <div>/],
    ['onmouseover on an image', div('<img src="#a" onmouseover="x()"/>'), /event attribute onmouseover on <img>/],
    ['an event attribute in capitals', div('<p ONCLICK="x()">hi</p>'), /event attribute ONCLICK on <p>/],
    ['href on a paragraph', div('<p href="http://example.org">x</p>'), /the attribute href on <p> is not allowed/],
    ['src on a span', div('<span src="x.js">x</span>'), /the attribute src on <span>/],
    ['target on a link', div('<a href="#a" target="_blank">x</a>'), /the attribute target on <a>/],
    ['an unknown attribute', div('<p data-x="1">x</p>'), /the attribute data-x on <p>/],
    ['xlink:href', div('<a xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="#a">x</a>'), /the attribute xlink:href on <a>/],
    ['javascript: href', div('<a href="javascript:alert(1)">x</a>'), /the href of <a> is a script URL \('javascript:alert\(1\)'\): a narrative holds no scripts \(txt-1\)/],
    ['JavaScript: in capitals', div('<a href="JavaScript:alert(1)">x</a>'), /script URL/],
    ['javascript: after spaces', div('<a href="  javascript:alert(1)">x</a>'), /script URL/],
    ['javascript: split by a tab', div('<a href="java&#x09;script:alert(1)">x</a>'), /script URL/],
    ['vbscript:', div('<a href="vbscript:msgbox(1)">x</a>'), /script URL/],
    ['javascript: in an image source', div('<img src="javascript:alert(1)"/>'), /the src of <img> is a script URL/],
    ['javascript: in an area', div('<map name="m"><area href="javascript:alert(1)" alt="a"/></map>x'), /the href of <area> is a script URL/],
    ['javascript: in a cite', div('<q cite="javascript:alert(1)">x</q>'), /the cite of <q> is a script URL/],
    ['a link to a page named javascript', div('<a href="http://example.org/javascript:x">x</a>'), undefined],
    ['the word javascript in a title', div('<p title="javascript:alert(1)">x</p>'), undefined],
    ['namespace declarations', div('<p xmlns:x="urn:x">x</p>'), undefined],
  ]);
});

t.test('namespaces: an XHTML div at the root, nothing foreign inside', async (t) => {
  check(t, [
    ['no namespace', '<div>hi<p>x</p></div>', /^Patient\.text\.div: the root element must be a div in the XHTML namespace \(<div xmlns="http:\/\/www\.w3\.org\/1999\/xhtml">\), not <div> in no namespace$/],
    ['another namespace', '<div xmlns="http://www.w3.org/2000/svg">x</div>', /not <div> in the namespace 'http:\/\/www\.w3\.org\/2000\/svg'/],
    ['a root that is not a div', `<p xmlns="${XHTML_NS}">x</p>`, /not <p> in the namespace/],
    ['a prefixed XHTML div', `<h:div xmlns:h="${XHTML_NS}"><h:p>x</h:p></h:div>`, undefined],
    ['XHTML declared again inside', div(`<p xmlns="${XHTML_NS}">x</p>`), undefined],
    ['MathML inside', div('x<m:math xmlns:m="http://www.w3.org/1998/Math/MathML">1</m:math>'), /<m:math> is in the namespace 'http:\/\/www\.w3\.org\/1998\/Math\/MathML': a narrative holds only XHTML \(txt-1\)/],
    ['an element in no namespace inside', div('x<p xmlns="">y</p>'), /<p> is in the namespace '\(none\)'/],
    ['an unbound prefix', div('<x:p>y</x:p>'), /not well-formed XHTML \(.*unbound namespace prefix/],
  ]);
  t.same(diagnostics(div('x<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')), [
    `${PATH}: <svg> is in the namespace 'http://www.w3.org/2000/svg': a narrative holds only XHTML (txt-1)`,
    `${PATH}: <script> is in the namespace 'http://www.w3.org/2000/svg': a narrative holds only XHTML (txt-1)`,
  ], 'SVG, and the script inside it');
});

t.test('entities: XML’s five, numeric references and the HTML named ones', async (t) => {
  check(t, [
    ['&nbsp;', div('a&nbsp;b'), undefined],
    ['XML’s five', div('&amp; &lt; &gt; &quot; &apos;'), undefined],
    ['HTML 4 names', div('&eacute; &copy; &mdash; &hellip; &euro; &alpha; &rarr; &le; &deg; &times;'), undefined],
    ['HTML5 names the Java validator also knows', div('&NotEqualTilde; &Afr; &nbsp;'), undefined],
    ['numeric references', div('&#160; &#xA0; &#x1F600;'), undefined],
    ['an entity in an attribute', div('<p title="a&nbsp;b &amp; c">x</p>'), undefined],
    ['an unknown name', div('a &foo; b'), /^Patient\.text\.div is not well-formed XHTML \(1:\d+: undefined entity &foo;: it is neither an XML nor an HTML named character reference\)$/],
    ['an unknown name in an attribute', div('<p title="&bar;">x</p>'), /undefined entity &bar;/],
    ['names are case-sensitive', div('&NBSP;'), /undefined entity &NBSP;/],
    ['a bare ampersand', div('a & b'), /not well-formed XHTML/],
    ['a reference to no character', div('&#0;'), /not well-formed XHTML/],
  ]);
});

t.test('txt-2: some text or an image', async (t) => {
  const empty = /^Patient\.text\.div: the narrative has no content: it needs some text or an image \(txt-2\)$/;
  check(t, [
    ['an empty div', div(''), empty],
    ['a self-closed div', `<div xmlns="${XHTML_NS}"/>`, empty],
    ['whitespace only', div('\n   \t '), empty],
    ['empty elements', div('<p> </p><br/><table><tr><td/></tr></table>'), empty],
    ['a comment only', div('<!-- nothing -->'), empty],
    ['an image only', div('<img src="#a"/>'), undefined],
    ['one character deep down', div('<table><tr><td><span>.</span></td></tr></table>'), undefined],
    ['a no-break space (not whitespace to XML, as to the Java validator)', div('&nbsp;'), undefined],
  ]);
  const issues = narrativeIssues(div(''), PATH);
  t.same(issues.map((i) => [i.severity, i.code, i.expression]), [['error', 'invariant', [PATH]]]);
});

t.test('well-formedness', async (t) => {
  const malformed = /^Patient\.text\.div is not well-formed XHTML \(\d+:\d+: .+\)$/;
  check(t, [
    ['plain text', 'not xhtml', malformed],
    ['an empty string', '', malformed],
    ['HTML’s unclosed <br>', div('<p>a<br>b</p>'), malformed],
    ['an unclosed element', div('<p>x'), malformed],
    ['crossed elements', div('<b><i>x</b></i>'), malformed],
    ['two roots', div('x') + div('y'), malformed],
    ['text after the root', `${div('x')}y`, malformed],
    ['a bare <', div('a < b'), malformed],
    ['an unquoted attribute', div('<p class=a>x</p>'), malformed],
    ['a repeated attribute', div('<p class="a" class="b">x</p>'), malformed],
    ['a control character', div('a\u0001b'), malformed],
    ['a DOCTYPE', `<!DOCTYPE div>${div('x')}`, /^Patient\.text\.div: a narrative cannot have a DOCTYPE: it is a div, not a document$/],
    ['a processing instruction', div('x<?php echo 1; ?>'), /the processing instruction <\?php\?> is not allowed in a narrative \(txt-1\)/],
  ]);
  const [issue] = narrativeIssues('not xhtml', PATH);
  t.same([issue?.severity, issue?.code, issue?.expression], ['error', 'value', [PATH]]);
  t.match(issue?.diagnostics, /1:9: text data outside of root node/, 'saxes says where');
});

t.test('a paragraph holds no block elements (HTML 4.0 §9.3.1)', async (t) => {
  for (const block of ['div', 'p', 'ul', 'ol', 'table', 'blockquote']) {
    t.same(diagnostics(div(`<p>a<${block}/></p>`)), [`${PATH}: <${block}> cannot be inside a <p>: a paragraph holds no block elements (txt-1)`], `<p><${block}>`);
  }
  check(t, [
    ['deep inside', div('<p><span><b><ul><li>x</li></ul></b></span></p>'), /<ul> cannot be inside a <p>/],
    ['after the paragraph closed', div('<p>a</p><div>b</div>'), undefined],
    ['a paragraph in a list item', div('<ul><li><p>a</p></li></ul>'), undefined],
    ['a paragraph in a table cell', div('<table><tr><td><p>a</p><p>b</p></td></tr></table>'), undefined],
  ]);
});

t.test('many issues: each once, at most ten', async (t) => {
  t.equal(diagnostics(div('<script>1</script><script>2</script>x')).length, 1, 'the same issue once');
  const many = Array.from({ length: 30 }, (_, i) => `<x${i}/>`).join('');
  t.equal(diagnostics(div(`x${many}`)).length, 10);
  const long = 'y'.repeat(5000);
  const [message] = diagnostics(div(`x<${long}/>`));
  t.ok(message!.length < 200, 'a long name is cut short');
});

t.test('the validator checks every narrative, wherever it is', async (t) => {
  const validator = createValidator();
  const script = { status: 'generated', div: div('<script>alert(1)</script>') };
  const issues = (resource: unknown) => validator.validate(resource).filter((i) => i.severity === 'error').map((i) => [i.code, i.expression?.[0]]);
  t.same(issues({ resourceType: 'Patient', text: script }), [['invariant', 'Patient.text.div']]);
  t.same(issues({ resourceType: 'Patient', text: { status: 'generated', div: div('ok') } }), [], 'a valid narrative');
  t.same(
    issues({ resourceType: 'Parameters', parameter: [{ name: 'p', resource: { resourceType: 'Patient', text: script } }] }),
    [['invariant', 'Parameters.parameter[0].resource.text.div']],
    'in a resource inside another',
  );
  t.same(
    issues({ resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: 'http://example.org/Patient/1', resource: { resourceType: 'Patient', text: { status: 'generated', div: 'not xhtml' } } }] }),
    [['value', 'Bundle.entry[0].resource.text.div']],
    'in a Bundle entry',
  );
  t.notOk(validator.skippedInvariants.has('txt-1'), 'txt-1 is no longer skipped');
  t.notOk(validator.skippedInvariants.has('txt-2'), 'txt-2 is no longer skipped');
});
