/**
 * helm-lite: a small Go-template renderer, enough to render charts/orderflow without the helm
 * binary (which cannot be installed here). It supports the subset of Go templates + Sprig the
 * chart uses: if/else if/else, range (lists and maps, with $i, $v :=), with, define/include,
 * variables, pipelines, parentheses, whitespace trimming, comments, and the functions listed in
 * FUNCS. Anything else throws, so a template using an unsupported construct fails the test
 * instead of rendering silently wrong. It is not Helm: `helm lint` / `helm template` on a real
 * machine remain the reference (see docs/deploy.md).
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import YAML from 'yaml';

type Value = unknown;
type Dict = Record<string, Value>;
type Fn = (...args: Value[]) => Value;

class TemplateError extends Error {}
class FailError extends Error {}

// ---------------------------------------------------------------- lexing and parsing

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline }
  | { kind: 'if'; branches: { cond: Pipeline; body: Node[] }[]; elseBody: Node[] }
  | { kind: 'range'; vars: string[]; pipe: Pipeline; body: Node[]; elseBody: Node[] }
  | { kind: 'with'; pipe: Pipeline; body: Node[]; elseBody: Node[] }
  | { kind: 'template'; name: string; pipe: Pipeline | null };

interface Pipeline {
  decl: { name: string; op: ':=' | '=' } | null;
  cmds: Operand[][];
}

type Operand =
  | { t: 'lit'; v: Value }
  | { t: 'field'; base: 'dot' | string; path: string[] } // base: 'dot' or a variable name ('$', '$x')
  | { t: 'ident'; name: string }
  | { t: 'paren'; pipe: Pipeline; path: string[] };

type Tok = { t: 'str' | 'num' | 'ident' | 'field' | 'var' | 'op'; v: string; glued?: boolean };

function lexExpr(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (/\s/.test(ch)) { i++; continue; }
    if (ch === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      toks.push({ t: 'str', v: JSON.parse(src.slice(i, j + 1)) as string });
      i = j + 1; continue;
    }
    if (ch === '`') {
      const j = src.indexOf('`', i + 1);
      toks.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1; continue;
    }
    if (src.startsWith(':=', i)) { toks.push({ t: 'op', v: ':=' }); i += 2; continue; }
    if ('|(),='.includes(ch)) { toks.push({ t: 'op', v: ch }); i++; continue; }
    const m = /^(-?\d+(\.\d+)?)|^(\$[A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*)|^((\.[A-Za-z0-9_]+)+|\.)|^([A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(i));
    if (!m) throw new TemplateError(`cannot lex "${src.slice(i)}"`);
    if (m[1] !== undefined) toks.push({ t: 'num', v: m[1] });
    else if (m[3] !== undefined) toks.push({ t: 'var', v: m[3] });
    else if (m[5] !== undefined) toks.push({ t: 'field', v: m[5], glued: src[i - 1] === ')' });
    else toks.push({ t: 'ident', v: m[7]! });
    i += m[0].length;
  }
  return toks;
}

function parsePipeline(toks: Tok[], pos: { i: number }, stopAtParen = false): Pipeline {
  let decl: Pipeline['decl'] = null;
  const t0 = toks[pos.i];
  const t1 = toks[pos.i + 1];
  if (t0?.t === 'var' && t1?.t === 'op' && (t1.v === ':=' || t1.v === '=')) {
    decl = { name: t0.v, op: t1.v };
    pos.i += 2;
  }
  const cmds: Operand[][] = [[]];
  while (pos.i < toks.length) {
    const t = toks[pos.i]!;
    if (t.t === 'op' && t.v === ')') {
      if (!stopAtParen) throw new TemplateError('unexpected )');
      break;
    }
    pos.i++;
    if (t.t === 'op' && t.v === '|') { cmds.push([]); continue; }
    cmds[cmds.length - 1]!.push(parseOperand(t, toks, pos));
  }
  return { decl, cmds };
}

function parseOperand(t: Tok, toks: Tok[], pos: { i: number }): Operand {
  switch (t.t) {
    case 'str': return { t: 'lit', v: t.v };
    case 'num': return { t: 'lit', v: Number(t.v) };
    case 'field': return { t: 'field', base: 'dot', path: t.v === '.' ? [] : t.v.slice(1).split('.') };
    case 'var': {
      const [name, ...path] = t.v.split('.');
      return { t: 'field', base: name!, path };
    }
    case 'ident':
      if (t.v === 'true' || t.v === 'false') return { t: 'lit', v: t.v === 'true' };
      if (t.v === 'nil') return { t: 'lit', v: null };
      return { t: 'ident', name: t.v };
    case 'op':
      if (t.v === '(') {
        const pipe = parsePipeline(toks, pos, true);
        pos.i++; // ')'
        const next = toks[pos.i];
        let path: string[] = [];
        if (next?.t === 'field' && next.glued && next.v !== '.') { path = next.v.slice(1).split('.'); pos.i++; }
        return { t: 'paren', pipe, path };
      }
  }
  throw new TemplateError(`unexpected token ${t.v}`);
}

function parsePipe(src: string): Pipeline {
  const toks = lexExpr(src);
  const pos = { i: 0 };
  const p = parsePipeline(toks, pos);
  if (pos.i !== toks.length) throw new TemplateError(`trailing tokens in "${src}"`);
  return p;
}

type RawTok = { kind: 'text'; text: string } | { kind: 'act'; src: string };

function tokenize(src: string): RawTok[] {
  const out: RawTok[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) { out.push({ kind: 'text', text }); break; }
    let j = open + 2;
    if (src.startsWith('- ', j) || src.startsWith('-\n', j) || src.startsWith('-\t', j)) { text = text.replace(/\s+$/, ''); j += 1; }
    out.push({ kind: 'text', text });
    let close: number;
    const inner0 = src.slice(j).trimStart();
    if (inner0.startsWith('/*')) {
      const endComment = src.indexOf('*/', j);
      close = src.indexOf('}}', endComment);
    } else {
      // find "}}" outside string literals
      let k = j;
      let q: string | null = null;
      for (;;) {
        const c = src[k];
        if (c === undefined) throw new TemplateError('unclosed action');
        if (q) { if (c === '\\' && q === '"') k++; else if (c === q) q = null; }
        else if (c === '"' || c === '`') q = c;
        else if (src.startsWith('}}', k)) break;
        k++;
      }
      close = k;
    }
    let inner = src.slice(j, close);
    trimNext = false;
    if (/\s-$/.test(inner)) { inner = inner.slice(0, -1); trimNext = true; }
    inner = inner.trim();
    if (!inner.startsWith('/*')) out.push({ kind: 'act', src: inner });
    i = close + 2;
  }
  return out;
}

function parseTemplate(src: string, defines: Map<string, Node[]>): Node[] {
  const toks = tokenize(src);
  let p = 0;
  // Returns the body and the keyword that ended it ('end' | 'else' | 'else if ...' | null at EOF).
  function parseList(): { body: Node[]; stop: string | null } {
    const body: Node[] = [];
    while (p < toks.length) {
      const t = toks[p++]!;
      if (t.kind === 'text') { if (t.text) body.push({ kind: 'text', text: t.text }); continue; }
      const s = t.src;
      const kw = /^(\w+)\b\s*([\s\S]*)$/.exec(s);
      const word = kw?.[1] ?? '';
      const rest = kw?.[2] ?? '';
      if (word === 'end' || word === 'else') return { body, stop: s };
      if (word === 'if') {
        const branches = [{ cond: parsePipe(rest), body: [] as Node[] }];
        let elseBody: Node[] = [];
        for (;;) {
          const r = parseList();
          branches[branches.length - 1]!.body = r.body;
          if (r.stop === null) throw new TemplateError('unterminated if');
          if (r.stop === 'end') break;
          const elif = /^else\s+if\s+([\s\S]*)$/.exec(r.stop);
          if (elif) { branches.push({ cond: parsePipe(elif[1]!), body: [] }); continue; }
          const r2 = parseList();
          if (r2.stop !== 'end') throw new TemplateError('if: expected end after else');
          elseBody = r2.body;
          break;
        }
        body.push({ kind: 'if', branches, elseBody });
      } else if (word === 'range' || word === 'with') {
        let vars: string[] = [];
        let pipeSrc = rest;
        const vm = /^(\$\w*)\s*(?:,\s*(\$\w*))?\s*:=\s*([\s\S]*)$/.exec(rest);
        if (word === 'range' && vm) { vars = [vm[1]!, ...(vm[2] ? [vm[2]] : [])]; pipeSrc = vm[3]!; }
        const r = parseList();
        let elseBody: Node[] = [];
        if (r.stop === 'else') {
          const r2 = parseList();
          if (r2.stop !== 'end') throw new TemplateError(`${word}: expected end`);
          elseBody = r2.body;
        } else if (r.stop !== 'end') throw new TemplateError(`unterminated ${word}`);
        const pipe = parsePipe(pipeSrc);
        if (word === 'range') body.push({ kind: 'range', vars, pipe, body: r.body, elseBody });
        else body.push({ kind: 'with', pipe, body: r.body, elseBody });
      } else if (word === 'define') {
        const name = JSON.parse(rest.trim()) as string;
        const r = parseList();
        if (r.stop !== 'end') throw new TemplateError(`define ${name}: expected end`);
        defines.set(name, r.body);
      } else if (word === 'template') {
        const m = /^("(?:[^"\\]|\\.)*")\s*([\s\S]*)$/.exec(rest);
        if (!m) throw new TemplateError(`bad template action: ${s}`);
        body.push({ kind: 'template', name: JSON.parse(m[1]!) as string, pipe: m[2] ? parsePipe(m[2]) : null });
      } else if (word === 'block' || word === 'break' || word === 'continue') {
        throw new TemplateError(`unsupported action: ${word}`);
      } else {
        body.push({ kind: 'action', pipe: parsePipe(s) });
      }
    }
    return { body, stop: null };
  }
  const r = parseList();
  if (r.stop !== null) throw new TemplateError(`unexpected {{${r.stop}}}`);
  return r.body;
}

// ---------------------------------------------------------------- evaluation

function isMap(v: Value): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function truthy(v: Value): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

function str(v: Value): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(str).join(' ')}]`;
  if (isMap(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${str(v[k])}`).join(' ')}]`;
  throw new TemplateError(`cannot print ${typeof v}`);
}

function toYaml(v: Value): string {
  if (v === null || v === undefined) return 'null';
  return YAML.stringify(v, { lineWidth: 0 }).replace(/\n$/, '');
}

function num(v: Value, fn: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  if (v === null || v === undefined) return 0;
  throw new TemplateError(`${fn}: not a number: ${str(v)}`);
}

function printf(format: string, ...args: Value[]): string {
  let i = 0;
  return format.replace(/%([svdq%])/g, (_m, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    if (verb === 'd') return String(Math.trunc(num(a, 'printf')));
    if (verb === 'q') return JSON.stringify(str(a));
    return str(a);
  });
}

interface Scope { vars: Map<string, Value>; parent: Scope | null }

function lookupVar(scope: Scope | null, name: string): Value {
  for (let s = scope; s; s = s.parent) if (s.vars.has(name)) return s.vars.get(name);
  throw new TemplateError(`undefined variable ${name}`);
}
function assignVar(scope: Scope | null, name: string, v: Value): void {
  for (let s = scope; s; s = s.parent) if (s.vars.has(name)) { s.vars.set(name, v); return; }
  throw new TemplateError(`assignment to undeclared ${name}`);
}

function walk(v: Value, path: string[]): Value {
  let cur = v;
  for (const k of path) {
    if (cur === null || cur === undefined) return undefined;
    if (!isMap(cur)) throw new TemplateError(`can't read .${k} of ${typeof cur}`);
    cur = cur[k];
  }
  return cur;
}

export interface Chart {
  dir: string;
  meta: Dict;
  defaults: Dict;
  templates: { name: string; src: string }[];
}

export function loadChart(dir: string): Chart {
  const meta = YAML.parse(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Dict;
  const defaults = YAML.parse(readFileSync(join(dir, 'values.yaml'), 'utf8')) as Dict;
  const tdir = join(dir, 'templates');
  const templates = readdirSync(tdir).sort()
    .filter((f) => /\.(ya?ml|tpl|txt)$/.test(f))
    .map((f) => ({ name: f, src: readFileSync(join(tdir, f), 'utf8') }));
  return { dir, meta, defaults, templates };
}

/** Deep merge, overrides win; null in an override deletes the key (Helm semantics). */
export function mergeValues(base: Dict, over: Dict): Dict {
  const out: Dict = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = mergeValues(out[k], v);
    else out[k] = v;
  }
  return out;
}

export interface RenderOptions {
  values?: Dict;
  releaseName?: string;
  namespace?: string;
}

/** Renders every template (not partials starting with "_") and returns file name -> text. */
export function renderChart(chart: Chart, opts: RenderOptions = {}): Map<string, string> {
  const defines = new Map<string, Node[]>();
  const parsed = chart.templates.map((t) => {
    try { return { name: t.name, nodes: parseTemplate(t.src, defines) }; }
    catch (e) { throw new TemplateError(`${t.name}: ${(e as Error).message}`); }
  });
  const values = mergeValues(chart.defaults, opts.values ?? {});
  const root: Dict = {
    Values: values,
    Release: { Name: opts.releaseName ?? 'orderflow', Namespace: opts.namespace ?? 'orderflow', Service: 'Helm', IsInstall: true, IsUpgrade: false },
    Chart: { Name: chart.meta.name, Version: chart.meta.version, AppVersion: chart.meta.appVersion },
    Capabilities: { KubeVersion: { Version: 'v1.30.0' } },
    Files: {
      Get: ((p: Value) => {
        const f = join(chart.dir, str(p));
        return existsSync(f) ? readFileSync(f, 'utf8') : '';
      }) as Fn,
    },
    Template: { BasePath: 'orderflow/templates' },
  };

  const FUNCS: Record<string, Fn> = {
    include: (name, data) => {
      const body = defines.get(str(name));
      if (!body) throw new TemplateError(`include: no template "${str(name)}"`);
      return exec(body, data, { vars: new Map([['$', data]]), parent: null });
    },
    toYaml: (v) => toYaml(v),
    toJson: (v) => JSON.stringify(v ?? null),
    fromYaml: (s) => (YAML.parse(str(s)) as Value) ?? {},
    toString: (v: Value) => str(v),
    nindent: (n, s) => '\n' + FUNCS.indent!(n, s),
    indent: (n, s) => str(s).split('\n').map((l) => ' '.repeat(num(n, 'indent')) + l).join('\n'),
    quote: (...vs) => vs.map((v) => JSON.stringify(str(v))).join(' '),
    squote: (v) => `'${str(v)}'`,
    default: (d, v) => (truthy(v) ? v : d),
    empty: (v) => !truthy(v),
    required: (msg, v) => { if (v === null || v === undefined || v === '') throw new FailError(str(msg)); return v; },
    fail: (msg) => { throw new FailError(str(msg)); },
    printf: (f, ...a) => printf(str(f), ...a),
    print: (...a) => a.map(str).join(''),
    eq: (a, ...bs) => bs.some((b) => a === b),
    ne: (a, b) => a !== b,
    lt: (a, b) => num(a, 'lt') < num(b, 'lt'),
    le: (a, b) => num(a, 'le') <= num(b, 'le'),
    gt: (a, b) => num(a, 'gt') > num(b, 'gt'),
    ge: (a, b) => num(a, 'ge') >= num(b, 'ge'),
    not: (v) => !truthy(v),
    and: (...vs) => { for (const v of vs) if (!truthy(v)) return v; return vs[vs.length - 1]; },
    or: (...vs) => { for (const v of vs) if (truthy(v)) return v; return vs[vs.length - 1]; },
    upper: (s) => str(s).toUpperCase(),
    lower: (s) => str(s).toLowerCase(),
    trunc: (n, s) => str(s).slice(0, num(n, 'trunc')),
    trimSuffix: (suf, s) => (str(s).endsWith(str(suf)) ? str(s).slice(0, -str(suf).length || undefined) : str(s)),
    trimPrefix: (pre, s) => (str(s).startsWith(str(pre)) ? str(s).slice(str(pre).length) : str(s)),
    replace: (a, b, s) => str(s).split(str(a)).join(str(b)),
    contains: (sub, s) => str(s).includes(str(sub)),
    hasPrefix: (pre, s) => str(s).startsWith(str(pre)),
    b64enc: (s) => Buffer.from(str(s)).toString('base64'),
    int: (v) => Math.trunc(num(v, 'int')),
    add: (...vs) => vs.reduce<number>((a, b) => a + num(b, 'add'), 0),
    sub: (a, b) => num(a, 'sub') - num(b, 'sub'),
    mul: (...vs) => vs.reduce<number>((a, b) => a * num(b, 'mul'), 1),
    div: (a, b) => Math.trunc(num(a, 'div') / num(b, 'div')),
    list: (...vs) => vs,
    dict: (...kv) => { const d: Dict = {}; for (let i = 0; i < kv.length; i += 2) d[str(kv[i])] = kv[i + 1]; return d; },
    set: (d, k, v) => { if (!isMap(d)) throw new TemplateError('set: not a map'); d[str(k)] = v; return d; },
    hasKey: (d, k) => isMap(d) && Object.hasOwn(d, str(k)),
    has: (needle, list) => Array.isArray(list) && list.includes(needle),
    join: (sep, list) => (Array.isArray(list) ? list.map(str).join(str(sep)) : str(list)),
    index: (v, ...keys) => {
      let cur = v;
      for (const k of keys) {
        if (Array.isArray(cur)) cur = cur[num(k, 'index')];
        else if (isMap(cur)) cur = cur[str(k)];
        else return undefined;
      }
      return cur;
    },
  };

  function evalOperand(o: Operand, dot: Value, scope: Scope): Value {
    switch (o.t) {
      case 'lit': return o.v;
      case 'field': {
        const base = o.base === 'dot' ? dot : lookupVar(scope, o.base);
        return walk(base, o.path);
      }
      case 'paren': return walk(evalPipe(o.pipe, dot, scope), o.path);
      case 'ident': {
        const f = FUNCS[o.name];
        if (!f) throw new TemplateError(`unsupported function ${o.name}`);
        return f();
      }
    }
  }

  function evalCmd(cmd: Operand[], dot: Value, scope: Scope, prev: Value[]): Value {
    const [head, ...rest] = cmd;
    if (!head) throw new TemplateError('empty command');
    if (head.t === 'ident') {
      const f = FUNCS[head.name];
      if (!f) throw new TemplateError(`unsupported function ${head.name}`);
      return f(...rest.map((o) => evalOperand(o, dot, scope)), ...prev);
    }
    const v = evalOperand(head, dot, scope);
    if (typeof v === 'function') return (v as Fn)(...rest.map((o) => evalOperand(o, dot, scope)), ...prev);
    if (rest.length || prev.length) throw new TemplateError('cannot give arguments to a non-function');
    return v;
  }

  function evalPipe(p: Pipeline, dot: Value, scope: Scope): Value {
    let v: Value;
    let first = true;
    for (const cmd of p.cmds) {
      v = evalCmd(cmd, dot, scope, first ? [] : [v]);
      first = false;
    }
    if (p.decl) {
      if (p.decl.op === ':=') scope.vars.set(p.decl.name, v);
      else assignVar(scope, p.decl.name, v);
    }
    return v;
  }

  function exec(nodes: Node[], dot: Value, scope: Scope): string {
    let out = '';
    for (const n of nodes) {
      switch (n.kind) {
        case 'text': out += n.text; break;
        case 'action': {
          const v = evalPipe(n.pipe, dot, scope);
          if (!n.pipe.decl) out += str(v);
          break;
        }
        case 'if': {
          let done = false;
          for (const b of n.branches) {
            const inner: Scope = { vars: new Map(), parent: scope };
            if (truthy(evalPipe(b.cond, dot, inner))) { out += exec(b.body, dot, inner); done = true; break; }
          }
          if (!done) out += exec(n.elseBody, dot, { vars: new Map(), parent: scope });
          break;
        }
        case 'with': {
          const inner: Scope = { vars: new Map(), parent: scope };
          const v = evalPipe(n.pipe, dot, inner);
          out += truthy(v) ? exec(n.body, v, inner) : exec(n.elseBody, dot, inner);
          break;
        }
        case 'range': {
          const v = evalPipe(n.pipe, dot, scope);
          const entries: [Value, Value][] = Array.isArray(v)
            ? v.map((x, i) => [i, x])
            : isMap(v) ? Object.keys(v).sort().map((k) => [k, v[k]]) : [];
          if (v !== null && v !== undefined && !Array.isArray(v) && !isMap(v)) throw new TemplateError(`range over ${typeof v}`);
          if (!entries.length) { out += exec(n.elseBody, dot, { vars: new Map(), parent: scope }); break; }
          for (const [k, x] of entries) {
            const inner: Scope = { vars: new Map(), parent: scope };
            if (n.vars.length === 1) inner.vars.set(n.vars[0]!, x);
            if (n.vars.length === 2) { inner.vars.set(n.vars[0]!, k); inner.vars.set(n.vars[1]!, x); }
            out += exec(n.body, x, inner);
          }
          break;
        }
        case 'template': {
          const body = defines.get(n.name);
          if (!body) throw new TemplateError(`template: no "${n.name}"`);
          const data = n.pipe ? evalPipe(n.pipe, dot, scope) : undefined;
          out += exec(body, data, { vars: new Map([['$', data]]), parent: null });
          break;
        }
      }
    }
    return out;
  }

  const out = new Map<string, string>();
  for (const t of parsed) {
    if (t.name.startsWith('_')) continue;
    try {
      out.set(t.name, exec(t.nodes, root, { vars: new Map([['$', root]]), parent: null }));
    } catch (e) {
      if (e instanceof FailError) throw new FailError(`${t.name}: ${e.message}`);
      throw new TemplateError(`${t.name}: ${(e as Error).message}`);
    }
  }
  return out;
}

export { TemplateError, FailError };

/** Parses rendered YAML streams into non-empty documents (what Helm would send to the API). */
export function documents(rendered: Map<string, string>): { file: string; doc: Dict }[] {
  const docs: { file: string; doc: Dict }[] = [];
  for (const [file, text] of rendered) {
    if (!/\.ya?ml$/.test(file)) continue;
    for (const d of YAML.parseAllDocuments(text)) {
      if (d.errors.length) throw new Error(`${file}: invalid YAML: ${d.errors[0]!.message}\n${text}`);
      const js = d.toJS() as Value;
      if (js === null || js === undefined) continue;
      if (!isMap(js)) throw new Error(`${file}: document is not a mapping`);
      docs.push({ file, doc: js });
    }
  }
  return docs;
}
