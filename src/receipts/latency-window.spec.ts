import { describe, expect, it } from 'vitest';
import { LatencyWindow, mergeWindows, quantile } from './latency-window.js';

describe('LatencyWindow', () => {
  it('counts per tier, within the SLO, with percentiles read off the bucket edges and capped by the largest', () => {
    const window = new LatencyWindow(500, 300_000, 10, () => 1_000_000);
    for (let i = 0; i < 98; i++) window.record('pro', 12);
    window.record('pro', 480);
    window.record('pro', 900);
    const pro = window.counts().pro;
    expect(pro.count).toBe(100);
    expect(pro.within_slo).toBe(99);
    expect(quantile(pro, 0.5)).toBe(15);
    expect(quantile(pro, 0.99)).toBe(500);
    expect(quantile(pro, 1)).toBe(900);
    expect(window.counts().free.count).toBe(0);
    expect(quantile(window.counts().free, 0.5)).toBeNull();
  });

  it('reports only the samples of the last window, reusing a slot once it is older', () => {
    let now = 0;
    const window = new LatencyWindow(500, 300_000, 10, () => now);
    window.record('elite', 5);
    now = 299_999;
    window.record('elite', 7000);
    expect(window.counts().elite.count).toBe(2);
    now = 300_000;
    expect(window.counts().elite.count).toBe(1);
    window.record('elite', 70_000);
    expect(window.counts().elite).toMatchObject({ count: 2, max_ms: 70_000 });
    now = 10_000_000;
    expect(window.counts().elite.count).toBe(0);
  });

  it('adds instances’ windows exactly', () => {
    const a = new LatencyWindow(100, 300_000, 10, () => 0);
    const b = new LatencyWindow(100, 300_000, 10, () => 0);
    a.record('basic', 50);
    b.record('basic', 150);
    b.record('free', 1);
    const total = mergeWindows([a.counts(), b.counts()]);
    expect(total.basic).toMatchObject({ count: 2, within_slo: 1, max_ms: 150 });
    expect(quantile(total.basic, 0.5)).toBe(50);
    expect(total.free.count).toBe(1);
  });
});
