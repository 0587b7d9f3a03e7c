/**
 * A parser of the Prometheus text exposition format (version 0.0.4), strict: any line it cannot
 * read fails the parse, a sample must belong to a family declared by `# TYPE` (a histogram's
 * `_bucket`, `_sum` and `_count` series to the histogram), and a family is declared once. The npm
 * parsers tried (parse-prometheus-text-format, prom2json-se) drop the labels of labelled histograms.
 */

export type MetricType = 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';

export interface Sample {
  /** The series name as written (`x_bucket`, `x_count`, …). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const SUFFIXES: Partial<Record<MetricType, string[]>> = { HISTOGRAM: ['_bucket', '_sum', '_count'], SUMMARY: ['_sum', '_count'] };

/** As Prometheus reads a value (Go's ParseFloat): NaN and Inf in any case (prom-client writes `Nan`). */
function parseValue(text: string, line: string): number {
  const word = text.toLowerCase();
  if (word === '+inf' || word === 'inf') return Infinity;
  if (word === '-inf') return -Infinity;
  if (word === 'nan') return NaN;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`not a number: ${JSON.stringify(text)} in ${JSON.stringify(line)}`);
  return value;
}

/** Reads `{a="1",b="x\"y"}` starting at `start` (the `{`); returns the labels and the index after `}`. */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  const fail = (why: string): never => {
    throw new Error(`${why} at column ${i} of ${JSON.stringify(line)}`);
  };
  while (i < line.length && line[i] !== '}') {
    const eq = line.indexOf('=', i);
    if (eq < 0) fail('a label without =');
    const name = line.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) fail(`a bad label name ${JSON.stringify(name)}`);
    if (name in labels) fail(`label ${name} twice`);
    i = eq + 1;
    if (line[i] !== '"') fail('a label value not in quotes');
    let value = '';
    for (i++; ; i++) {
      if (i >= line.length) fail('an unterminated label value');
      const char = line[i];
      if (char === '"') break;
      if (char === '\\') {
        const next = line[++i];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else fail(`a bad escape \\${next}`);
      } else value += char;
    }
    labels[name] = value;
    i++;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') fail('no , or } after a label');
  }
  if (line[i] !== '}') fail('an unterminated label set');
  return { labels, end: i + 1 };
}

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const familyOf = (series: string): MetricFamily | undefined => {
    const exact = families.get(series);
    if (exact) return exact;
    for (const family of families.values()) {
      if (SUFFIXES[family.type]?.some((suffix) => series === family.name + suffix)) return family;
    }
    return undefined;
  };
  const helps = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const [, keyword, name, ...rest] = line.split(' ');
      if (keyword !== 'HELP' && keyword !== 'TYPE') continue; // a comment
      if (!name || !NAME.test(name)) throw new Error(`a bad metric name in ${JSON.stringify(line)}`);
      const body = rest.join(' ');
      if (keyword === 'HELP') {
        helps.set(name, body);
        continue;
      }
      const type = body.toUpperCase() as MetricType;
      if (!['COUNTER', 'GAUGE', 'HISTOGRAM', 'SUMMARY', 'UNTYPED'].includes(type))
        throw new Error(`an unknown type in ${JSON.stringify(line)}`);
      if (families.has(name)) throw new Error(`family ${name} declared twice`);
      families.set(name, { name, help: helps.get(name) ?? '', type, samples: [] });
      continue;
    }
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const nameEnd = brace >= 0 && (space < 0 || brace < space) ? brace : space;
    if (nameEnd < 0) throw new Error(`a sample without a value: ${JSON.stringify(line)}`);
    const name = line.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`a bad series name in ${JSON.stringify(line)}`);
    let labels: Record<string, string> = {};
    let rest = line.slice(nameEnd);
    if (line[nameEnd] === '{') {
      const parsed = parseLabels(line, nameEnd);
      labels = parsed.labels;
      rest = line.slice(parsed.end);
    }
    const fields = rest.trim().split(/ +/);
    if (fields.length < 1 || fields.length > 2) throw new Error(`a bad value or timestamp in ${JSON.stringify(line)}`);
    const value = parseValue(fields[0]!, line);
    if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) throw new Error(`a bad timestamp in ${JSON.stringify(line)}`);
    const family = familyOf(name);
    if (!family) throw new Error(`series ${name} has no # TYPE before it`);
    if (family.type === 'HISTOGRAM' && name.endsWith('_bucket') && labels.le === undefined) throw new Error(`a bucket without le: ${line}`);
    family.samples.push({ name, labels, value });
  }
  return families;
}

const matches = (sample: Sample, labels: Record<string, string>) =>
  Object.entries(labels).every(([key, value]) => sample.labels[key] === value);

/** A scrape, parsed. */
export class Scrape {
  readonly families: Map<string, MetricFamily>;

  constructor(readonly text: string) {
    this.families = parsePrometheusText(text);
  }

  family(name: string): MetricFamily {
    const family = this.families.get(name);
    if (!family) throw new Error(`no metric family ${name} in the scrape`);
    return family;
  }

  /** A counter's or gauge's value for these labels, summed over the series they select (0: none yet). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.family(name)
      .samples.filter((sample) => sample.name === name && matches(sample, labels))
      .reduce((total, sample) => total + sample.value, 0);
  }

  /** A histogram's number of observations for these labels (0: none yet). */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.family(name)
      .samples.filter((sample) => sample.name === `${name}_count` && matches(sample, labels))
      .reduce((total, sample) => total + sample.value, 0);
  }
}

/** GETs a metrics endpoint; the text parsed when it answers 200. */
export async function scrape(url: string, token?: string): Promise<{ status: number; body: string; type: string; scrape?: Scrape }> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const body = await response.text();
  const type = response.headers.get('content-type') ?? '';
  return { status: response.status, body, type, ...(response.status === 200 && { scrape: new Scrape(body) }) };
}
