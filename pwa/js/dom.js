// A tiny element builder. Text is always set as text, never parsed as HTML.

/**
 * h('button#save.primary', {onclick, type: 'button', dataset: {id}}, 'Save', child, ...)
 * Attributes starting with "on" become listeners; null/false children are skipped.
 * The attributes object may be left out.
 */
export function h(spec, attrs = {}, ...children) {
  // Attributes may be left out: h('p', 'text') and h('div', child) are fine too.
  if (attrs === null || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  const [head, ...classes] = spec.split('.');
  const [tag, id] = head.split('#');
  const el = document.createElement(tag || 'div');
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(' ');
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'value') el.value = value;
    // Through the CSSOM, which the page's Content-Security-Policy allows (attributes it does not).
    else if (key === 'style') el.style.cssText = value;
    else if (key === 'class') el.className = [el.className, value].filter(Boolean).join(' ');
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
