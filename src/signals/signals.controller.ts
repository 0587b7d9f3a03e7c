import { Body, Controller, Get, HttpCode, Post, Query, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiKeyGuard, CurrentPrincipal, JwtAuthGuard } from '../auth/auth.guards.js';
import type { Principal } from '../auth/principal.js';
import { TierCache } from '../auth/tier-cache.service.js';
import { AppError } from '../common/app-error.js';
import { ApiErrors, ApiZodBody, ApiZodQuery, ApiZodResponse } from '../common/openapi.js';
import { validationError, ZodValidationPipe, zodIssues } from '../common/zod-validation.pipe.js';
import { AppConfig } from '../config/app-config.js';
import { envSchema } from '../config/config.schema.js';
import {
  listSignalsQuerySchema,
  signalsPageSchema,
  syncBatchResponseSchema,
  syncBatchSchema,
  syncResponseSchema,
  syncSignalSchema,
  type ListSignalsQuery,
  type SignalsPage,
  type SyncBatchResponse,
  type SyncResponse,
  type SyncSignalInput,
} from './signal.dto.js';
import { filterFromQuery } from './signal-filter.js';
import type { SyncOutcome } from './signal.types.js';
import { SignalsService } from './signals.service.js';
import { SyncMetricsInterceptor } from './sync-metrics.interceptor.js';

/** The document shows the limits at their defaults; a deployment may configure others. */
const SYNC_BATCH_MAX_ITEMS_DEFAULT = envSchema.shape.SYNC_BATCH_MAX_ITEMS.parse(undefined);
const SIGNALS_PAGE_MAX_DEFAULT = envSchema.shape.SIGNALS_PAGE_MAX.parse(undefined);

/**
 * What every sync can meet before its handler: no key, or an unknown or revoked one (401), a key
 * that is not a provider's (403), a database that does not answer (503).
 */
const PROVIDER_ERRORS = ['unauthorized', 'forbidden', 'database_unavailable'] as const;

type BatchItemResponse = SyncBatchResponse['results'][number];
type BatchItemError = Extract<BatchItemResponse, { error: unknown }>;

/** A batch item that was not stored: its error, with the status a single sync would have had. */
const itemError = (index: number, error: AppError) => ({ index, status: error.status, error: error.toJSON() }) as BatchItemError;

const toResponse = ({ result, signal }: SyncOutcome): SyncResponse => ({ result, seq: signal.seq, signal });

@ApiTags('signals')
@Controller('api/v1')
export class SignalsController {
  private readonly batchSchema: ReturnType<typeof syncBatchSchema>;
  private readonly listQueryPipe: ZodValidationPipe<ReturnType<typeof listSignalsQuerySchema>>;

  constructor(
    private readonly signals: SignalsService,
    private readonly tiers: TierCache,
    config: AppConfig,
  ) {
    this.batchSchema = syncBatchSchema(config.get('SYNC_BATCH_MAX_ITEMS'));
    this.listQueryPipe = new ZodValidationPipe(listSignalsQuerySchema(config.get('SIGNALS_PAGE_MAX')));
  }

  @Post('external-signals/sync/signal')
  @UseInterceptors(SyncMetricsInterceptor)
  @UseGuards(ApiKeyGuard)
  @ApiSecurity('api-key')
  @ApiOperation({
    summary: 'Upsert one signal by (provider, external_id): 201 new, 200 amended (new version) or identical re-send',
  })
  @ApiZodBody(syncSignalSchema)
  @ApiZodResponse(201, 'Stored as a new signal (version 1)', syncResponseSchema)
  @ApiZodResponse(200, 'Amended (a new version) or re-sent unchanged (nothing stored)', syncResponseSchema)
  @ApiErrors(...PROVIDER_ERRORS, 'validation_failed')
  async syncOne(
    @CurrentPrincipal() provider: Principal,
    @Body(new ZodValidationPipe(syncSignalSchema)) body: SyncSignalInput,
    @Res({ passthrough: true }) response: Response,
  ): Promise<SyncResponse> {
    const outcome = await this.signals.sync(provider.userId, body);
    response.status(outcome.result === 'created' ? 201 : 200);
    return toResponse(outcome);
  }

  @Post('external-signals/sync/signals')
  @UseInterceptors(SyncMetricsInterceptor)
  @HttpCode(200)
  @UseGuards(ApiKeyGuard)
  @ApiSecurity('api-key')
  @ApiOperation({ summary: 'Upsert a batch of signals; each item is answered individually, in order' })
  @ApiZodBody(syncBatchSchema(SYNC_BATCH_MAX_ITEMS_DEFAULT))
  @ApiZodResponse(200, 'Each item answered: stored, unchanged, or its own error', syncBatchResponseSchema)
  @ApiErrors(...PROVIDER_ERRORS, 'validation_failed')
  async syncMany(@CurrentPrincipal() provider: Principal, @Body() body: unknown): Promise<SyncBatchResponse> {
    const envelope = this.batchSchema.safeParse(body);
    if (!envelope.success) throw validationError(zodIssues(envelope.error));
    const results: BatchItemResponse[] = [];
    const valid: { index: number; input: SyncSignalInput }[] = [];
    envelope.data.signals.forEach((item, index) => {
      const parsed = syncSignalSchema.safeParse(item);
      if (parsed.success) {
        valid.push({ index, input: parsed.data });
        return;
      }
      const details = zodIssues(parsed.error).map((d) => ({ ...d, field: `signals[${index}].${d.field}` }));
      results[index] = itemError(index, validationError(details));
    });
    const settled = await this.signals.syncEach(
      provider.userId,
      valid.map((item) => item.input),
    );
    const unavailable = (o: PromiseSettledResult<unknown>) =>
      o.status === 'rejected' && o.reason instanceof AppError && o.reason.code === 'database_unavailable';
    if (settled.length > 0 && settled.every(unavailable)) throw (settled[0] as PromiseRejectedResult).reason;
    settled.forEach((outcome, i) => {
      const index = valid[i]!.index;
      if (outcome.status === 'fulfilled') {
        results[index] = { index, status: outcome.value.result === 'created' ? 201 : 200, ...toResponse(outcome.value) };
        return;
      }
      const error = outcome.reason instanceof AppError ? outcome.reason : new AppError('internal_error', 'The signal could not be stored');
      results[index] = itemError(index, error);
    });
    return { results };
  }

  @Get('signals')
  @UseGuards(JwtAuthGuard)
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Signals after a seq, oldest first, filtered by your tier and the filter (polling and catch-up)' })
  @ApiZodQuery(listSignalsQuerySchema(SIGNALS_PAGE_MAX_DEFAULT))
  @ApiZodResponse(200, 'A page of signals, oldest first', signalsPageSchema)
  @ApiErrors('unauthorized', 'validation_failed', 'database_unavailable')
  async list(@CurrentPrincipal() principal: Principal, @Query() rawQuery: Record<string, unknown>): Promise<SignalsPage> {
    const query: ListSignalsQuery = this.listQueryPipe.transform(rawQuery);
    const { after_seq: _after, limit: _limit, symbol, ...filterParams } = query;
    const params = new URLSearchParams(Object.entries(filterParams).filter((entry): entry is [string, string] => entry[1] !== undefined));
    if (symbol) params.set('symbols', [symbol, ...(params.get('symbols')?.split(',') ?? [])].join(','));
    const { filter, error } = filterFromQuery(params);
    if (error) throw validationError([error]);
    const tier = await this.tiers.current(principal.userId);
    if (!tier) throw new AppError('unauthorized', 'The user behind this token no longer exists');
    // Read before the page, so it never claims more than the page could show: a client starting
    // from nothing takes it as its position (as a socket takes the welcome's `latest_seq`).
    const latestSeq = await this.signals.latestStoredSeq();
    const events = await this.signals.list(tier, {
      afterSeq: query.after_seq,
      limit: query.limit + 1,
      filter,
    });
    const hasMore = events.length > query.limit;
    const page = (hasMore ? events.slice(0, query.limit) : events).map((event) => event.signal);
    return { data: page, next_after_seq: page.at(-1)?.seq ?? query.after_seq, has_more: hasMore, latest_seq: latestSeq };
  }
}
