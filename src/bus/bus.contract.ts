import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SignalEvent } from '../signals/signal.types.js';
import type { ClusterState, InstanceSnapshot, MessageBus } from './bus.types.js';

export interface BusFixture {
  bus: MessageBus;
  cluster: ClusterState;
  close(): Promise<void>;
}

/** Shared by every implementation: `makeInstance` builds one instance's bus and cluster state. */
export function describeBusContract(name: string, makeInstance: () => Promise<BusFixture>): void {
  describe(`${name}: MessageBus and ClusterState contract`, () => {
    const opened: BusFixture[] = [];
    const instance = async () => {
      const fixture = await makeInstance();
      opened.push(fixture);
      return fixture;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((fixture) => fixture.close()));
    });

    const event = (seq: number): SignalEvent => ({ type: 'signal', seq, minTier: 'free', signal: { seq } }) as unknown as SignalEvent;

    it('runs local handlers synchronously inside publish, once, in order', async () => {
      const { bus } = await instance();
      const seen: number[] = [];
      bus.onSignal((e) => seen.push(e.seq));
      const publishing = [bus.publishSignal(event(1)), bus.publishSignal(event(2))];
      expect(seen).toEqual([1, 2]);
      await Promise.all(publishing);
      await sleep(100);
      expect(seen).toEqual([1, 2]);
    });

    it('delivers user changes locally at once, and stops calling unsubscribed handlers', async () => {
      const { bus } = await instance();
      const changes: string[] = [];
      const unsubscribe = bus.onUserChange((change) => changes.push(`${change.userId}:${change.tier}`));
      await bus.publishUserChange({ userId: 'u', tier: 'pro' });
      expect(changes).toEqual(['u:pro']);
      unsubscribe();
      await bus.publishUserChange({ userId: 'u', tier: 'free' });
      expect(changes).toEqual(['u:pro']);
    });

    it('keeps other handlers running when one throws', async () => {
      const { bus } = await instance();
      const seen: number[] = [];
      bus.onSignal(() => {
        throw new Error('boom');
      });
      bus.onSignal((e) => seen.push(e.seq));
      await bus.publishSignal(event(7));
      expect(seen).toEqual([7]);
    });

    it('counts sockets per user and lists connected users', async () => {
      const { cluster } = await instance();
      cluster.socketOpened('a');
      cluster.socketOpened('a');
      cluster.socketOpened('b');
      cluster.socketClosed('b');
      await vi.waitFor(async () => expect(await cluster.userSockets('a')).toBe(2));
      expect(await cluster.userSockets('b')).toBe(0);
      expect([...(await cluster.connectedUsers())]).toEqual(['a']);
    });

    it('reports this instance among the live ones', async () => {
      const { cluster } = await instance();
      await cluster.report(snapshot(cluster.instanceId, 3));
      const instances = await cluster.instances();
      expect(instances.find((i) => i.instance_id === cluster.instanceId)).toMatchObject({ total_connections: 3 });
    });

    it('is no longer among the live instances once it has left', async () => {
      const { cluster } = await instance();
      await cluster.report(snapshot(cluster.instanceId, 1));
      await cluster.leave();
      expect((await cluster.instances()).map((i) => i.instance_id)).not.toContain(cluster.instanceId);
    });
  });
}

export function snapshot(instanceId: string, connections: number): InstanceSnapshot {
  return {
    instance_id: instanceId,
    total_connections: connections,
    active_users: connections,
    signals_broadcast: 0,
    messages_delivered: 0,
    slow_consumers_disconnected: 0,
    gaps_refilled: 0,
    write_conflicts: 0,
    delivered_seq: 0,
    rss_bytes: 0,
    heap_used_bytes: 0,
    event_loop_delay_ms: { p50: 0, p99: 0, max: 0 },
    started_at: new Date().toISOString(),
    reported_at: new Date().toISOString(),
  };
}
