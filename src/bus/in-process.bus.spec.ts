import { describeBusContract } from './bus.contract.js';
import { InProcessClusterState } from './in-process-cluster.js';
import { InProcessBus } from './in-process.bus.js';

describeBusContract('in-process', async () => ({
  bus: new InProcessBus(),
  cluster: new InProcessClusterState('only'),
  close: async () => undefined,
}));
