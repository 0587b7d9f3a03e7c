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
  /**
   * Whether the user's clients acknowledged this version: a receipt at or past its seq, from
   * connections that followed each other without a gap since before it (see `receipt`).
   */
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
     * What the user's clients acknowledged: every signal they were sent with a seq in
     * `(from_seq, seq]`, the receipt for `seq` arriving at `received_at` (an acknowledgement is
     * cumulative: a version in the range was acknowledged at or before it). The range starts where the
     * acknowledging connections started (a resume position, or the seq current at a fresh welcome):
     * signals before a fresh start were never sent to those connections. After a fresh start past the
     * range, the new range replaces it. Signals a client's filter or tier kept from it are in the range
     * but were not sent: `entitled` tells the tier; the client's filter is not recorded.
     */
    receipt: z.object({ from_seq: z.int().min(0), seq, received_at: utcTimestamp }).nullable(),
    /** Every stored version, oldest first, answered the same way (an amendment may change `min_tier`). */
    versions: z.array(versionAnswer),
  }),
);
export type ReceiptAnswer = z.infer<typeof receiptAnswerSchema>;

/**
 * The tier a user had when the signal with this seq was stored, from the tier history (oldest
 * first) and the current tier. A change records the highest seq stored when it was made (signals
 * and tier changes take the same lock), so no clocks are compared.
 */
function tierAt(history: TierChange[], current: Tier, seq: number): Tier {
  let tier = history[0]?.fromTier ?? current;
  for (const change of history) {
    if (Number(change.atSeq) >= seq) break;
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
      const tierThen = user.createdAt > version.storedAt ? null : tierAt(history, user.tier, version.seq);
      return {
        version: version.version,
        seq: version.seq,
        stored_at: version.storedAt.toISOString(),
        min_tier: version.minTier,
        tier_then: tierThen,
        entitled: tierThen !== null && canSee(tierThen, version.minTier),
        acknowledged: receipt !== null && receipt.fromSeq < version.seq && version.seq <= receipt.seq,
      };
    });
    return {
      user_id: userId,
      signal_id: query.signal,
      ...answers[0]!,
      receipt: receipt && { from_seq: receipt.fromSeq, seq: receipt.seq, received_at: receipt.receivedAt.toISOString() },
      versions: answers,
    };
  }
}
