import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { AppError } from '../common/app-error.js';
import { AppConfig } from '../config/app-config.js';
import type { Role, Tier } from '../generated/prisma/enums.js';
import { verifyPassword } from './passwords.js';
import { UsersRepository } from './users.repository.js';
import { UsersService } from './users.service.js';

export const DEMO_PASSWORD = 'signalcast-demo';
export interface DemoAccount {
  email: string;
  role: Role;
  tier: Tier;
}
const DEMO_ACCOUNTS: readonly DemoAccount[] = [
  { email: 'admin@demo.signalcast', role: 'admin', tier: 'elite' },
  { email: 'free@demo.signalcast', role: 'subscriber', tier: 'free' },
  { email: 'pro@demo.signalcast', role: 'subscriber', tier: 'pro' },
  { email: 'elite@demo.signalcast', role: 'subscriber', tier: 'elite' },
  { email: 'provider@demo.signalcast', role: 'provider', tier: 'free' },
];

/**
 * At start: the first admin from ADMIN_EMAIL/ADMIN_PASSWORD (created if absent), and, on an empty
 * embedded database, demo accounts whose credentials are written to DATA_DIR/demo-credentials.json.
 */
@Injectable()
export class AccountBootstrapService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Accounts');

  constructor(
    private readonly config: AppConfig,
    private readonly usersRepository: UsersRepository,
    private readonly users: UsersService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.demoSeedActive() && (await this.usersRepository.count()) === 0) await this.seedDemo();
    await this.refuseDemoPasswordsInProduction();
    await this.ensureAdmin();
  }

  /**
   * A database seeded during development and then run in production would keep accounts (an
   * admin among them) whose password is in the README. Unless SEED_DEMO=true says the demo is
   * wanted there, production does not start with them.
   */
  private async refuseDemoPasswordsInProduction(): Promise<void> {
    if (this.config.get('NODE_ENV') !== 'production' || this.config.get('SEED_DEMO') === 'true') return;
    const exposed: string[] = [];
    for (const account of DEMO_ACCOUNTS) {
      const user = await this.usersRepository.findByEmail(account.email);
      if (user && (await verifyPassword(user.passwordHash, DEMO_PASSWORD))) exposed.push(account.email);
    }
    if (exposed.length > 0) {
      throw new Error(
        `Refusing to start in production: ${exposed.join(', ')} still have the published demo password. ` +
          'Change their passwords or delete them (or set SEED_DEMO=true to run the demo on purpose).',
      );
    }
  }

  /**
   * Whether this process runs with the demo accounts: SEED_DEMO=true, or `auto` on the embedded
   * database outside production (`auto` never seeds in production: demo accounts have a published
   * password). The seed at start and the public demo endpoint both follow this one rule.
   */
  demoSeedActive(): boolean {
    const seed = this.config.get('SEED_DEMO');
    return seed === 'true' || (seed === 'auto' && this.config.usesEmbeddedDatabase && this.config.get('NODE_ENV') !== 'production');
  }

  /** What a sign-in page needs to offer one-click demo sign-in; null when the demo is off. */
  demoSignIn(): { password: string; accounts: DemoAccount[] } | null {
    if (!this.demoSeedActive()) return null;
    return { password: DEMO_PASSWORD, accounts: DEMO_ACCOUNTS.map((account) => ({ ...account })) };
  }

  private async ensureAdmin(): Promise<void> {
    const email = this.config.get('ADMIN_EMAIL')?.toLowerCase();
    const password = this.config.get('ADMIN_PASSWORD');
    if (!email || !password || (await this.usersRepository.findByEmail(email))) return;
    try {
      await this.users.create({ email, password, role: 'admin', tier: 'elite' });
      this.logger.log(`Created the admin account ${email} from ADMIN_EMAIL`);
    } catch (error) {
      // Several instances starting together: another one created it first.
      if (!(error instanceof AppError && error.code === 'conflict')) throw error;
    }
  }

  private async seedDemo(): Promise<void> {
    if (this.config.get('NODE_ENV') === 'production') {
      this.logger.warn('SEED_DEMO=true in production: creating demo accounts with a published password');
    }
    const created = [];
    for (const account of DEMO_ACCOUNTS) {
      created.push(await this.users.create({ ...account, password: DEMO_PASSWORD }));
    }
    const provider = created.find((user) => user.role === 'provider')!;
    const { key } = await this.users.createApiKey(provider.id);
    const file = path.join(this.config.get('DATA_DIR'), 'demo-credentials.json');
    await mkdir(this.config.get('DATA_DIR'), { recursive: true });
    const port = this.config.get('PORT');
    await writeFile(
      file,
      JSON.stringify(
        { base_url: `http://localhost:${port}`, password: DEMO_PASSWORD, accounts: DEMO_ACCOUNTS, provider_api_key: key },
        null,
        2,
      ),
      { mode: 0o600 },
    );
    // Printed straight to the terminal, not through the logger: log shippers never see the demo key.
    process.stdout.write(
      [
        '',
        '  Demo accounts created on this empty embedded database (password for all: ' + DEMO_PASSWORD + ')',
        ...DEMO_ACCOUNTS.map((a) => `    ${a.email.padEnd(28)} ${a.role.padEnd(11)} ${a.tier}`),
        `  Provider API key and all of the above: ${file}`,
        '  Send a demo signal: npm run demo:signal -- --premium',
        '',
      ].join('\n') + '\n',
    );
  }
}
