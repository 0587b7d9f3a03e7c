import parsePrometheusTextFormat, { type MetricFamily, type Sample } from 'parse-prometheus-text-format';

/** A scrape, parsed by a Prometheus text-format parser (never by regular expressions). */
export class Scrape {
  readonly families: Map<string, MetricFamily>;

  constructor(readonly text: string) {
    this.families = new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]));
  }

  family(name: string): MetricFamily {
    const family = this.families.get(name);
    if (!family) throw new Error(`no metric family ${name} in the scrape`);
    return family;
  }

  private sample(name: string, labels: Record<string, string>): Sample | undefined {
    return this.family(name).metrics.find((sample) => Object.entries(labels).every(([key, value]) => sample.labels?.[key] === value));
  }

  /** A counter's or gauge's value for these labels (0 when that series does not exist yet). */
  value(name: string, labels: Record<string, string> = {}): number {
    return Number(this.sample(name, labels)?.value ?? 0);
  }

  /** A histogram's number of observations for these labels (0 when none). */
  count(name: string, labels: Record<string, string> = {}): number {
    return Number(this.sample(name, labels)?.count ?? 0);
  }
}

/** GETs a metrics endpoint; the text parsed when it answers 200. */
export async function scrape(url: string, token?: string): Promise<{ status: number; body: string; type: string; scrape?: Scrape }> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const body = await response.text();
  const type = response.headers.get('content-type') ?? '';
  return { status: response.status, body, type, ...(response.status === 200 && { scrape: new Scrape(body) }) };
}
