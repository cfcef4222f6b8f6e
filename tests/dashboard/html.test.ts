import { escapeHtml, html, toHtmlString, unsafeRaw } from '../../apps/api/src/dashboard/html';

describe('dashboard html`` template', () => {
  it('escapes every interpolated value by default', () => {
    const hostile = `"><script>alert('x')</script>\`&`;
    const out = toHtmlString(html`<input value="${hostile}"><p>${hostile}</p>`);
    expect(out).toBe(
      '<input value="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&#96;&amp;"><p>&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&#96;&amp;</p>',
    );
    expect(out).not.toContain('<script>');
  });

  it('nests templates without double-escaping and escapes inside arrays', () => {
    const items = ['a<b', 'c&d'].map((text) => html`<li>${text}</li>`);
    expect(toHtmlString(html`<ul>${items}</ul>`)).toBe('<ul><li>a&lt;b</li><li>c&amp;d</li></ul>');
  });

  it('renders null, undefined and false as nothing but keeps 0', () => {
    expect(toHtmlString(html`[${null}${undefined}${false}${0}]`)).toBe('[0]');
  });

  it('does not treat look-alike objects as safe markup', () => {
    const forged = { value: '<b>bold</b>' };
    expect(toHtmlString(html`${forged}`)).toBe('[object Object]');
    expect(toHtmlString(html`${unsafeRaw('<b>bold</b>')}`)).toBe('<b>bold</b>');
  });

  it('escapeHtml covers the five HTML-significant characters and the backtick', () => {
    expect(escapeHtml(`&<>"'\``)).toBe('&amp;&lt;&gt;&quot;&#39;&#96;');
  });
});
