import { ClusterState, type InstanceSnapshot } from './bus.types.js';

/** A cluster of one: everything is known locally. */
export class InProcessClusterState extends ClusterState {
  private readonly sockets = new Map<string, number>();
  private latest?: InstanceSnapshot;

  constructor(readonly instanceId: string) {
    super();
  }

  socketOpened(userId: string): void {
    this.sockets.set(userId, (this.sockets.get(userId) ?? 0) + 1);
  }

  socketClosed(userId: string): void {
    const left = (this.sockets.get(userId) ?? 0) - 1;
    if (left > 0) this.sockets.set(userId, left);
    else this.sockets.delete(userId);
  }

  async userSockets(userId: string): Promise<number> {
    return this.sockets.get(userId) ?? 0;
  }

  async connectedUsers(): Promise<Set<string>> {
    return new Set(this.sockets.keys());
  }

  async report(snapshot: InstanceSnapshot): Promise<void> {
    this.latest = snapshot;
  }

  async instances(): Promise<InstanceSnapshot[]> {
    return this.latest ? [this.latest] : [];
  }

  async leave(): Promise<void> {
    this.latest = undefined;
  }
}
