// A small JSON reader that remembers where every value and key starts, so an error from the
// server ("layer 3, field 'stride'") or a syntax error can point at a line of the editor.
// JSON.parse does the real parsing; this only finds positions.

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

// -> {value, spans: Map("0/stride" -> offset)} or throws {message, offset}
export function parseWithPositions(text) {
  let i = 0;
  const spans = new Map();
  const fail = (message) => {
    const err = new SyntaxError(message);
    err.offset = Math.min(i, text.length);
    throw err;
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i += 1;
  };
  const token = (re) => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return null;
    i += m[0].length;
    return m[0];
  };
  const value = (path) => {
    ws();
    spans.set(path.join("/"), i);
    const c = text[i];
    if (c === "{") return object(path);
    if (c === "[") return array(path);
    if (c === '"') {
      const s = token(STRING);
      return s === null ? fail("unterminated string or bad escape") : JSON.parse(s);
    }
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) { i += word.length; return v; }
    }
    const n = token(NUMBER);
    if (n !== null) return Number(n);
    return fail(c === undefined ? "unexpected end of text" : `unexpected ${JSON.stringify(c)}`);
  };
  const object = (path) => {
    i += 1;
    const out = {};
    ws();
    if (text[i] === "}") { i += 1; return out; }
    for (;;) {
      ws();
      const keyAt = i;
      if (text[i] === "}") fail("a trailing comma before '}': JSON allows none");
      const k = token(STRING);
      if (k === null) fail("expected a \"key\" in double quotes");
      const key = JSON.parse(k);
      spans.set(path.concat(key).join("/") + "#key", keyAt);
      ws();
      if (text[i] !== ":") fail("expected ':' after a key");
      i += 1;
      out[key] = value(path.concat(key));
      ws();
      if (text[i] === ",") { i += 1; continue; }
      if (text[i] === "}") { i += 1; return out; }
      fail("expected ',' or '}' (a missing comma, or a trailing one?)");
    }
  };
  const array = (path) => {
    i += 1;
    const out = [];
    ws();
    if (text[i] === "]") { i += 1; return out; }
    for (;;) {
      ws();
      if (text[i] === "]") fail("a trailing comma before ']': JSON allows none");
      out.push(value(path.concat(out.length)));
      ws();
      if (text[i] === ",") { i += 1; continue; }
      if (text[i] === "]") { i += 1; return out; }
      fail("expected ',' or ']' (a missing comma, or a trailing one?)");
    }
  };
  const result = value([]);
  ws();
  if (i < text.length) fail("unexpected text after the end of the JSON");
  return { value: result, spans };
}

// The offset of a server error's layer ("3" or "5.layers.1") and field inside the document.
export function errorOffset(parsed, layer, field) {
  const { value, spans } = parsed;
  const base = Array.isArray(value) ? [] : ["layers"];
  const path = layer === null || layer === undefined || layer === "" ? [] : base.concat(String(layer).split("."));
  const candidates = [];
  if (field) candidates.push(path.concat(field).join("/") + "#key");
  if (path.length) candidates.push(path.join("/"));
  if (field && !path.length) candidates.push([field].join("/") + "#key");
  for (const key of candidates) if (spans.has(key)) return spans.get(key);
  return null;
}

export function lineOf(text, offset) {
  let line = 0;
  for (let k = 0; k < offset && k < text.length; k += 1) if (text[k] === "\n") line += 1;
  return line;
}

// Objects and arrays on one line when they fit, otherwise one item per line: a spec reads like
// ConvNetJS's layer_defs (one layer per line) and residual blocks unfold.
export function prettySpec(doc, width = 150) {
  return pretty(doc, "", width);
}

function pretty(v, pad, width) {
  const one = compact(v);
  if (pad.length + one.length <= width || !v || typeof v !== "object") return one;
  const inner = pad + "  ";
  if (Array.isArray(v)) {
    if (!v.length) return "[]";
    return "[\n" + v.map((x) => inner + pretty(x, inner, width)).join(",\n") + "\n" + pad + "]";
  }
  const entries = Object.entries(v);
  return "{\n" + entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${pretty(x, inner, width)}`).join(",\n") + "\n" + pad + "}";
}

function compact(v) {
  if (Array.isArray(v)) return "[" + v.map(compact).join(", ") + "]";
  if (v && typeof v === "object") {
    return "{" + Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${compact(x)}`).join(", ") + "}";
  }
  return JSON.stringify(v);
}
