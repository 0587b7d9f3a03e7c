import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { uuidSchema } from '../auth/auth.dto.js';
import { JwtAuthGuard, Roles, RolesGuard } from '../auth/auth.guards.js';
import { UsersRepository } from '../auth/users.repository.js';
import { AppError } from '../common/app-error.js';
import { apiComponent, ApiErrors, ApiZodQuery, ApiZodResponse } from '../common/openapi.js';
import { utcTimestamp } from '../common/wire-schemas.js';
import { ZodValidationPipe } from '../common/zod-validation.pipe.js';
import { Tier } from '../generated/prisma/enums.js';
import type { TierChange } from '../generated/prisma/client.js';
import { canSee } from '../signals/entitlement.js';
import { ReceiptsRepository } from './receipts.repository.js';

const receiptQuerySchema = z.strictObject({
  signal: uuidSchema.describe('The signal in dispute (its `id`)'),
});

const seq = z.int().min(1);

const versionAnswer = z.object({
  version: z.int().min(1),
  seq,
  /** When this version was stored (and broadcast right after). */
  stored_at: utcTimestamp,
  min_tier: z.enum(Tier),
  /** The user's tier at `stored_at`; null if the account did not exist yet. */
  tier_then: z.enum(Tier).nullable(),
  /** Whether that tier was allowed to see this version. */
  entitled: z.boolean(),
  /** Whether the user has acknowledged a seq at or past this version's. */
  acknowledged: z.boolean(),
});

export const receiptAnswerSchema = apiComponent(
  'ReceiptAnswer',
  z.object({
    user_id: z.uuid(),
    signal_id: z.uuid(),
    /** The signal as first stored (version 1): the dispute's usual question. */
    ...versionAnswer.shape,
    /**
     * The highest seq the user acknowledged and when that receipt arrived (an acknowledgement of a
     * seq covers every earlier one, so the signal was acknowledged at or before `received_at`).
     */
    receipt: z.object({ seq, received_at: utcTimestamp }).nullable(),
    /** Every stored version, oldest first, answered the same way (an amendment may change `min_tier`). */
    versions: z.array(versionAnswer),
  }),
);
export type ReceiptAnswer = z.infer<typeof receiptAnswerSchema>;

/** The tier a user had at `at`, from the tier history (oldest first) and the current tier. */
function tierAt(history: TierChange[], current: Tier, at: Date): Tier {
  let tier = history[0]?.fromTier ?? current;
  for (const change of history) {
    if (change.changedAt > at) break;
    tier = change.toTier;
  }
  return tier;
}

@ApiTags('admin')
@ApiBearerAuth()
@Controller('api/v1/admin')
@UseGuards(JwtAuthGuard, RolesGuard)
@Roles('admin')
export class ReceiptsController {
  constructor(
    private readonly users: UsersRepository,
    private readonly receipts: ReceiptsRepository,
  ) {}

  @Get('users/:id/receipts')
  @ApiOperation({
    summary:
      "A dispute about one signal: the user's tier when it was stored, whether that tier was entitled to it, and whether the user acknowledged it",
  })
  @ApiZodQuery(receiptQuerySchema)
  @ApiZodResponse(200, 'The answer for the user and the signal', receiptAnswerSchema)
  @ApiErrors('unauthorized', 'forbidden', 'database_unavailable', 'validation_failed', 'not_found')
  async receipt(
    @Param('id', new ZodValidationPipe(uuidSchema, 'id')) userId: string,
    @Query(new ZodValidationPipe(receiptQuerySchema)) query: z.output<typeof receiptQuerySchema>,
  ): Promise<ReceiptAnswer> {
    const user = await this.users.findById(userId);
    if (!user) throw new AppError('not_found', `No user with id ${userId}`);
    const versions = await this.receipts.signalVersions(query.signal);
    if (versions.length === 0) throw new AppError('not_found', `No signal with id ${query.signal}`);
    const [history, receipt] = await Promise.all([this.users.tierHistory(userId), this.receipts.findReceipt(userId)]);
    const answers = versions.map((version) => {
      const tierThen = user.createdAt > version.storedAt ? null : tierAt(history, user.tier, version.storedAt);
      return {
        version: version.version,
        seq: version.seq,
        stored_at: version.storedAt.toISOString(),
        min_tier: version.minTier,
        tier_then: tierThen,
        entitled: tierThen !== null && canSee(tierThen, version.minTier),
        acknowledged: receipt !== null && receipt.seq >= version.seq,
      };
    });
    return {
      user_id: userId,
      signal_id: query.signal,
      ...answers[0]!,
      receipt: receipt && { seq: receipt.seq, received_at: receipt.receivedAt.toISOString() },
      versions: answers,
    };
  }
}
